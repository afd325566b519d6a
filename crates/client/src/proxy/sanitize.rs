//! Taking out of a request what identifies the user (or the agent's SDK, machine and
//! account) before it is paid for and sent.

use axum::http::StatusCode;
use serde_json::{Map, Value, error::Category};

use super::error::ApiError;

/// Body fields removed from every chat request: each is an identifier for the end user, the
/// caller's own tags, or a cache key that links requests sharing it.
pub(super) const REMOVED_FIELDS: [&str; 4] =
    ["user", "metadata", "safety_identifier", "prompt_cache_key"];

/// The content type of every body the proxy forwards: its own serialisation.
const JSON: &[u8] = b"application/json";

/// The headers to send with a request, given whether it has a (JSON) body.
///
/// No incoming header is ever copied: API keys (`Authorization`, `api-key`), `User-Agent`,
/// `X-Stainless-*`, cookies, `OpenAI-Organization`/`OpenAI-Project` and the rest are dropped.
/// A body gets `content-type: application/json` if (and only if) the price list signs and
/// forwards `content-type`. The value is the proxy's, not the agent's: the proxy wrote the
/// body, and SDKs spell the type differently (`; charset=utf-8` or not).
pub(super) fn forward_headers(signed_headers: &[String], has_body: bool) -> Vec<(String, Vec<u8>)> {
    let mut headers = Vec::new();
    if has_body && signed_headers.iter().any(|h| h == "content-type") {
        headers.push(("content-type".to_owned(), JSON.to_vec()));
    }
    headers
}

/// A chat request body, parsed, with [`REMOVED_FIELDS`] taken out and `"store": false` put
/// in (OpenAI keeps requests with `store: true` for distillation and evals, under the
/// gateway's account but with the content readable later).
pub(super) fn chat_body(bytes: &[u8]) -> Result<Map<String, Value>, ApiError> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| {
        ApiError::invalid(
            StatusCode::BAD_REQUEST,
            "nullgate_invalid_json",
            format!(
                "the request body is not valid JSON ({}); the proxy expects an OpenAI chat \
                 completions request",
                describe(&e)
            ),
        )
    })?;
    let Value::Object(mut fields) = value else {
        return Err(ApiError::invalid(
            StatusCode::BAD_REQUEST,
            "nullgate_invalid_json",
            "the request body must be a JSON object (an OpenAI chat completions request)",
        ));
    };
    for name in REMOVED_FIELDS {
        fields.remove(name);
    }
    fields.insert("store".to_owned(), Value::Bool(false));
    Ok(fields)
}

/// The bytes forwarded for `fields`.
pub(super) fn serialise(fields: &Map<String, Value>) -> Vec<u8> {
    // A map of `Value`s always serialises (string keys, finite numbers).
    serde_json::to_vec(fields).expect("a JSON map serialises")
}

/// What went wrong in a body that is not JSON, by category and position only: the error's
/// Display could quote part of the body.
fn describe(error: &serde_json::Error) -> String {
    let what = match error.classify() {
        Category::Io => "unreadable",
        Category::Syntax => "syntax error",
        Category::Data => "unexpected data",
        Category::Eof => "it ends early",
    };
    format!("{what} at line {} column {}", error.line(), error.column())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_identifiers_and_forces_store_false() {
        let fields = chat_body(
            br#"{"model":"m","messages":[{"role":"user","content":"hi","user":"kept"}],
                "user":"u-1","metadata":{"a":"b"},"safety_identifier":"s","prompt_cache_key":"k",
                "store":true,"temperature":0.5}"#,
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(serialise(&fields)).unwrap(),
            r#"{"messages":[{"content":"hi","role":"user","user":"kept"}],"model":"m","store":false,"temperature":0.5}"#
        );
        assert!(chat_body(b"[1]").is_err());
        assert!(chat_body(b"{").is_err());
    }

    #[test]
    fn headers_are_the_proxys_own() {
        let signed = vec!["accept".to_owned(), "content-type".to_owned()];
        assert_eq!(
            forward_headers(&signed, true),
            vec![("content-type".to_owned(), b"application/json".to_vec())]
        );
        assert!(forward_headers(&signed, false).is_empty());
        assert!(forward_headers(&["accept".to_owned()], true).is_empty());
    }
}

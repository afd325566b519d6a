//! Taking out of a request what identifies the user (or the agent's SDK, machine and
//! account) before it is paid for and sent.

use axum::http::StatusCode;
use serde_json::{Map, Value, error::Category};

use super::{error::ApiError, forward::JsonApi};

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

/// A JSON request body for `api`, parsed, with its [`JsonApi::removed`] fields taken out,
/// `"store": false` put in where the API has `store` (OpenAI keeps requests with
/// `store: true` for distillation and evals, under the gateway's account but with the content
/// readable later), and refused if it carries one of the [`JsonApi::refused`] fields.
pub(super) fn json_body(bytes: &[u8], api: &JsonApi) -> Result<Map<String, Value>, ApiError> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| {
        ApiError::invalid(
            StatusCode::BAD_REQUEST,
            "nullgate_invalid_json",
            format!(
                "the request body is not valid JSON ({}); the proxy expects {}",
                describe(&e),
                api.what
            ),
        )
    })?;
    let Value::Object(mut fields) = value else {
        return Err(ApiError::invalid(
            StatusCode::BAD_REQUEST,
            "nullgate_invalid_json",
            format!("the request body must be a JSON object ({})", api.what),
        ));
    };
    for &(name, why) in api.refused {
        if fields.get(name).is_some_and(|value| !value.is_null()) {
            return Err(ApiError::invalid(
                StatusCode::BAD_REQUEST,
                "nullgate_field_refused",
                format!("the nullgate proxy does not forward '{name}': {why}"),
            )
            .with_param(name));
        }
    }
    for name in api.removed {
        fields.remove(*name);
    }
    if api.store_false {
        fields.insert("store".to_owned(), Value::Bool(false));
    }
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

    use crate::proxy::{anthropic, openai};

    #[test]
    fn strips_identifiers_and_forces_store_false() {
        let chat_body = |body: &[u8]| json_body(body, &openai::CHAT);
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
    fn each_api_loses_its_own_identifiers() {
        let fields = json_body(
            br#"{"model":"m","input":"hi","user":"u","encoding_format":"float"}"#,
            &openai::EMBEDDINGS,
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(serialise(&fields)).unwrap(),
            r#"{"encoding_format":"float","input":"hi","model":"m"}"#
        );
        let fields = json_body(
            br#"{"model":"m","max_tokens":5,"messages":[],"metadata":{"user_id":"u-1"}}"#,
            &anthropic::MESSAGES,
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(serialise(&fields)).unwrap(),
            r#"{"max_tokens":5,"messages":[],"model":"m"}"#
        );
        let fields = json_body(
            br#"{"model":"m","input":"hi","user":"u","prompt_cache_key":"k","store":true}"#,
            &openai::RESPONSES,
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(serialise(&fields)).unwrap(),
            r#"{"input":"hi","model":"m","store":false}"#
        );
    }

    #[test]
    fn fields_that_link_requests_are_refused() {
        for body in [
            &br#"{"model":"m","input":"hi","previous_response_id":"resp_1"}"#[..],
            br#"{"model":"m","input":"hi","conversation":"conv_1"}"#,
        ] {
            let error = json_body(body, &openai::RESPONSES).unwrap_err();
            assert_eq!(error.status(), StatusCode::BAD_REQUEST);
        }
        // Null is the same as absent.
        assert!(
            json_body(
                br#"{"model":"m","input":"hi","previous_response_id":null}"#,
                &openai::RESPONSES
            )
            .is_ok()
        );
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

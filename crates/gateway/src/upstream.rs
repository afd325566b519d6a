//! Forwarding to the upstream API (PROTOCOL §6 step 5): the gateway's own credentials, only
//! the allowlisted request headers, and an OpenAI chat stream asked for its usage.

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, header};

/// The upstream API every priced route goes to.
#[derive(Clone, Debug)]
pub struct Upstream {
    client: reqwest::Client,
    base: reqwest::Url,
    key: Option<UpstreamKey>,
}

/// How the gateway's own upstream key is sent.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyHeader {
    /// `Authorization: Bearer <key>` (OpenAI and most others).
    #[default]
    Bearer,
    /// `x-api-key: <key>` (Anthropic).
    XApiKey,
}

/// The gateway's upstream key: its value is never printed (`Debug` redacts it) and is
/// marked sensitive on the wire.
#[derive(Clone)]
pub struct UpstreamKey {
    value: HeaderValue,
    header: KeyHeader,
}

impl std::fmt::Debug for UpstreamKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamKey")
            .field("value", &"<redacted>")
            .field("header", &self.header)
            .finish()
    }
}

impl UpstreamKey {
    /// `secret` (surrounding whitespace, as a key file ends, removed) sent as `header`.
    pub fn new(secret: &str, header: KeyHeader) -> Result<Self, UpstreamError> {
        let secret = secret.trim();
        let text = match header {
            KeyHeader::Bearer => format!("Bearer {secret}"),
            KeyHeader::XApiKey => secret.to_owned(),
        };
        let mut value = HeaderValue::from_str(&text)
            .map_err(|_| UpstreamError("the upstream key is not a valid header value".into()))?;
        if secret.is_empty() {
            return Err(UpstreamError("the upstream key is empty".into()));
        }
        value.set_sensitive(true);
        Ok(Self { value, header })
    }
}

/// The upstream could not be reached or did not answer.
#[derive(Debug, thiserror::Error)]
#[error("upstream: {0}")]
pub struct UpstreamError(pub String);

impl Upstream {
    /// An upstream at `base` (e.g. `http://127.0.0.1:11434/v1`), sending `key` with every
    /// request when given.
    pub fn new(base: &str, key: Option<UpstreamKey>) -> Result<Self, UpstreamError> {
        let base = reqwest::Url::parse(base)
            .map_err(|e| UpstreamError(format!("upstream URL {base:?}: {e}")))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(UpstreamError(format!(
                "upstream URL {base}: not http or https"
            )));
        }
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| UpstreamError(e.to_string()))?;
        Ok(Self { client, base, key })
    }

    /// The upstream URL of a request path: the base's path joined with the request's, one
    /// `/v1` dropped when both have it (so `…/v1` + `/v1/models` is `…/v1/models`).
    pub fn url_for(&self, path_and_query: &str) -> String {
        let base = self.base.as_str().trim_end_matches('/');
        let path = if base.ends_with("/v1") {
            path_and_query.strip_prefix("/v1").unwrap_or(path_and_query)
        } else {
            path_and_query
        };
        format!("{base}{path}")
    }

    /// Sends one request; `headers` are already the allowlisted ones.
    pub async fn send(
        &self,
        method: Method,
        path_and_query: &str,
        headers: HeaderMap,
        body: Bytes,
    ) -> Result<reqwest::Response, UpstreamError> {
        let mut request = self
            .client
            .request(method, self.url_for(path_and_query))
            .headers(headers)
            .body(body);
        if let Some(key) = &self.key {
            let name = match key.header {
                KeyHeader::Bearer => header::AUTHORIZATION,
                KeyHeader::XApiKey => http::HeaderName::from_static("x-api-key"),
            };
            request = request.header(name, key.value.clone());
        }
        request
            .send()
            .await
            .map_err(|e| UpstreamError(e.without_url().to_string()))
    }
}

/// The allowlisted request headers (`signed-header` lines of the price list): nothing
/// else of the client's request reaches the upstream.
pub fn allowlisted(headers: &HeaderMap, allowlist: &[String]) -> HeaderMap {
    let mut out = HeaderMap::new();
    for (name, value) in headers {
        if allowlist.iter().any(|allowed| allowed == name.as_str()) {
            out.append(name.clone(), value.clone());
        }
    }
    out
}

/// A chat request as the gateway forwards it: for a streamed one, `stream_options.
/// include_usage` is set so the stream ends with its usage; whether the client asked for
/// that chunk itself is remembered, so that it can be dropped if not.
pub struct ChatRequest {
    /// The body to forward.
    pub body: Bytes,
    /// Whether the client asked for a stream.
    pub stream: bool,
    /// Whether the client itself asked for the usage chunk.
    pub client_wants_usage: bool,
}

impl ChatRequest {
    /// Reads a chat completions body; `None` if it is not a JSON object (the upstream is
    /// left to refuse it).
    pub fn prepare(body: &Bytes) -> Option<Self> {
        let mut value: serde_json::Value = serde_json::from_slice(body).ok()?;
        let object = value.as_object_mut()?;
        let stream = object
            .get("stream")
            .and_then(|s| s.as_bool())
            .unwrap_or(false);
        if !stream {
            return Some(Self {
                body: body.clone(),
                stream,
                client_wants_usage: false,
            });
        }
        let options = object
            .entry("stream_options")
            .or_insert_with(|| serde_json::json!({}));
        let options = options.as_object_mut()?;
        let client_wants_usage = options
            .get("include_usage")
            .and_then(|u| u.as_bool())
            .unwrap_or(false);
        options.insert("include_usage".into(), serde_json::Value::Bool(true));
        Some(Self {
            body: Bytes::from(serde_json::to_vec(&value).ok()?),
            stream,
            client_wants_usage,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_joining_and_stream_options() {
        let upstream = Upstream::new("http://127.0.0.1:9/v1", None).unwrap();
        assert_eq!(
            upstream.url_for("/v1/models"),
            "http://127.0.0.1:9/v1/models"
        );
        let plain = Upstream::new("http://127.0.0.1:9/", None).unwrap();
        assert_eq!(
            plain.url_for("/v1/models?x=1"),
            "http://127.0.0.1:9/v1/models?x=1"
        );
        assert!(Upstream::new("ftp://x", None).is_err());
        let key = UpstreamKey::new("sk-secret\n", KeyHeader::XApiKey).unwrap();
        assert!(!format!("{key:?}").contains("sk-secret"));
        assert_eq!(key.value.as_bytes(), b"sk-secret");
        assert!(UpstreamKey::new(" \n", KeyHeader::Bearer).is_err());
        assert!(UpstreamKey::new("bad\u{7f}key", KeyHeader::Bearer).is_err());

        let body = Bytes::from_static(br#"{"model":"m","stream":true}"#);
        let prepared = ChatRequest::prepare(&body).unwrap();
        assert!(prepared.stream && !prepared.client_wants_usage);
        let value: serde_json::Value = serde_json::from_slice(&prepared.body).unwrap();
        assert_eq!(value["stream_options"]["include_usage"], true);
        let asked =
            Bytes::from_static(br#"{"stream":true,"stream_options":{"include_usage":true}}"#);
        assert!(ChatRequest::prepare(&asked).unwrap().client_wants_usage);
        let unstreamed = Bytes::from_static(br#"{"model":"m"}"#);
        assert_eq!(ChatRequest::prepare(&unstreamed).unwrap().body, unstreamed);
    }
}

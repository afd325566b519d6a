//! The client side: seal a request to the gateway's key, post it through a relay.

use bytes::Bytes;
use http::{Method, header::CONTENT_TYPE};
use ohttp::ClientRequest;
use sha2::{Digest, Sha256};

use super::{KEYS_MEDIA_TYPE, KEYS_PATH, REQUEST_MEDIA_TYPE, RESPONSE_MEDIA_TYPE};
use crate::{HttpRequest, HttpResponse, IsolationId, NetError, Transport};

/// Largest key configuration body read from a gateway or a relay.
pub(crate) const MAX_KEY_CONFIGS: usize = 64 << 10;

/// Largest sealed answer a client or a relay reads: a gateway's largest answer (16 MiB by
/// default) with its headers, trailers and padding (PROTOCOL §11).
pub(crate) const MAX_SEALED_RESPONSE: usize = (16 << 20) + 2 * crate::LARGE_BUCKET;

/// Sends each request sealed to the gateway's pinned key, through an OHTTP relay.
///
/// Every call opens its own connection to the relay (no connection reuse), so calls are
/// linkable by nothing but the client's address, which the relay sees by design and the
/// gateway never does.
pub struct OhttpTransport {
    relay: reqwest::Url,
    key: std::sync::RwLock<SealingKey>,
    max_response: usize,
}

/// The key configuration requests are sealed to, and the SHA-256 of the served body it was
/// taken from (what the vault's `ohttpKeysHash` pins).
struct SealingKey {
    config: Vec<u8>,
    served_hash: [u8; 32],
}

impl SealingKey {
    /// The first configuration of a served `application/ohttp-keys` body; with
    /// `pinned_hash`, the body must hash to it.
    fn from_served(key_configs: &[u8], pinned_hash: Option<&[u8; 32]>) -> Result<Self, NetError> {
        let served_hash: [u8; 32] = Sha256::digest(key_configs).into();
        if pinned_hash.is_some_and(|pinned| pinned != &served_hash) {
            return Err(NetError::KeyConfigMismatch);
        }
        let configs = ohttp::KeyConfig::decode_list(key_configs)?;
        let first = configs
            .first()
            .ok_or_else(|| NetError::Ohttp("the gateway serves no key configuration".into()))?;
        Ok(Self {
            config: first.encode()?,
            served_hash,
        })
    }
}

impl OhttpTransport {
    /// A transport through `relay` to the gateway whose `application/ohttp-keys` body is
    /// `key_configs`; with `pinned_hash`, the body must hash to it (PROTOCOL §2
    /// `ohttpKeysHash`, read from the chain).
    pub fn new(
        relay: reqwest::Url,
        key_configs: &[u8],
        pinned_hash: Option<&[u8; 32]>,
    ) -> Result<Self, NetError> {
        Ok(Self {
            relay,
            key: std::sync::RwLock::new(SealingKey::from_served(key_configs, pinned_hash)?),
            max_response: MAX_SEALED_RESPONSE,
        })
    }

    /// A transport through `relay`, sealing to the key configuration fetched through that
    /// relay (its `GET /ohttp-keys`), so the gateway never sees the client's address. The
    /// relay could serve a key of its own, so the body must hash to `pinned_hash` (PROTOCOL
    /// §2 `ohttpKeysHash`).
    pub async fn through_relay(
        relay: reqwest::Url,
        pinned_hash: &[u8; 32],
    ) -> Result<Self, NetError> {
        let served = fetch_through_relay(&relay).await?;
        Self::new(relay, &served.body, Some(pinned_hash))
    }

    /// SHA-256 of the served key configuration body requests are sealed to now.
    pub fn served_hash(&self) -> [u8; 32] {
        self.key
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .served_hash
    }

    /// Seals to the first configuration of `key_configs` from now on, if the body hashes to
    /// `pinned_hash`; otherwise the key in use stays.
    pub fn replace_keys(&self, key_configs: &[u8], pinned_hash: &[u8; 32]) -> Result<(), NetError> {
        let key = SealingKey::from_served(key_configs, Some(pinned_hash))?;
        *self.key.write().unwrap_or_else(|e| e.into_inner()) = key;
        Ok(())
    }

    /// Fetches the gateway's key configurations with `keys_request` through `transport`
    /// (so that the fetch is as anonymous as the calls) and checks them against the pin.
    pub async fn fetch_key_configs<T: Transport>(
        transport: &T,
        keys_request: HttpRequest,
        pinned_hash: Option<&[u8; 32]>,
    ) -> Result<Vec<u8>, NetError> {
        let response = transport.send(keys_request, IsolationId::fresh()).await?;
        if !response.status.is_success() {
            return Err(NetError::Unexpected {
                peer: "gateway",
                detail: format!("key configuration request answered {}", response.status),
            });
        }
        if let Some(pinned) = pinned_hash {
            let hash: [u8; 32] = Sha256::digest(&response.body).into();
            if &hash != pinned {
                return Err(NetError::KeyConfigMismatch);
            }
        }
        Ok(response.body.to_vec())
    }
}

/// A request sealed for the gateway, with what opens its answer (single use).
pub struct SealedRequest {
    /// The `message/ohttp-req` body.
    pub bytes: Vec<u8>,
    opener: ohttp::ClientResponse,
}

impl SealedRequest {
    /// Opens the gateway's `message/ohttp-res` answer.
    pub fn open_response(self, sealed: &[u8]) -> Result<HttpResponse, NetError> {
        HttpResponse::from_bhttp(&self.opener.decapsulate(sealed)?)
    }
}

impl OhttpTransport {
    /// Seals `request` to the gateway's key (no I/O: the caller may carry the bytes by any
    /// means, e.g. the mixnet).
    pub fn seal(&self, request: &HttpRequest) -> Result<SealedRequest, NetError> {
        let client = {
            let key = self.key.read().unwrap_or_else(|e| e.into_inner());
            ClientRequest::from_encoded_config(&key.config)?
        };
        let (bytes, opener) = client.encapsulate(&request.to_bhttp()?)?;
        Ok(SealedRequest { bytes, opener })
    }
}

impl Transport for OhttpTransport {
    async fn send(
        &self,
        request: HttpRequest,
        _isolation: IsolationId,
    ) -> Result<HttpResponse, NetError> {
        let sealed = self.seal(&request)?;
        // A client of its own: no pooled connection carries over from another call.
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .map_err(|e| io("relay", e))?;
        let answer = client
            .request(Method::POST, self.relay.clone())
            .header(CONTENT_TYPE, REQUEST_MEDIA_TYPE)
            .body(sealed.bytes.clone())
            .send()
            .await
            .map_err(|e| io("relay", e))?;
        let (status, media) = (answer.status(), content_type(&answer));
        let body = read_limited(answer, self.max_response).await?;
        if !status.is_success() || media != RESPONSE_MEDIA_TYPE {
            return Err(NetError::Unexpected {
                peer: "relay",
                detail: format!(
                    "status {status}, content type {media:?}: {}",
                    String::from_utf8_lossy(&body[..body.len().min(200)])
                ),
            });
        }
        sealed.open_response(&body)
    }

    /// Fetches the gateway's key configurations through the relay when the vault pins
    /// another body than the one in use (a rotation).
    async fn follow_gateway_keys(&self, pinned_hash: &[u8; 32]) -> Result<bool, NetError> {
        if &self.served_hash() == pinned_hash {
            return Ok(false);
        }
        let served = fetch_through_relay(&self.relay).await?;
        self.replace_keys(&served.body, pinned_hash)?;
        Ok(true)
    }
}

/// The relay's `GET /ohttp-keys`: the gateway's key configurations, passed on.
async fn fetch_through_relay(relay: &reqwest::Url) -> Result<ServedKeys, NetError> {
    let url = relay
        .join(KEYS_PATH.trim_start_matches('/'))
        .map_err(|e| NetError::BadMessage(format!("relay URL: {e}")))?;
    get_served_keys(&reqwest::Client::new(), url, "relay", MAX_KEY_CONFIGS).await
}

/// A key configuration as served over HTTP: the `application/ohttp-keys` body and the
/// `Cache-Control` it came with (how long it may be kept).
pub(crate) struct ServedKeys {
    pub(crate) body: Bytes,
    cache_control: Option<http::HeaderValue>,
}

impl ServedKeys {
    /// The headers to pass it on with: its media type and `Cache-Control`.
    pub(crate) fn headers(&self) -> http::HeaderMap {
        let mut headers = http::HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            http::HeaderValue::from_static(KEYS_MEDIA_TYPE),
        );
        if let Some(cache) = &self.cache_control {
            headers.insert(http::header::CACHE_CONTROL, cache.clone());
        }
        headers
    }
}

/// GETs the key configuration at `url` from `peer` (a gateway, or a relay passing one on):
/// it must be a success answered as `application/ohttp-keys`, of at most `limit` bytes.
pub(crate) async fn get_served_keys(
    http: &reqwest::Client,
    url: impl reqwest::IntoUrl,
    peer: &'static str,
    limit: usize,
) -> Result<ServedKeys, NetError> {
    let answer = http.get(url).send().await.map_err(|e| io(peer, e))?;
    let (status, media) = (answer.status(), content_type(&answer));
    if !status.is_success() || media != KEYS_MEDIA_TYPE {
        return Err(NetError::Unexpected {
            peer,
            detail: format!("key configuration: status {status}, content type {media:?}"),
        });
    }
    let cache_control = answer.headers().get(http::header::CACHE_CONTROL).cloned();
    let body = read_limited(answer, limit).await?;
    Ok(ServedKeys {
        body,
        cache_control,
    })
}

/// The response's media type, empty if it has none.
pub(crate) fn content_type(answer: &reqwest::Response) -> String {
    answer
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// The answer's body, refused once it passes `limit` bytes (read no further).
pub(crate) async fn read_limited(
    mut answer: reqwest::Response,
    limit: usize,
) -> Result<Bytes, NetError> {
    let mut body = Vec::new();
    while let Some(chunk) = answer.chunk().await.map_err(|e| io("relay", e))? {
        if body.len() + chunk.len() > limit {
            return Err(NetError::TooLarge {
                what: "response body",
                limit,
            });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.into())
}

fn io(peer: &'static str, error: reqwest::Error) -> NetError {
    NetError::Io {
        peer,
        detail: error.to_string(),
    }
}

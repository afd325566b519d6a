//! Requests and responses as plain values, and their Binary HTTP (RFC 9292) encoding.
//!
//! Every encoding is padded with zero bytes to a size bucket ([`padded_len`], PROTOCOL §11),
//! so that what carries it sealed (an OHTTP relay, the mixnet, the network) learns the
//! bucket, not the length of a prompt or an answer. Decoding refuses non-zero padding
//! (RFC 9292 §3.8).

use std::io::Cursor;

use bhttp::{Message, Mode, StatusCode as BhttpStatus};
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};

use crate::NetError;

/// An HTTP request, complete in memory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpRequest {
    /// The method.
    pub method: Method,
    /// `https` or `http`.
    pub scheme: String,
    /// `host[:port]` of the target.
    pub authority: String,
    /// Path and query, exactly as in the request line.
    pub path: String,
    /// Header fields.
    pub headers: HeaderMap,
    /// The body.
    pub body: Bytes,
}

/// An HTTP response, complete in memory, with its trailer section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpResponse {
    /// The final status.
    pub status: StatusCode,
    /// Header fields.
    pub headers: HeaderMap,
    /// The body.
    pub body: Bytes,
    /// Trailer fields (the receipt of a streamed response travels here).
    pub trailers: HeaderMap,
}

/// The smallest padding bucket: 1 KiB.
pub const MIN_BUCKET: usize = 1 << 10;

/// Above this size (64 KiB), buckets are its multiples rather than powers of two.
pub const LARGE_BUCKET: usize = 64 << 10;

/// The size a Binary HTTP message of `len` bytes is padded to: the smallest of 1, 2, 4, …,
/// 64 KiB that holds it, and beyond that the next multiple of 64 KiB (so padding never
/// costs more than 64 KiB, and never more than doubles a message).
pub fn padded_len(len: usize) -> usize {
    if len <= LARGE_BUCKET {
        len.max(MIN_BUCKET).next_power_of_two()
    } else {
        len.div_ceil(LARGE_BUCKET).saturating_mul(LARGE_BUCKET)
    }
}

/// Pads `encoded` with zeros to [`padded_len`].
fn pad(mut encoded: Vec<u8>) -> Vec<u8> {
    encoded.resize(padded_len(encoded.len()), 0);
    encoded
}

/// Checks that what follows a decoded message is zero padding only.
fn padding_is_zero(bytes: &[u8], cursor: &Cursor<&[u8]>) -> Result<(), NetError> {
    let end = usize::try_from(cursor.position()).unwrap_or(usize::MAX);
    match bytes.get(end..) {
        Some(padding) if padding.iter().any(|&b| b != 0) => Err(NetError::BadMessage(
            "bytes after the message that are not zero padding".into(),
        )),
        _ => Ok(()),
    }
}

impl HttpRequest {
    /// A request with no headers and no body.
    pub fn new(method: Method, scheme: &str, authority: &str, path: &str) -> Self {
        Self {
            method,
            scheme: scheme.into(),
            authority: authority.into(),
            path: path.into(),
            headers: HeaderMap::new(),
            body: Bytes::new(),
        }
    }

    /// The known-length Binary HTTP encoding, zero-padded to its bucket.
    pub fn to_bhttp(&self) -> Result<Vec<u8>, NetError> {
        let mut message = Message::request(
            self.method.as_str().as_bytes().to_vec(),
            self.scheme.as_bytes().to_vec(),
            self.authority.as_bytes().to_vec(),
            self.path.as_bytes().to_vec(),
        );
        for (name, value) in &self.headers {
            message.put_header(name.as_str().as_bytes(), value.as_bytes());
        }
        message.write_content(&self.body);
        let mut out = Vec::new();
        message.write_bhttp(Mode::KnownLength, &mut out)?;
        Ok(pad(out))
    }

    /// Decodes a Binary HTTP request (padding allowed, zeros only).
    pub fn from_bhttp(bytes: &[u8]) -> Result<Self, NetError> {
        let mut cursor = Cursor::new(bytes);
        let message = Message::read_bhttp(&mut cursor)?;
        padding_is_zero(bytes, &cursor)?;
        let control = message.control();
        let text = |part: Option<&[u8]>, what: &str| -> Result<String, NetError> {
            let part =
                part.ok_or_else(|| NetError::BadMessage(format!("not a request: no {what}")))?;
            String::from_utf8(part.to_vec())
                .map_err(|_| NetError::BadMessage(format!("{what} is not UTF-8")))
        };
        let method = Method::from_bytes(
            control
                .method()
                .ok_or_else(|| NetError::BadMessage("not a request".into()))?,
        )
        .map_err(|_| NetError::BadMessage("invalid method".into()))?;
        Ok(Self {
            method,
            scheme: text(control.scheme(), "scheme")?,
            authority: text(control.authority(), "authority")?,
            path: text(control.path(), "path")?,
            headers: header_map(message.header().fields())?,
            body: Bytes::copy_from_slice(message.content()),
        })
    }
}

impl HttpResponse {
    /// The known-length Binary HTTP encoding, trailers included.
    pub fn to_bhttp(&self) -> Result<Vec<u8>, NetError> {
        let status = BhttpStatus::try_from(self.status.as_u16())
            .map_err(|_| NetError::BadMessage("status out of range".into()))?;
        let mut message = Message::response(status);
        for (name, value) in &self.headers {
            message.put_header(name.as_str().as_bytes(), value.as_bytes());
        }
        message.write_content(&self.body);
        for (name, value) in &self.trailers {
            message.put_trailer(name.as_str().as_bytes(), value.as_bytes());
        }
        let mut out = Vec::new();
        message.write_bhttp(Mode::KnownLength, &mut out)?;
        Ok(pad(out))
    }

    /// Decodes a Binary HTTP response (padding allowed, zeros only).
    pub fn from_bhttp(bytes: &[u8]) -> Result<Self, NetError> {
        let mut cursor = Cursor::new(bytes);
        let message = Message::read_bhttp(&mut cursor)?;
        padding_is_zero(bytes, &cursor)?;
        let status = message
            .control()
            .status()
            .ok_or_else(|| NetError::BadMessage("not a response".into()))?;
        Ok(Self {
            status: StatusCode::from_u16(u16::from(status))
                .map_err(|_| NetError::BadMessage("invalid status".into()))?,
            headers: header_map(message.header().fields())?,
            body: Bytes::copy_from_slice(message.content()),
            trailers: header_map(message.trailer().fields())?,
        })
    }
}

fn header_map(fields: &[bhttp::Field]) -> Result<HeaderMap, NetError> {
    let mut map = HeaderMap::new();
    for field in fields {
        let name = HeaderName::from_bytes(field.name())
            .map_err(|_| NetError::BadMessage("invalid header name".into()))?;
        let value = HeaderValue::from_bytes(field.value())
            .map_err(|_| NetError::BadMessage("invalid header value".into()))?;
        map.append(name, value);
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_with_trailers() {
        let mut request = HttpRequest::new(Method::POST, "https", "gw.example", "/v1/chat?x=1");
        request
            .headers
            .insert("content-type", HeaderValue::from_static("application/json"));
        request.body = Bytes::from_static(b"{\"model\":\"m\"}");
        assert_eq!(
            HttpRequest::from_bhttp(&request.to_bhttp().unwrap()).unwrap(),
            request
        );

        let mut response = HttpResponse {
            status: StatusCode::OK,
            headers: HeaderMap::new(),
            body: Bytes::from_static(b"data"),
            trailers: HeaderMap::new(),
        };
        response
            .trailers
            .insert("nullgate-receipt", HeaderValue::from_static("abc"));
        assert_eq!(
            HttpResponse::from_bhttp(&response.to_bhttp().unwrap()).unwrap(),
            response
        );
    }

    #[test]
    fn buckets_are_powers_of_two_then_multiples_of_64_kib() {
        assert_eq!(padded_len(0), 1024);
        assert_eq!(padded_len(1), 1024);
        assert_eq!(padded_len(1024), 1024);
        assert_eq!(padded_len(1025), 2048);
        assert_eq!(padded_len(40_000), 65_536);
        assert_eq!(padded_len(65_536), 65_536);
        assert_eq!(padded_len(65_537), 131_072);
        assert_eq!(padded_len(200_000), 262_144);
        assert_eq!(padded_len(262_145), 327_680);
        for len in [0, 999, 5000, 70_000, 1 << 20] {
            let padded = padded_len(len);
            assert!(padded >= len && padded - len <= LARGE_BUCKET.max(len));
        }
    }

    #[test]
    fn encodings_are_padded_to_their_bucket_and_hide_the_length() {
        let sized = |body: usize| {
            let mut request = HttpRequest::new(Method::POST, "https", "gw.example", "/v1/chat");
            request.body = Bytes::from(vec![b'x'; body]);
            request.to_bhttp().unwrap()
        };
        assert_eq!(sized(10).len(), 1024);
        assert_eq!(sized(10).len(), sized(900).len(), "one bucket, one size");
        assert_eq!(sized(1500).len(), 2048);
        let response = HttpResponse {
            status: StatusCode::OK,
            headers: HeaderMap::new(),
            body: Bytes::from(vec![b'y'; 70_000]),
            trailers: HeaderMap::new(),
        };
        assert_eq!(response.to_bhttp().unwrap().len(), 131_072);
        // Padding is not part of the message, and a message without any still decodes.
        let mut bytes = sized(10);
        assert_eq!(HttpRequest::from_bhttp(&bytes).unwrap().body.len(), 10);
        let end = bytes.iter().rposition(|&b| b != 0).unwrap();
        bytes.truncate(end + 1);
        assert_eq!(HttpRequest::from_bhttp(&bytes).unwrap().body.len(), 10);
    }

    #[test]
    fn non_zero_padding_is_refused() {
        let mut request = HttpRequest::new(Method::GET, "https", "a", "/");
        request.body = Bytes::from_static(b"hi");
        let mut bytes = request.to_bhttp().unwrap();
        *bytes.last_mut().unwrap() = 1;
        let error = HttpRequest::from_bhttp(&bytes).unwrap_err();
        assert!(error.to_string().contains("not zero padding"), "{error}");
        let response = HttpResponse {
            status: StatusCode::OK,
            headers: HeaderMap::new(),
            body: Bytes::new(),
            trailers: HeaderMap::new(),
        };
        let mut bytes = response.to_bhttp().unwrap();
        bytes[600] = 0xff;
        assert!(HttpResponse::from_bhttp(&bytes).is_err());
    }

    #[test]
    fn rejects_malformed_and_mismatched_messages() {
        assert!(HttpRequest::from_bhttp(&[]).is_err());
        assert!(HttpRequest::from_bhttp(&[0x00, 0xff, 0xff]).is_err());
        let response = HttpResponse {
            status: StatusCode::OK,
            headers: HeaderMap::new(),
            body: Bytes::new(),
            trailers: HeaderMap::new(),
        };
        // A response is not a request, and the other way round.
        assert!(HttpRequest::from_bhttp(&response.to_bhttp().unwrap()).is_err());
        let request = HttpRequest::new(Method::GET, "https", "a", "/");
        assert!(HttpResponse::from_bhttp(&request.to_bhttp().unwrap()).is_err());
        // A content length that claims more than there is: cut in the middle of the body.
        let mut request = HttpRequest::new(Method::POST, "https", "a", "/");
        request.body = Bytes::from_static(b"hello world");
        let mut bytes = request.to_bhttp().unwrap();
        let body_at = bytes
            .windows(request.body.len())
            .position(|w| w == request.body.as_ref())
            .expect("the body is in the encoding");
        bytes.truncate(body_at + 5);
        assert!(HttpRequest::from_bhttp(&bytes).is_err());
    }
}

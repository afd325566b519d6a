//! Requests and responses as plain values, and their Binary HTTP (RFC 9292) encoding.

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

    /// The known-length Binary HTTP encoding.
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
        Ok(out)
    }

    /// Decodes a Binary HTTP request.
    pub fn from_bhttp(bytes: &[u8]) -> Result<Self, NetError> {
        let message = Message::read_bhttp(&mut Cursor::new(bytes))?;
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
        Ok(out)
    }

    /// Decodes a Binary HTTP response.
    pub fn from_bhttp(bytes: &[u8]) -> Result<Self, NetError> {
        let message = Message::read_bhttp(&mut Cursor::new(bytes))?;
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

//! The payload digest that a request key signs (PROTOCOL §11):
//!
//! `SHA-256("nullgate/v1/req" ‖ N ‖ lp(method) ‖ lp(path-and-query) ‖ lp(signed headers) ‖
//! SHA-256(body))`, `lp(s)` a 4-byte big-endian length followed by `s`.
//!
//! It binds the credential to exactly one request: a relay, an exit or the gateway itself
//! cannot move the credential onto another payload.

use nullgate_zk::{Fr, field::fr_to_bytes};
use sha2::{Digest, Sha256};

/// The signed headers block: the allowlisted request headers present, as
/// `lowercase-name:value\n` lines sorted by name (and, for a repeated name, by value).
///
/// `allowlist` holds lowercase names (the price list's signed headers); `headers` yields
/// every request header as `(name, value)`, names in any case. Headers off the allowlist are
/// ignored here; the gateway does not forward them either.
pub fn signed_headers<'a>(
    allowlist: &[String],
    headers: impl IntoIterator<Item = (&'a str, &'a [u8])>,
) -> Vec<u8> {
    let mut lines: Vec<(String, &[u8])> = headers
        .into_iter()
        .map(|(name, value)| (name.to_ascii_lowercase(), value))
        .filter(|(name, _)| allowlist.iter().any(|allowed| allowed == name))
        .collect();
    lines.sort();
    let mut out = Vec::new();
    for (name, value) in lines {
        out.extend_from_slice(name.as_bytes());
        out.push(b':');
        out.extend_from_slice(value);
        out.push(b'\n');
    }
    out
}

/// The payload digest of a request at nullifier `N`. `method` is upper-cased here;
/// `path_and_query` must be exactly as in the request line; `signed_headers` is the block of
/// [`signed_headers`].
pub fn payload_digest(
    nullifier: &Fr,
    method: &str,
    path_and_query: &str,
    signed_headers: &[u8],
    body: &[u8],
) -> [u8; 32] {
    fn lp(hasher: &mut Sha256, part: &[u8]) {
        // Parts are bounded by the transport's size limits, far below 4 GiB.
        let len = u32::try_from(part.len()).unwrap_or(u32::MAX);
        hasher.update(len.to_be_bytes());
        hasher.update(part);
    }
    let mut hasher = Sha256::new();
    hasher.update(b"nullgate/v1/req");
    hasher.update(fr_to_bytes(nullifier));
    lp(&mut hasher, method.to_ascii_uppercase().as_bytes());
    lp(&mut hasher, path_and_query.as_bytes());
    lp(&mut hasher, signed_headers);
    hasher.update(Sha256::digest(body));
    hasher.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_block_is_sorted_lowercase_and_allowlisted() {
        let allow = vec!["content-type".to_owned(), "accept".to_owned()];
        let block = signed_headers(
            &allow,
            [
                ("Content-Type", b"application/json".as_slice()),
                ("X-Secret", b"no".as_slice()),
                ("Accept", b"text/event-stream".as_slice()),
            ],
        );
        assert_eq!(
            block,
            b"accept:text/event-stream\ncontent-type:application/json\n"
        );
    }

    #[test]
    fn every_part_changes_the_digest() {
        let n = Fr::from(5u64);
        let base = payload_digest(&n, "post", "/v1/x?a=1", b"h:v\n", b"{}");
        assert_eq!(
            base,
            payload_digest(&n, "POST", "/v1/x?a=1", b"h:v\n", b"{}")
        );
        assert_ne!(
            base,
            payload_digest(&Fr::from(6u64), "POST", "/v1/x?a=1", b"h:v\n", b"{}")
        );
        assert_ne!(
            base,
            payload_digest(&n, "GET", "/v1/x?a=1", b"h:v\n", b"{}")
        );
        assert_ne!(
            base,
            payload_digest(&n, "POST", "/v1/x?a=2", b"h:v\n", b"{}")
        );
        assert_ne!(
            base,
            payload_digest(&n, "POST", "/v1/x?a=1", b"h:w\n", b"{}")
        );
        assert_ne!(
            base,
            payload_digest(&n, "POST", "/v1/x?a=1", b"h:v\n", b"{ }")
        );
        // Length prefixes keep the boundary between path and headers.
        assert_ne!(
            payload_digest(&n, "POST", "/ab", b"", b""),
            payload_digest(&n, "POST", "/a", b"b", b"")
        );
    }
}

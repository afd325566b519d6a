//! Upstream timestamps coarsened to the hour (PROTOCOL §6.6, WIRE.md "Responses").
//!
//! OpenAI-style answers carry `"created"` (chat, every stream chunk) or `"created_at"`
//! (responses) in Unix seconds. The gateway keeps a response for retries beside its `N`,
//! so a second-precise time there would tell when `N` was spent well inside its hourly
//! partition. Both the relayed and the stored body therefore carry the start of the hour,
//! and a retry's answer is the original's byte for byte.

use std::borrow::Cow;

/// The keys whose integer values are coarsened.
const KEYS: [&[u8]; 2] = [b"\"created\"", b"\"created_at\""];

/// `body` with every `"created"`/`"created_at"` integer value rounded down to the hour;
/// borrowed unchanged when there is none. Other bytes are kept exactly.
pub fn coarsen(body: &[u8]) -> Cow<'_, [u8]> {
    let mut out: Option<Vec<u8>> = None;
    let mut copied = 0;
    let mut at = 0;
    while let Some(found) = find_key(body, at) {
        let (key_end, value_start, value_end) = found;
        at = key_end;
        let Some(seconds) = std::str::from_utf8(&body[value_start..value_end])
            .ok()
            .and_then(|digits| digits.parse::<u64>().ok())
        else {
            continue;
        };
        let out = out.get_or_insert_with(|| Vec::with_capacity(body.len()));
        out.extend_from_slice(&body[copied..value_start]);
        out.extend_from_slice((seconds - seconds % 3600).to_string().as_bytes());
        copied = value_end;
        at = value_end;
    }
    match out {
        None => Cow::Borrowed(body),
        Some(mut out) => {
            out.extend_from_slice(&body[copied..]);
            Cow::Owned(out)
        }
    }
}

/// The next key at or after `from` that is followed by `:` and digits: where the key ends
/// and where its digits start and end.
fn find_key(body: &[u8], from: usize) -> Option<(usize, usize, usize)> {
    let mut at = from;
    loop {
        let (start, key) = KEYS
            .iter()
            .filter_map(|key| {
                body.get(at..)?
                    .windows(key.len())
                    .position(|w| w == *key)
                    .map(|p| (at + p, *key))
            })
            .min_by_key(|(p, _)| *p)?;
        let key_end = start + key.len();
        at = key_end;
        // A quote escaped inside a string is not a key.
        if start > 0 && body[start - 1] == b'\\' {
            continue;
        }
        let mut i = skip_space(body, key_end);
        if body.get(i) != Some(&b':') {
            continue;
        }
        i = skip_space(body, i + 1);
        let digits = body[i..].iter().take_while(|b| b.is_ascii_digit()).count();
        if digits > 0 {
            return Some((key_end, i, i + digits));
        }
    }
}

fn skip_space(body: &[u8], mut i: usize) -> usize {
    while body.get(i).is_some_and(|b| b" \t\r\n".contains(b)) {
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::coarsen;

    #[test]
    fn rounds_created_down_to_the_hour() {
        let body = br#"{"id":"x","object":"chat.completion","created":1764702345,"model":"m"}"#;
        assert_eq!(
            &*coarsen(body),
            br#"{"id":"x","object":"chat.completion","created":1764702000,"model":"m"}"#
        );
    }

    #[test]
    fn every_stream_chunk_and_created_at() {
        let body =
            b"data: {\"created\" : 1764705599,\"a\":1}\n\ndata: {\"created_at\":1764705600}\n\n";
        assert_eq!(
            &*coarsen(body),
            b"data: {\"created\" : 1764702000,\"a\":1}\n\ndata: {\"created_at\":1764705600}\n\n"
        );
    }

    #[test]
    fn leaves_everything_else_alone() {
        for body in [
            &br#"{"content":"the \"created\":1764702345 text"}"#[..],
            br#"{"created":"1764702345"}"#,
            br#"{"created_by":1764702345}"#,
            br#"{"created":-5}"#,
            b"\"created\"",
            b"",
        ] {
            assert!(
                matches!(coarsen(body), std::borrow::Cow::Borrowed(_)),
                "{body:?}"
            );
        }
    }

    #[test]
    fn an_absurd_number_is_left_as_it_is() {
        let body = br#"{"created":99999999999999999999999}"#;
        assert_eq!(&*coarsen(body), body);
    }
}

//! Token counting with the o200k_base vocabulary (the GPT-4o family's).
//!
//! Text is encoded with special tokens recognised, as `tiktoken_rs::num_tokens_from_messages`
//! does, so that the prompt count here equals that function's for the same messages.

use std::{borrow::Cow, sync::OnceLock};

use tiktoken_rs::CoreBPE;

use crate::Error;

/// Tokens per message for its framing, as in OpenAI's cookbook ("How to count tokens with
/// tiktoken") and `tiktoken_rs::num_tokens_from_messages`.
const TOKENS_PER_MESSAGE: u64 = 3;
/// Extra tokens for a message's `name`, on top of the name's own tokens.
const TOKENS_PER_NAME: u64 = 1;
/// Tokens that prime the reply (`<|start|>assistant<|message|>`).
const REPLY_PRIMING: u64 = 3;

/// One message of a conversation as the prompt count sees it, whichever API it came in.
#[derive(Debug, Clone)]
pub(crate) struct Turn<'a> {
    /// The role as the API names it (`system`, `user`, …).
    pub(crate) role: &'a str,
    /// The text that counts: the text parts of the content, concatenated.
    pub(crate) content: Cow<'a, str>,
    /// The optional author name (chat completions only).
    pub(crate) name: Option<&'a str>,
}

/// The o200k_base vocabulary, loaded once for the process.
pub(crate) fn bpe() -> Result<&'static CoreBPE, Error> {
    // `OnceLock::get_or_try_init` is unstable, so the outcome (good or bad) is what is cached.
    static BPE: OnceLock<Result<CoreBPE, String>> = OnceLock::new();
    BPE.get_or_init(|| tiktoken_rs::o200k_base().map_err(|e| e.to_string()))
        .as_ref()
        .map_err(|e| Error::Tokenizer(e.clone()))
}

/// The number of tokens in `text`.
pub(crate) fn count(bpe: &CoreBPE, text: &str) -> u64 {
    bpe.count_with_special_tokens(text) as u64
}

/// A conversation's prompt tokens by OpenAI's cookbook rule: for each turn 3 for its framing
/// plus its role's and content's tokens (and a name's tokens plus 1), then 3 priming the reply.
/// Every API here frames its conversation as such turns, so one conversation costs the same
/// whichever API carries it.
pub(crate) fn prompt<'a>(bpe: &CoreBPE, turns: impl IntoIterator<Item = Turn<'a>>) -> u64 {
    turns
        .into_iter()
        .map(|turn| {
            let name = turn.name.map_or(0, |n| count(bpe, n) + TOKENS_PER_NAME);
            TOKENS_PER_MESSAGE + count(bpe, turn.role) + count(bpe, &turn.content) + name
        })
        .fold(REPLY_PRIMING, u64::saturating_add)
}

/// The longest prefix of `text` that is at most `max` tokens, at a token boundary, and whether
/// it had to be cut.
pub(crate) fn truncate(bpe: &CoreBPE, text: &str, max: u64) -> (String, bool) {
    let tokens = bpe.encode_with_special_tokens(text);
    if tokens.len() as u64 <= max {
        return (text.to_owned(), false);
    }
    // A prefix of the tokens can end inside a multi-byte character, and re-encoding a prefix
    // can in principle give more tokens than it was cut from: step back until both hold.
    let mut keep = usize::try_from(max).unwrap_or(usize::MAX).min(tokens.len());
    while keep > 0 {
        if let Ok(bytes) = bpe.decode_bytes(&tokens[..keep])
            && let Ok(prefix) = String::from_utf8(bytes)
            && count(bpe, &prefix) <= max
        {
            return (prefix, true);
        }
        keep -= 1;
    }
    (String::new(), true)
}

/// `text` split into one piece per token, except that a character spread over several tokens
/// stays whole in the piece of its last token. The pieces concatenate to `text`.
pub(crate) fn pieces(bpe: &CoreBPE, text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut pending = Vec::new();
    for token in bpe.encode_with_special_tokens(text) {
        match bpe.decode_bytes(&[token]) {
            Ok(bytes) => pending.extend_from_slice(&bytes),
            // Our own encoding's tokens always decode; fall back to the whole text regardless.
            Err(_) => return vec![text.to_owned()],
        }
        if let Ok(piece) = std::str::from_utf8(&pending) {
            out.push(piece.to_owned());
            pending.clear();
        }
    }
    if !pending.is_empty() {
        out.push(String::from_utf8_lossy(&pending).into_owned());
    }
    out
}

#[cfg(test)]
mod test {
    use super::*;

    const SAMPLES: &[&str] = &[
        "",
        "Hello, world!",
        "naïve café — 東京タワー 🦀🦀 <|endoftext|> done",
        "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 and ﷽ and 👩‍👩‍👧‍👦",
    ];

    #[test]
    fn pieces_concatenate_to_the_text() {
        let bpe = bpe().unwrap();
        for text in SAMPLES {
            assert_eq!(pieces(bpe, text).concat(), *text);
        }
    }

    #[test]
    fn truncation_never_exceeds_the_bound() {
        let bpe = bpe().unwrap();
        for text in SAMPLES {
            let total = count(bpe, text);
            for max in 0..=total + 1 {
                let (prefix, cut) = truncate(bpe, text, max);
                assert!(count(bpe, &prefix) <= max, "{text:?} cut to {max}");
                assert!(text.starts_with(&prefix));
                assert_eq!(cut, total > max);
            }
        }
    }
}

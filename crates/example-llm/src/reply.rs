//! The deterministic reply every generating API here gives, and its cut at a token bound.

use tiktoken_rs::CoreBPE;

use crate::tokens;

/// The reply to one request, after any bound on its length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reply {
    /// The text sent.
    pub(crate) text: String,
    /// The tokens of `text`: the output (completion) tokens of the usage.
    pub(crate) tokens: u64,
    /// Whether the bound cut the text short.
    pub(crate) cut: bool,
}

impl Reply {
    /// `model`'s reply to a conversation whose last user message has the text `last_user`
    /// (`None` if there is no user message), cut at a token boundary to at most `max` tokens.
    pub(crate) fn new(
        bpe: &CoreBPE,
        model: &str,
        last_user: Option<&str>,
        max: Option<u64>,
    ) -> Self {
        let full = full_text(bpe, model, last_user);
        let (text, cut) = match max {
            Some(max) => tokens::truncate(bpe, &full, max),
            None => (full, false),
        };
        Self {
            tokens: tokens::count(bpe, &text),
            text,
            cut,
        }
    }

    /// The text in one piece per token, to stream; the pieces concatenate to the text.
    pub(crate) fn pieces(&self, bpe: &CoreBPE) -> Vec<String> {
        tokens::pieces(bpe, &self.text)
    }
}

/// The full reply, before any cut. It never quotes the prompt (a gateway may keep responses
/// for retries, and they must not carry prompts): it describes the last user message's size
/// and adds a few sentences chosen by a hash of it, so replies vary in length.
fn full_text(bpe: &CoreBPE, model: &str, last_user: Option<&str>) -> String {
    const SENTENCES: [&str; 6] = [
        "The lighthouse keeper counted the waves until morning.",
        "A quiet answer travels farther than a loud one.",
        "Every request here is paid for and unlinkable.",
        "The tide returns what the storm has taken.",
        "Small steps, taken daily, cross mountains.",
        "Nobody watching could tell who asked this.",
    ];
    let Some(text) = last_user else {
        return format!("Example reply from {model}: there was no user message to answer.");
    };
    let words = text.split_whitespace().count();
    let plural = if words == 1 { "" } else { "s" };
    let hash = fnv1a(text.as_bytes());
    let mut out = format!(
        "Example reply from {model}: your message had {words} word{plural} and {} tokens.",
        tokens::count(bpe, text)
    );
    for i in 0..=(hash % 4) {
        out.push(' ');
        out.push_str(SENTENCES[((hash >> (8 * i)) % SENTENCES.len() as u64) as usize]);
    }
    out
}

/// The 64-bit FNV-1a hash of `bytes`: a stable seed for what is derived from an input.
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn the_reply_describes_without_quoting_and_the_bound_holds() {
        let bpe = tokens::bpe().unwrap();
        let whole = Reply::new(bpe, "m", Some("second  question"), None);
        assert!(
            whole
                .text
                .starts_with("Example reply from m: your message had 2 words and 3 tokens."),
            "{}",
            whole.text
        );
        assert!(
            !whole.text.contains("question"),
            "the prompt is never quoted"
        );
        assert!(!whole.cut);
        assert_eq!(whole.tokens, tokens::count(bpe, &whole.text));
        assert_eq!(whole.pieces(bpe).concat(), whole.text);

        let cut = Reply::new(bpe, "m", Some("second  question"), Some(4));
        assert!(cut.cut);
        assert_eq!(cut.tokens, 4);
        assert!(whole.text.starts_with(&cut.text));
        assert_eq!(
            Reply::new(bpe, "m", Some("second  question"), Some(whole.tokens)),
            whole
        );

        let none = Reply::new(bpe, "m", None, None);
        assert_eq!(
            none.text,
            "Example reply from m: there was no user message to answer."
        );
    }
}

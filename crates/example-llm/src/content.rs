//! A message's content as the chat-like APIs write it: a string, or an array of parts (blocks)
//! of which those carrying a `text` field count.
//!
//! Chat Completions' `{"type": "text"}` parts, Anthropic's `{"type": "text"}` blocks and the
//! Responses API's `input_text` and `output_text` parts all carry their text in `text`; images,
//! tool calls and the like do not, and are accepted and not counted.

use std::borrow::Cow;

use serde::Deserialize;

/// A message's content: a string, or an array of parts of which the text parts count.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum Content {
    /// The whole content as one string.
    Text(String),
    /// Typed parts; only their `text` fields are read.
    Parts(Vec<Part>),
}

/// One part of an array content.
#[derive(Debug, Deserialize)]
pub(crate) struct Part {
    text: Option<String>,
}

impl Content {
    /// The text that counts: the string, or the text parts concatenated.
    pub(crate) fn text(&self) -> Cow<'_, str> {
        match self {
            Self::Text(text) => Cow::Borrowed(text),
            Self::Parts(parts) => {
                Cow::Owned(parts.iter().filter_map(|p| p.text.as_deref()).collect())
            }
        }
    }
}

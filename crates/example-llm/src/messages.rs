//! `POST /v1/messages`: Anthropic's Messages API as Anthropic documents it, the request, the
//! deterministic reply, its usage, and both response shapes (one `message` object, or
//! server-sent events named by type).
//!
//! Input tokens are counted with the same tokenizer and framing as a chat completion's prompt
//! (Anthropic's own tokenizer is not public): the `system` prompt, when given, as a turn of role
//! `system`, then each message as a turn of its role, then the reply's priming. So a
//! conversation costs the same input tokens here as the same conversation as a chat completion.

use std::time::Duration;

use axum::{http::StatusCode, response::Response};
use serde::Deserialize;
use serde_json::{Value, json};
use tiktoken_rs::CoreBPE;

use crate::{
    content::Content,
    error::ApiError,
    reply::Reply,
    sse,
    tokens::{self, Turn},
};

/// The fields of a Messages request that this server acts on; the others (temperature,
/// tools, metadata, …) are accepted and ignored.
#[derive(Debug, Deserialize)]
pub(crate) struct MessagesRequest {
    model: String,
    /// Required, as Anthropic requires it: a missing one is a parse error, hence 400.
    max_tokens: u64,
    messages: Vec<Message>,
    system: Option<Content>,
    stream: Option<bool>,
}

#[derive(Debug, Deserialize)]
struct Message {
    role: Role,
    content: Content,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Role {
    User,
    Assistant,
}

impl Role {
    fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Assistant => "assistant",
        }
    }
}

/// A message decided from a valid request, before it is sent.
#[derive(Debug, Clone)]
pub(crate) struct Answer {
    pub(crate) model: String,
    pub(crate) reply: Reply,
    /// `usage.input_tokens`.
    pub(crate) input_tokens: u64,
    /// Whether to answer with server-sent events.
    pub(crate) stream: bool,
}

impl Answer {
    /// Checks `request` and computes the reply and its usage; `models` are the served ids.
    /// Refusals are in OpenAI's format, for the handler to turn into Anthropic's.
    pub(crate) fn plan(
        bpe: &CoreBPE,
        models: &[String],
        request: MessagesRequest,
    ) -> Result<Self, ApiError> {
        if request.messages.is_empty() {
            return Err(ApiError::invalid(
                "messages: at least one message is required",
            ));
        }
        if request.max_tokens == 0 {
            return Err(ApiError::invalid(
                "max_tokens: must be greater than or equal to 1",
            ));
        }
        if !models.contains(&request.model) {
            return Err(ApiError::with_status(
                StatusCode::NOT_FOUND,
                format!("model: {}", request.model),
            ));
        }
        let system = request.system.as_ref().map(|system| Turn {
            role: "system",
            content: system.text(),
            name: None,
        });
        let turns = request.messages.iter().map(|message| Turn {
            role: message.role.as_str(),
            content: message.content.text(),
            name: None,
        });
        let input_tokens = tokens::prompt(bpe, system.into_iter().chain(turns));
        let last_user = request
            .messages
            .iter()
            .rev()
            .find(|m| m.role == Role::User)
            .map(|m| m.content.text());
        let reply = Reply::new(
            bpe,
            &request.model,
            last_user.as_deref(),
            Some(request.max_tokens),
        );
        Ok(Self {
            model: request.model,
            reply,
            input_tokens,
            stream: request.stream.unwrap_or(false),
        })
    }

    /// `"max_tokens"` if the reply was cut at `max_tokens`, else `"end_turn"`.
    pub(crate) fn stop_reason(&self) -> &'static str {
        if self.reply.cut {
            "max_tokens"
        } else {
            "end_turn"
        }
    }

    /// The `message` object, with `content` and `usage` as given.
    fn message(&self, id: &str, content: Value, stop_reason: Option<&str>, usage: Value) -> Value {
        json!({
            "id": id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": null,
            "usage": usage,
        })
    }

    /// The whole `message` object.
    pub(crate) fn to_json(&self, id: &str) -> Value {
        self.message(
            id,
            json!([{ "type": "text", "text": self.reply.text }]),
            Some(self.stop_reason()),
            json!({ "input_tokens": self.input_tokens, "output_tokens": self.reply.tokens }),
        )
    }

    /// The server-sent events, `delay` apart: `message_start` (no content yet, and as Anthropic
    /// sends it a provisional `output_tokens` of 1), `content_block_start`, `ping`, a
    /// `content_block_delta` per token, `content_block_stop`, `message_delta` with the stop
    /// reason and the final, cumulative `output_tokens`, and `message_stop`.
    pub(crate) fn into_event_stream(self, bpe: &CoreBPE, id: &str, delay: Duration) -> Response {
        let event = |data: Value| {
            let name = data["type"].as_str().unwrap_or_default().to_owned();
            sse::named(&name, &data)
        };
        let mut events = vec![
            event(json!({
                "type": "message_start",
                "message": self.message(
                    id,
                    json!([]),
                    None,
                    json!({ "input_tokens": self.input_tokens, "output_tokens": 1 }),
                ),
            })),
            event(json!({
                "type": "content_block_start",
                "index": 0,
                "content_block": { "type": "text", "text": "" },
            })),
            event(json!({ "type": "ping" })),
        ];
        events.extend(self.reply.pieces(bpe).into_iter().map(|piece| {
            event(json!({
                "type": "content_block_delta",
                "index": 0,
                "delta": { "type": "text_delta", "text": piece },
            }))
        }));
        events.extend([
            event(json!({ "type": "content_block_stop", "index": 0 })),
            event(json!({
                "type": "message_delta",
                "delta": { "stop_reason": self.stop_reason(), "stop_sequence": null },
                "usage": { "output_tokens": self.reply.tokens },
            })),
            event(json!({ "type": "message_stop" })),
        ]);
        sse::response(events, delay)
    }
}

#[cfg(test)]
mod test {
    use super::*;

    fn plan(body: Value) -> Result<Answer, ApiError> {
        let request: MessagesRequest = serde_json::from_value(body).unwrap();
        Answer::plan(tokens::bpe().unwrap(), &["m".to_owned()], request)
    }

    #[test]
    fn the_system_prompt_and_text_blocks_count_and_the_last_user_message_is_answered() {
        let bpe = tokens::bpe().unwrap();
        let answer = plan(json!({"model": "m", "max_tokens": 1000,
        "system": [{"type": "text", "text": "Be brief."}],
        "messages": [
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "ok"},
            {"role": "user", "content": [
                {"type": "image", "source": {"type": "base64", "data": "AAAA"}},
                {"type": "text", "text": "second  question"},
            ]},
        ]}))
        .unwrap();
        let count = |text| tokens::count(bpe, text);
        assert_eq!(
            answer.input_tokens,
            (3 + count("system") + count("Be brief."))
                + (3 + count("user") + count("first"))
                + (3 + count("assistant") + count("ok"))
                + (3 + count("user") + count("second  question"))
                + 3
        );
        assert_eq!(
            answer.reply,
            Reply::new(bpe, "m", Some("second  question"), None)
        );
        assert_eq!(answer.stop_reason(), "end_turn");
        assert!(!answer.stream);
    }

    #[test]
    fn invalid_requests_are_refused() {
        let user = json!([{"role": "user", "content": "hi"}]);
        for (body, status) in [
            (json!({"model": "m", "max_tokens": 5, "messages": []}), 400),
            (
                json!({"model": "m", "max_tokens": 0, "messages": user}),
                400,
            ),
            (
                json!({"model": "other", "max_tokens": 5, "messages": user}),
                404,
            ),
        ] {
            let error = plan(body.clone()).unwrap_err();
            assert_eq!(error.status.as_u16(), status, "{body}");
        }
    }
}

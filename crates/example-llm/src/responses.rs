//! `POST /v1/responses`: OpenAI's Responses API for text, the request, the deterministic
//! reply, its usage, and both response shapes (one `response` object, or server-sent events
//! named by type and numbered by `sequence_number`).
//!
//! Input tokens are counted as a chat completion's prompt: the `instructions`, when given, as a
//! turn of role `system`, then a string `input` as one `user` turn or each input message as a
//! turn of its role, then the reply's priming.

use std::{borrow::Cow, time::Duration};

use axum::response::Response;
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

/// The smallest `max_output_tokens` OpenAI accepts.
const MIN_OUTPUT_TOKENS: u64 = 16;

/// The fields of a Responses request that this server acts on; the others (temperature,
/// tools, store, …) are accepted and ignored.
#[derive(Debug, Deserialize)]
pub(crate) struct ResponsesRequest {
    model: String,
    input: Input,
    instructions: Option<String>,
    max_output_tokens: Option<u64>,
    stream: Option<bool>,
}

/// The input: one user message as a string, or a list of message items.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Input {
    Text(String),
    Items(Vec<Item>),
}

/// A message item, `{"type": "message", "role", "content"}` with the type optional.
#[derive(Debug, Deserialize)]
struct Item {
    #[serde(rename = "type")]
    kind: Option<String>,
    role: Role,
    content: Content,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Role {
    User,
    Assistant,
    System,
    Developer,
}

impl Role {
    fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Assistant => "assistant",
            Self::System => "system",
            Self::Developer => "developer",
        }
    }
}

/// The ids a response carries: its own (`resp_…`) and its output message's (`msg_…`).
#[derive(Debug, Clone)]
pub(crate) struct ResponseIds {
    /// The response's `id`.
    pub(crate) response: String,
    /// The output message item's `id`.
    pub(crate) message: String,
}

/// A response decided from a valid request, before it is sent.
#[derive(Debug, Clone)]
pub(crate) struct ModelResponse {
    pub(crate) model: String,
    pub(crate) reply: Reply,
    /// `usage.input_tokens`.
    pub(crate) input_tokens: u64,
    /// Whether to answer with server-sent events.
    pub(crate) stream: bool,
    instructions: Option<String>,
    max_output_tokens: Option<u64>,
}

impl ModelResponse {
    /// Checks `request` and computes the reply and its usage; `models` are the served ids.
    pub(crate) fn plan(
        bpe: &CoreBPE,
        models: &[String],
        request: ResponsesRequest,
    ) -> Result<Self, ApiError> {
        if let Input::Items(items) = &request.input {
            if items.is_empty() {
                return Err(ApiError::invalid(
                    "Invalid 'input': empty array. Expected an array with minimum length 1.",
                ));
            }
            if let Some(kind) = items
                .iter()
                .filter_map(|item| item.kind.as_deref())
                .find(|kind| *kind != "message")
            {
                return Err(ApiError::invalid(format!(
                    "Invalid input item type '{kind}': this example server takes message items \
                     only."
                )));
            }
        }
        ApiError::check_minimum(
            "max_output_tokens",
            request.max_output_tokens,
            MIN_OUTPUT_TOKENS,
        )?;
        if !models.contains(&request.model) {
            return Err(ApiError::model_not_found(&request.model));
        }

        let instructions = request.instructions.as_deref().map(|text| Turn {
            role: "system",
            content: text.into(),
            name: None,
        });
        let (input_tokens, last_user) = match &request.input {
            Input::Text(text) => {
                let turn = Turn {
                    role: "user",
                    content: text.into(),
                    name: None,
                };
                let input_tokens = tokens::prompt(bpe, instructions.into_iter().chain([turn]));
                (input_tokens, Some(Cow::Borrowed(text.as_str())))
            }
            Input::Items(items) => {
                let turns = items.iter().map(|item| Turn {
                    role: item.role.as_str(),
                    content: item.content.text(),
                    name: None,
                });
                let input_tokens = tokens::prompt(bpe, instructions.into_iter().chain(turns));
                let last_user = items
                    .iter()
                    .rev()
                    .find(|item| item.role == Role::User)
                    .map(|item| item.content.text());
                (input_tokens, last_user)
            }
        };
        let reply = Reply::new(
            bpe,
            &request.model,
            last_user.as_deref(),
            request.max_output_tokens,
        );
        Ok(Self {
            model: request.model,
            reply,
            input_tokens,
            stream: request.stream.unwrap_or(false),
            instructions: request.instructions,
            max_output_tokens: request.max_output_tokens,
        })
    }

    /// `"incomplete"` if the reply was cut at `max_output_tokens`, else `"completed"`.
    pub(crate) fn status(&self) -> &'static str {
        if self.reply.cut {
            "incomplete"
        } else {
            "completed"
        }
    }

    fn usage(&self) -> Value {
        json!({
            "input_tokens": self.input_tokens,
            "input_tokens_details": { "cached_tokens": 0 },
            "output_tokens": self.reply.tokens,
            "output_tokens_details": { "reasoning_tokens": 0 },
            "total_tokens": self.input_tokens.saturating_add(self.reply.tokens),
        })
    }

    /// The `output_text` content part, with `text` as given.
    fn part(text: &str) -> Value {
        json!({ "type": "output_text", "text": text, "annotations": [] })
    }

    /// The output message item, finished (or, as OpenAI marks it, incomplete when cut).
    fn item(&self, ids: &ResponseIds) -> Value {
        json!({
            "type": "message",
            "id": ids.message,
            "status": self.status(),
            "role": "assistant",
            "content": [Self::part(&self.reply.text)],
        })
    }

    /// The `response` object: finished if `done`, else in progress with no output or usage.
    fn response(&self, ids: &ResponseIds, created: u64, done: bool) -> Value {
        let (status, output, usage) = if done {
            (self.status(), json!([self.item(ids)]), self.usage())
        } else {
            ("in_progress", json!([]), Value::Null)
        };
        let incomplete_details = if done && self.reply.cut {
            json!({ "reason": "max_output_tokens" })
        } else {
            Value::Null
        };
        json!({
            "id": ids.response,
            "object": "response",
            "created_at": created,
            "status": status,
            "error": null,
            "incomplete_details": incomplete_details,
            "instructions": self.instructions,
            "max_output_tokens": self.max_output_tokens,
            "model": self.model,
            "output": output,
            "usage": usage,
        })
    }

    /// The finished `response` object.
    pub(crate) fn to_json(&self, ids: &ResponseIds, created: u64) -> Value {
        self.response(ids, created, true)
    }

    /// The server-sent events, `delay` apart, numbered from 0 by `sequence_number`:
    /// `response.created`, `response.in_progress`, `response.output_item.added`,
    /// `response.content_part.added`, a `response.output_text.delta` per token,
    /// `response.output_text.done`, `response.content_part.done`, `response.output_item.done`,
    /// then `response.completed` (`response.incomplete` if cut) with the finished response and
    /// its usage.
    pub(crate) fn into_event_stream(
        self,
        bpe: &CoreBPE,
        ids: &ResponseIds,
        created: u64,
        delay: Duration,
    ) -> Response {
        let mut sequence_number = 0u64;
        let mut event = |name: &str, mut data: Value| {
            data["type"] = json!(name);
            data["sequence_number"] = json!(sequence_number);
            sequence_number += 1;
            sse::named(name, &data)
        };
        // Where the text is: the first content part of the first output item.
        let place = |mut data: Value| {
            data["item_id"] = json!(ids.message);
            data["output_index"] = json!(0);
            data["content_index"] = json!(0);
            data
        };
        let in_progress = self.response(ids, created, false);
        let mut events = vec![
            event("response.created", json!({ "response": in_progress })),
            event("response.in_progress", json!({ "response": in_progress })),
            event(
                "response.output_item.added",
                json!({
                    "output_index": 0,
                    "item": {
                        "type": "message",
                        "id": ids.message,
                        "status": "in_progress",
                        "role": "assistant",
                        "content": [],
                    },
                }),
            ),
            event(
                "response.content_part.added",
                place(json!({ "part": Self::part("") })),
            ),
        ];
        for piece in self.reply.pieces(bpe) {
            events.push(event(
                "response.output_text.delta",
                place(json!({ "delta": piece })),
            ));
        }
        events.push(event(
            "response.output_text.done",
            place(json!({ "text": self.reply.text })),
        ));
        events.push(event(
            "response.content_part.done",
            place(json!({ "part": Self::part(&self.reply.text) })),
        ));
        events.push(event(
            "response.output_item.done",
            json!({ "output_index": 0, "item": self.item(ids) }),
        ));
        let last = if self.reply.cut {
            "response.incomplete"
        } else {
            "response.completed"
        };
        events.push(event(
            last,
            json!({ "response": self.response(ids, created, true) }),
        ));
        sse::response(events, delay)
    }
}

#[cfg(test)]
mod test {
    use super::*;

    fn plan(body: Value) -> Result<ModelResponse, ApiError> {
        let request: ResponsesRequest = serde_json::from_value(body).unwrap();
        ModelResponse::plan(tokens::bpe().unwrap(), &["m".to_owned()], request)
    }

    #[test]
    fn a_string_input_is_one_user_turn_and_items_are_turns() {
        let bpe = tokens::bpe().unwrap();
        let count = |text| tokens::count(bpe, text);
        let text = plan(json!({"model": "m", "input": "hello there", "instructions": "Be brief."}))
            .unwrap();
        assert_eq!(
            text.input_tokens,
            (3 + count("system") + count("Be brief."))
                + (3 + count("user") + count("hello there"))
                + 3
        );
        assert_eq!(text.reply, Reply::new(bpe, "m", Some("hello there"), None));

        let items = plan(json!({"model": "m", "input": [
            {"role": "user", "content": "first"},
            {"type": "message", "role": "assistant",
                "content": [{"type": "output_text", "text": "ok"}]},
            {"role": "user", "content": [{"type": "input_text", "text": "hello there"}]},
        ]}))
        .unwrap();
        assert_eq!(
            items.input_tokens,
            (3 + count("user") + count("first"))
                + (3 + count("assistant") + count("ok"))
                + (3 + count("user") + count("hello there"))
                + 3
        );
        assert_eq!(items.reply, text.reply);
        assert_eq!(items.status(), "completed");
    }

    #[test]
    fn invalid_requests_are_refused() {
        for (body, status) in [
            (json!({"model": "m", "input": []}), 400),
            (
                json!({"model": "m", "input": "hi", "max_output_tokens": 15}),
                400,
            ),
            (
                json!({"model": "m", "input": [{"type": "reasoning", "role": "user",
                    "content": "hi"}]}),
                400,
            ),
            (json!({"model": "other", "input": "hi"}), 404),
        ] {
            let error = plan(body.clone()).unwrap_err();
            assert_eq!(error.status.as_u16(), status, "{body}");
        }
    }
}

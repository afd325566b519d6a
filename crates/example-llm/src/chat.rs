//! `POST /v1/chat/completions`: the request as the OpenAI API defines it, the deterministic
//! reply, its usage, and both response shapes (one JSON object, or server-sent events).

use std::{convert::Infallible, time::Duration};

use axum::{
    body::{Body, Bytes},
    http::header,
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use serde_json::{Value, json};
use tiktoken_rs::CoreBPE;
use tokio::sync::mpsc;

use crate::{error::ApiError, tokens};

/// Tokens per message for its framing, and tokens that prime the reply, as in OpenAI's
/// cookbook ("How to count tokens with tiktoken") and `tiktoken_rs::num_tokens_from_messages`.
const TOKENS_PER_MESSAGE: u64 = 3;
/// Extra tokens for a message's `name`, on top of the name's own tokens.
const TOKENS_PER_NAME: u64 = 1;
/// Tokens that prime the reply (`<|start|>assistant<|message|>`).
const REPLY_PRIMING: u64 = 3;

/// The fields of a chat completion request that this server acts on; the others (temperature,
/// tools, …) are accepted and ignored.
#[derive(Debug, Deserialize)]
pub(crate) struct ChatRequest {
    model: String,
    messages: Vec<Message>,
    stream: Option<bool>,
    stream_options: Option<StreamOptions>,
    max_tokens: Option<u64>,
    max_completion_tokens: Option<u64>,
    n: Option<u64>,
}

#[derive(Debug, Deserialize)]
struct Message {
    role: Role,
    content: Option<Content>,
    name: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Role {
    System,
    Developer,
    User,
    Assistant,
    Tool,
    Function,
}

impl Role {
    fn as_str(self) -> &'static str {
        match self {
            Self::System => "system",
            Self::Developer => "developer",
            Self::User => "user",
            Self::Assistant => "assistant",
            Self::Tool => "tool",
            Self::Function => "function",
        }
    }
}

/// A message's content: a string, or an array of parts of which the text parts count.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Content {
    Text(String),
    Parts(Vec<Part>),
}

#[derive(Debug, Deserialize)]
struct Part {
    text: Option<String>,
}

impl Content {
    fn text(&self) -> String {
        match self {
            Self::Text(text) => text.clone(),
            Self::Parts(parts) => parts.iter().filter_map(|p| p.text.as_deref()).collect(),
        }
    }
}

#[derive(Debug, Deserialize)]
struct StreamOptions {
    include_usage: Option<bool>,
}

/// How a completion is delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Delivery {
    /// One `chat.completion` object.
    Whole,
    /// `chat.completion.chunk` events; with a final usage chunk if `include_usage`.
    Stream {
        /// `stream_options.include_usage`.
        include_usage: bool,
    },
}

/// A completion decided from a valid request, before it is sent.
#[derive(Debug, Clone)]
pub(crate) struct Completion {
    pub(crate) model: String,
    pub(crate) text: String,
    pub(crate) finish_reason: &'static str,
    pub(crate) prompt_tokens: u64,
    pub(crate) completion_tokens: u64,
    pub(crate) delivery: Delivery,
}

impl Completion {
    /// Checks `request` and computes the reply and its usage; `models` are the served ids.
    pub(crate) fn plan(
        bpe: &CoreBPE,
        models: &[String],
        request: ChatRequest,
    ) -> Result<Self, ApiError> {
        if request.messages.is_empty() {
            return Err(ApiError::invalid(
                "Invalid 'messages': empty array. Expected an array with minimum length 1.",
            ));
        }
        if request.n.is_some_and(|n| n != 1) {
            return Err(ApiError::invalid(
                "Invalid 'n': this example server only produces one choice (n = 1).",
            ));
        }
        let stream = request.stream.unwrap_or(false);
        if request.stream_options.is_some() && !stream {
            return Err(ApiError::invalid(
                "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
            ));
        }
        for (name, value) in [
            ("max_tokens", request.max_tokens),
            ("max_completion_tokens", request.max_completion_tokens),
        ] {
            if value == Some(0) {
                return Err(ApiError::invalid(format!(
                    "Invalid '{name}': integer below minimum value. Expected a value >= 1, \
                     but got 0 instead."
                )));
            }
        }
        if !models.contains(&request.model) {
            return Err(ApiError::model_not_found(&request.model));
        }
        // Both bounds hold when both are given.
        let max = match (request.max_tokens, request.max_completion_tokens) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };

        let prompt_tokens = prompt_tokens(bpe, &request.messages);
        let full = reply(bpe, &request.model, &request.messages);
        let (text, cut) = match max {
            Some(max) => tokens::truncate(bpe, &full, max),
            None => (full, false),
        };
        let completion_tokens = tokens::count(bpe, &text);
        let delivery = if stream {
            Delivery::Stream {
                include_usage: request
                    .stream_options
                    .and_then(|o| o.include_usage)
                    .unwrap_or(false),
            }
        } else {
            Delivery::Whole
        };
        Ok(Self {
            model: request.model,
            text,
            finish_reason: if cut { "length" } else { "stop" },
            prompt_tokens,
            completion_tokens,
            delivery,
        })
    }

    fn usage(&self) -> Value {
        json!({
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens.saturating_add(self.completion_tokens),
        })
    }

    /// The `chat.completion` object.
    pub(crate) fn to_json(&self, id: &str, created: u64) -> Value {
        json!({
            "id": id,
            "object": "chat.completion",
            "created": created,
            "model": self.model,
            "choices": [{
                "index": 0,
                "message": { "role": "assistant", "content": self.text, "refusal": null },
                "logprobs": null,
                "finish_reason": self.finish_reason,
            }],
            "usage": self.usage(),
        })
    }

    /// The server-sent events, sent as they are made on a channel, `delay` apart.
    pub(crate) fn into_event_stream(
        self,
        bpe: &'static CoreBPE,
        id: String,
        created: u64,
        delay: Duration,
    ) -> Response {
        let include_usage = matches!(
            self.delivery,
            Delivery::Stream {
                include_usage: true
            }
        );
        let (sender, mut receiver) = mpsc::channel::<Bytes>(16);
        tokio::spawn(async move {
            let chunk = |choices: Value, usage: Option<Value>| {
                let mut chunk = json!({
                    "id": id,
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": self.model,
                    "choices": choices,
                });
                // With include_usage OpenAI puts `"usage": null` on every chunk but the last.
                if include_usage {
                    chunk["usage"] = usage.unwrap_or(Value::Null);
                }
                event(&chunk.to_string())
            };
            let choice = |delta: Value, finish_reason: Option<&str>| {
                json!([{
                    "index": 0,
                    "delta": delta,
                    "logprobs": null,
                    "finish_reason": finish_reason,
                }])
            };
            let mut events = vec![chunk(
                choice(
                    json!({ "role": "assistant", "content": "", "refusal": null }),
                    None,
                ),
                None,
            )];
            let pieces = tokens::pieces(bpe, &self.text);
            events.extend(
                pieces
                    .into_iter()
                    .map(|piece| chunk(choice(json!({ "content": piece }), None), None)),
            );
            events.push(chunk(choice(json!({}), Some(self.finish_reason)), None));
            if include_usage {
                events.push(chunk(json!([]), Some(self.usage())));
            }
            events.push(event("[DONE]"));

            for (i, event) in events.into_iter().enumerate() {
                if i > 0 && !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                if sender.send(event).await.is_err() {
                    return; // the client went away
                }
            }
        });
        let body = futures_util::stream::poll_fn(move |cx| {
            receiver
                .poll_recv(cx)
                .map(|event| event.map(Ok::<_, Infallible>))
        });
        (
            [
                (header::CONTENT_TYPE, "text/event-stream; charset=utf-8"),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            Body::from_stream(body),
        )
            .into_response()
    }
}

/// One server-sent event carrying `data`.
fn event(data: &str) -> Bytes {
    Bytes::from(format!("data: {data}\n\n"))
}

/// The prompt's tokens: for each message 3 for its framing plus its role's and content's tokens
/// (and a name's tokens plus 1), then 3 priming the reply.
fn prompt_tokens(bpe: &CoreBPE, messages: &[Message]) -> u64 {
    let per_message = messages.iter().map(|message| {
        let content = message
            .content
            .as_ref()
            .map_or(0, |c| tokens::count(bpe, &c.text()));
        let name = message
            .name
            .as_deref()
            .map_or(0, |n| tokens::count(bpe, n) + TOKENS_PER_NAME);
        TOKENS_PER_MESSAGE + tokens::count(bpe, message.role.as_str()) + content + name
    });
    per_message.fold(REPLY_PRIMING, u64::saturating_add)
}

/// The full reply, before any `max_tokens` cut. It never quotes the prompt (a gateway may
/// keep responses for retries, and they must not carry prompts): it describes the last user
/// message's size and adds a few sentences chosen by a hash of it, so replies vary in length.
fn reply(bpe: &CoreBPE, model: &str, messages: &[Message]) -> String {
    const SENTENCES: [&str; 6] = [
        "The lighthouse keeper counted the waves until morning.",
        "A quiet answer travels farther than a loud one.",
        "Every request here is paid for and unlinkable.",
        "The tide returns what the storm has taken.",
        "Small steps, taken daily, cross mountains.",
        "Nobody watching could tell who asked this.",
    ];
    let last_user = messages
        .iter()
        .rev()
        .find(|m| m.role == Role::User)
        .and_then(|m| m.content.as_ref());
    let Some(content) = last_user else {
        return format!("Example reply from {model}: there was no user message to answer.");
    };
    let text = content.text();
    let words = text.split_whitespace().count();
    let plural = if words == 1 { "" } else { "s" };
    let hash = text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    let mut out = format!(
        "Example reply from {model}: your message had {words} word{plural} and {} tokens.",
        tokens::count(bpe, &text)
    );
    for i in 0..=(hash % 4) {
        out.push(' ');
        out.push_str(SENTENCES[((hash >> (8 * i)) % SENTENCES.len() as u64) as usize]);
    }
    out
}

#[cfg(test)]
mod test {
    use super::*;

    fn request(body: Value) -> ChatRequest {
        serde_json::from_value(body).unwrap()
    }

    fn models() -> Vec<String> {
        vec!["m".to_owned()]
    }

    #[test]
    fn reply_describes_the_last_user_message_without_quoting_it() {
        let bpe = tokens::bpe().unwrap();
        let plan = Completion::plan(
            bpe,
            &models(),
            request(json!({"model": "m", "messages": [
                {"role": "user", "content": "first"},
                {"role": "assistant", "content": "ok"},
                {"role": "user", "content": [{"type": "text", "text": "second  question"}]},
            ]})),
        )
        .unwrap();
        assert!(
            plan.text
                .starts_with("Example reply from m: your message had 2 words and 3 tokens."),
            "{}",
            plan.text
        );
        assert!(
            !plan.text.contains("second question"),
            "the prompt is never quoted"
        );
        assert_eq!(plan.finish_reason, "stop");
        assert_eq!(plan.delivery, Delivery::Whole);
    }

    #[test]
    fn the_smaller_bound_applies() {
        let bpe = tokens::bpe().unwrap();
        let plan = Completion::plan(
            bpe,
            &models(),
            request(
                json!({"model": "m", "max_tokens": 9, "max_completion_tokens": 4,
                "messages": [{"role": "user", "content": "hello there"}]}),
            ),
        )
        .unwrap();
        assert_eq!(plan.completion_tokens, 4);
        assert_eq!(plan.finish_reason, "length");
    }

    #[test]
    fn invalid_requests_are_refused() {
        let bpe = tokens::bpe().unwrap();
        let user = json!([{"role": "user", "content": "hi"}]);
        for (body, status) in [
            (json!({"model": "m", "messages": []}), 400),
            (json!({"model": "m", "messages": user, "n": 2}), 400),
            (
                json!({"model": "m", "messages": user, "max_tokens": 0}),
                400,
            ),
            (
                json!({"model": "m", "messages": user, "stream_options": {"include_usage": true}}),
                400,
            ),
            (json!({"model": "other", "messages": user}), 404),
        ] {
            let error = Completion::plan(bpe, &models(), request(body.clone())).unwrap_err();
            assert_eq!(error.status.as_u16(), status, "{body}");
        }
    }
}

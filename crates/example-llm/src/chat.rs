//! `POST /v1/chat/completions`: the request as the OpenAI API defines it, the deterministic
//! reply, its usage, and both response shapes (one JSON object, or server-sent events).

use std::time::Duration;

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

impl Message {
    fn turn(&self) -> Turn<'_> {
        Turn {
            role: self.role.as_str(),
            content: self.content.as_ref().map(Content::text).unwrap_or_default(),
            name: self.name.as_deref(),
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
    pub(crate) reply: Reply,
    pub(crate) prompt_tokens: u64,
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
        ApiError::check_minimum("max_tokens", request.max_tokens, 1)?;
        ApiError::check_minimum("max_completion_tokens", request.max_completion_tokens, 1)?;
        if !models.contains(&request.model) {
            return Err(ApiError::model_not_found(&request.model));
        }
        // Both bounds hold when both are given.
        let max = match (request.max_tokens, request.max_completion_tokens) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };

        let prompt_tokens = tokens::prompt(bpe, request.messages.iter().map(Message::turn));
        let last_user = request
            .messages
            .iter()
            .rev()
            .find(|m| m.role == Role::User)
            .and_then(|m| m.content.as_ref())
            .map(Content::text);
        let reply = Reply::new(bpe, &request.model, last_user.as_deref(), max);
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
            reply,
            prompt_tokens,
            delivery,
        })
    }

    /// `"length"` if the reply was cut at the bound, else `"stop"`.
    pub(crate) fn finish_reason(&self) -> &'static str {
        if self.reply.cut { "length" } else { "stop" }
    }

    fn usage(&self) -> Value {
        json!({
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.reply.tokens,
            "total_tokens": self.prompt_tokens.saturating_add(self.reply.tokens),
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
                "message": { "role": "assistant", "content": self.reply.text, "refusal": null },
                "logprobs": null,
                "finish_reason": self.finish_reason(),
            }],
            "usage": self.usage(),
        })
    }

    /// The server-sent events: a role chunk, a content chunk per token, a finish chunk, a usage
    /// chunk if `include_usage`, then `[DONE]`; sent `delay` apart.
    pub(crate) fn into_event_stream(
        self,
        bpe: &CoreBPE,
        id: &str,
        created: u64,
        delay: Duration,
    ) -> Response {
        let include_usage = matches!(
            self.delivery,
            Delivery::Stream {
                include_usage: true
            }
        );
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
            sse::data(&chunk.to_string())
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
        events.extend(
            self.reply
                .pieces(bpe)
                .into_iter()
                .map(|piece| chunk(choice(json!({ "content": piece }), None), None)),
        );
        events.push(chunk(choice(json!({}), Some(self.finish_reason())), None));
        if include_usage {
            events.push(chunk(json!([]), Some(self.usage())));
        }
        events.push(sse::data("[DONE]"));
        sse::response(events, delay)
    }
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
            plan.reply
                .text
                .starts_with("Example reply from m: your message had 2 words and 3 tokens."),
            "{}",
            plan.reply.text
        );
        assert!(
            !plan.reply.text.contains("question"),
            "the prompt is never quoted"
        );
        assert_eq!(plan.finish_reason(), "stop");
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
        assert_eq!(plan.reply.tokens, 4);
        assert_eq!(plan.finish_reason(), "length");
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

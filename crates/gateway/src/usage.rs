//! Token usage as each LLM API reports it (PROTOCOL §6 step 5), in a whole answer or over
//! the events of a stream.
//!
//! | API ([`TokenApi`]) | whole answer | stream |
//! | --- | --- | --- |
//! | OpenAI chat, embeddings | `usage.prompt_tokens`, `usage.completion_tokens` (0 if absent, as for embeddings) | the chunk with a `usage` object (asked for with `stream_options.include_usage`) |
//! | OpenAI Responses | `usage.input_tokens`, `usage.output_tokens` | `response.completed` / `response.incomplete` / `response.failed`: `response.usage` |
//! | Anthropic Messages | `usage.input_tokens` + `cache_creation_input_tokens` + `cache_read_input_tokens`, `usage.output_tokens` | `message_start`'s `message.usage`, then each `message_delta`'s `usage`: cumulative, so the last value of each field wins, never a sum |
//!
//! Cache tokens are charged at the input price: the price list has one input price.

use nullgate_protocol::price::{TokenApi, Usage};
use serde_json::Value;

/// What one stream event was, for the relay.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum EventKind {
    /// It carried generated content (a lower bound of one output token).
    Content,
    /// An OpenAI chat chunk with the usage and no choices: the one the gateway asked for.
    UsageOnly,
    /// Anything else.
    Other,
}

/// The usage of one stream, as far as its events have told it.
#[derive(Clone, Debug)]
pub struct Meter {
    api: TokenApi,
    input: Option<u64>,
    output: Option<u64>,
    content_events: u64,
    final_usage: bool,
}

impl Meter {
    /// A meter for a stream of `api`.
    pub fn new(api: TokenApi) -> Self {
        Self {
            api,
            input: None,
            output: None,
            content_events: 0,
            final_usage: false,
        }
    }

    /// Reads one event's `data` JSON.
    pub fn observe(&mut self, data: &Value) -> EventKind {
        let kind = data.get("type").and_then(Value::as_str).unwrap_or_default();
        match self.api {
            TokenApi::OpenAiChat => {
                if let Some(usage) = data.get("usage").and_then(openai_chat) {
                    self.set(usage);
                    self.final_usage = true;
                    let no_choices = data
                        .get("choices")
                        .and_then(Value::as_array)
                        .is_some_and(Vec::is_empty);
                    if no_choices {
                        return EventKind::UsageOnly;
                    }
                }
                let delta = data
                    .get("choices")
                    .and_then(|c| c.get(0))
                    .and_then(|c| c.get("delta"));
                let generated = delta.is_some_and(|delta| {
                    ["content", "reasoning_content", "refusal"]
                        .iter()
                        .any(|field| {
                            delta
                                .get(field)
                                .and_then(Value::as_str)
                                .is_some_and(|t| !t.is_empty())
                        })
                        || delta.get("tool_calls").is_some_and(|t| !t.is_null())
                });
                self.content(generated)
            }
            TokenApi::OpenAiResponses => {
                if matches!(
                    kind,
                    "response.completed" | "response.incomplete" | "response.failed"
                ) && let Some(usage) = data
                    .get("response")
                    .and_then(|r| r.get("usage"))
                    .and_then(input_output)
                {
                    self.set(usage);
                    self.final_usage = true;
                }
                self.content(kind.ends_with(".delta"))
            }
            TokenApi::Anthropic => {
                match kind {
                    "message_start" => {
                        if let Some(usage) = data.get("message").and_then(|m| m.get("usage")) {
                            self.merge_anthropic(usage);
                        }
                    }
                    "message_delta" => {
                        if let Some(usage) = data.get("usage") {
                            self.merge_anthropic(usage);
                            self.final_usage = self.output.is_some();
                        }
                    }
                    _ => {}
                }
                self.content(kind == "content_block_delta")
            }
        }
    }

    /// The usage the stream reported in full (its final usage event), if it did.
    pub fn usage(&self) -> Option<Usage> {
        self.final_usage.then(|| self.lower_bound())
    }

    /// What the stream has used at least, so far: the reported fields, and one output
    /// token per content event when more than reported.
    pub fn lower_bound(&self) -> Usage {
        Usage {
            input_tokens: self.input.unwrap_or(0),
            output_tokens: self.output.unwrap_or(0).max(if self.final_usage {
                0
            } else {
                self.content_events
            }),
        }
    }

    fn content(&mut self, generated: bool) -> EventKind {
        if generated {
            self.content_events += 1;
            EventKind::Content
        } else {
            EventKind::Other
        }
    }

    fn set(&mut self, usage: Usage) {
        self.input = Some(usage.input_tokens);
        self.output = Some(usage.output_tokens);
    }

    /// Anthropic's usage objects are cumulative: each field present replaces the last.
    fn merge_anthropic(&mut self, usage: &Value) {
        if let Some(input) = anthropic_input(usage) {
            self.input = Some(input);
        }
        if let Some(output) = usage.get("output_tokens").and_then(Value::as_u64) {
            self.output = Some(output);
        }
    }
}

/// The usage of a whole (unstreamed) answer of `api`.
pub fn of_answer(api: TokenApi, answer: &Value) -> Option<Usage> {
    let usage = answer.get("usage")?;
    match api {
        TokenApi::OpenAiChat => openai_chat(usage),
        TokenApi::OpenAiResponses => input_output(usage),
        TokenApi::Anthropic => Some(Usage {
            input_tokens: anthropic_input(usage)?,
            output_tokens: usage.get("output_tokens")?.as_u64()?,
        }),
    }
}

fn openai_chat(usage: &Value) -> Option<Usage> {
    Some(Usage {
        input_tokens: usage.get("prompt_tokens")?.as_u64()?,
        output_tokens: match usage.get("completion_tokens") {
            None | Some(Value::Null) => 0,
            Some(tokens) => tokens.as_u64()?,
        },
    })
}

fn input_output(usage: &Value) -> Option<Usage> {
    Some(Usage {
        input_tokens: usage.get("input_tokens")?.as_u64()?,
        output_tokens: usage.get("output_tokens")?.as_u64()?,
    })
}

/// `input_tokens` plus the two cache counts, when `input_tokens` is there.
fn anthropic_input(usage: &Value) -> Option<u64> {
    let base = usage.get("input_tokens")?.as_u64()?;
    let cache = ["cache_creation_input_tokens", "cache_read_input_tokens"]
        .iter()
        .filter_map(|field| usage.get(field).and_then(Value::as_u64))
        .fold(0u64, u64::saturating_add);
    Some(base.saturating_add(cache))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn whole_answers_of_each_api() {
        let chat = json!({"usage": {"prompt_tokens": 11, "completion_tokens": 7}});
        let embeddings = json!({"usage": {"prompt_tokens": 9, "total_tokens": 9}});
        let responses =
            json!({"usage": {"input_tokens": 5, "output_tokens": 3, "total_tokens": 8}});
        let anthropic = json!({"usage": {"input_tokens": 4, "cache_read_input_tokens": 10,
            "cache_creation_input_tokens": 2, "output_tokens": 6}});
        let usage = |i, o| {
            Some(Usage {
                input_tokens: i,
                output_tokens: o,
            })
        };
        assert_eq!(of_answer(TokenApi::OpenAiChat, &chat), usage(11, 7));
        assert_eq!(of_answer(TokenApi::OpenAiChat, &embeddings), usage(9, 0));
        assert_eq!(
            of_answer(TokenApi::OpenAiResponses, &responses),
            usage(5, 3)
        );
        assert_eq!(of_answer(TokenApi::Anthropic, &anthropic), usage(16, 6));
        // Another API's field names are no usage at all (charged the cap).
        assert_eq!(of_answer(TokenApi::OpenAiResponses, &chat), None);
        assert_eq!(of_answer(TokenApi::Anthropic, &chat), None);
        assert_eq!(
            of_answer(TokenApi::OpenAiChat, &json!({"usage": null})),
            None
        );
    }

    #[test]
    fn anthropic_streams_take_the_last_cumulative_value() {
        let mut meter = Meter::new(TokenApi::Anthropic);
        meter.observe(&json!({"type": "message_start",
            "message": {"usage": {"input_tokens": 25, "output_tokens": 1}}}));
        assert_eq!(meter.usage(), None);
        for _ in 0..3 {
            assert_eq!(
                meter.observe(&json!({"type": "content_block_delta",
                    "delta": {"type": "text_delta", "text": "hi"}})),
                EventKind::Content
            );
        }
        assert_eq!(meter.lower_bound().output_tokens, 3);
        meter.observe(&json!({"type": "message_delta", "usage": {"output_tokens": 15}}));
        // 15, not 16: message_delta's count is the total so far, never added to message_start's.
        assert_eq!(
            meter.usage(),
            Some(Usage {
                input_tokens: 25,
                output_tokens: 15
            })
        );
        meter.observe(&json!({"type": "message_delta", "usage": {"output_tokens": 17}}));
        assert_eq!(meter.usage().unwrap().output_tokens, 17);
    }

    #[test]
    fn responses_and_chat_streams() {
        let mut meter = Meter::new(TokenApi::OpenAiResponses);
        assert_eq!(
            meter.observe(&json!({"type": "response.output_text.delta", "delta": "a"})),
            EventKind::Content
        );
        meter.observe(&json!({"type": "response.in_progress", "response": {"usage": null}}));
        assert_eq!(meter.usage(), None);
        meter.observe(&json!({"type": "response.completed",
            "response": {"usage": {"input_tokens": 8, "output_tokens": 2}}}));
        assert_eq!(
            meter.usage(),
            Some(Usage {
                input_tokens: 8,
                output_tokens: 2
            })
        );

        let mut meter = Meter::new(TokenApi::OpenAiChat);
        let chunk = json!({"choices": [{"delta": {"content": "x"}}], "usage": null});
        assert_eq!(meter.observe(&chunk), EventKind::Content);
        let last = json!({"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 1}});
        assert_eq!(meter.observe(&last), EventKind::UsageOnly);
        assert_eq!(meter.usage().unwrap().input_tokens, 3);
    }
}

//! Helpers for the tests of the APIs beyond chat completions: a server, the tokenizer as the
//! oracle, plain posts, and streams of named server-sent events.

#![allow(dead_code)] // each test file uses its own part

use nullgate_example_llm::{ExampleLlmConfig, RunningExampleLlm, start};
use serde_json::Value;
use tiktoken_rs::{ChatCompletionRequestMessage, num_tokens_from_messages, o200k_base_singleton};

pub(crate) async fn server(config: ExampleLlmConfig) -> RunningExampleLlm {
    start(config).await.expect("the example server starts")
}

/// The tokens of `text`, straight from tiktoken-rs.
pub(crate) fn tokens(text: &str) -> u64 {
    o200k_base_singleton()
        .encode_with_special_tokens(text)
        .len() as u64
}

/// The prompt count that tiktoken-rs's own cookbook rule gives for `(role, content)` turns.
pub(crate) fn cookbook_tokens(turns: &[(&str, &str)]) -> u64 {
    let messages: Vec<ChatCompletionRequestMessage> = turns
        .iter()
        .map(|(role, content)| ChatCompletionRequestMessage {
            role: (*role).to_owned(),
            content: Some((*content).to_owned()),
            ..Default::default()
        })
        .collect();
    num_tokens_from_messages("gpt-4o", &messages).unwrap() as u64
}

/// Posts `body` as JSON to `path` (from the root, e.g. `/v1/messages`), with `headers`.
pub(crate) async fn post_with(
    llm: &RunningExampleLlm,
    path: &str,
    headers: &[(&str, &str)],
    body: &Value,
) -> reqwest::Response {
    let mut request = reqwest::Client::new()
        .post(format!("http://{}{path}", llm.addr()))
        .json(body);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

/// Posts `body` as JSON to `path`.
pub(crate) async fn post(llm: &RunningExampleLlm, path: &str, body: &Value) -> reqwest::Response {
    post_with(llm, path, &[], body).await
}

/// Posts `body` to `path` and reads the JSON answer, which must have `status`.
pub(crate) async fn answer(
    llm: &RunningExampleLlm,
    path: &str,
    body: &Value,
    status: u16,
) -> Value {
    let response = post(llm, path, body).await;
    assert_eq!(response.status(), status, "{body}");
    response.json().await.unwrap()
}

/// The events of a stream of `event:` + `data:` events, as (name, JSON data), in order, each
/// name checked to be its data's `type` as both Anthropic and OpenAI's Responses API send.
pub(crate) fn named_events(body: &str) -> Vec<(String, Value)> {
    assert!(body.ends_with("\n\n"), "{body:?}");
    body.split("\n\n")
        .filter(|event| !event.is_empty())
        .map(|event| {
            let (name, data) = event
                .strip_prefix("event: ")
                .and_then(|rest| rest.split_once("\ndata: "))
                .unwrap_or_else(|| panic!("not a named event: {event:?}"));
            let data: Value = serde_json::from_str(data).unwrap();
            assert_eq!(data["type"], name, "{event}");
            (name.to_owned(), data)
        })
        .collect()
}

/// Posts `body` to `path` and reads the event stream it must answer with.
pub(crate) async fn stream(
    llm: &RunningExampleLlm,
    path: &str,
    body: &Value,
) -> Vec<(String, Value)> {
    let response = post(llm, path, body).await;
    assert_eq!(response.status(), 200, "{body}");
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    named_events(&response.text().await.unwrap())
}

/// The names of `events`, in order.
pub(crate) fn names(events: &[(String, Value)]) -> Vec<&str> {
    events.iter().map(|(name, _)| name.as_str()).collect()
}

/// `head`, then `name` `n` times, then `tail`: an expected sequence of event names.
pub(crate) fn sequence<'a>(
    head: &[&'a str],
    name: &'a str,
    n: u64,
    tail: &[&'a str],
) -> Vec<&'a str> {
    let mut out = head.to_vec();
    out.extend(std::iter::repeat_n(name, n as usize));
    out.extend_from_slice(tail);
    out
}

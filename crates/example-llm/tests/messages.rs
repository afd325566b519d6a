//! Anthropic's Messages API, `POST /v1/messages`, over real HTTP, as an Anthropic client sees it.

mod common;

use common::{answer, cookbook_tokens, names, post, post_with, sequence, server, stream, tokens};
use nullgate_example_llm::{CountersSnapshot, DEFAULT_MODEL, ExampleLlmConfig, MAX_REQUEST_BYTES};
use serde_json::{Value, json};

const PATH: &str = "/v1/messages";
const SYSTEM: &str = "You are a helpful assistant.";
const QUESTION: &str = "What is the capital of France, and why is it Paris?";

/// A request with a system prompt and a user message made of blocks, one of them not text.
fn request() -> Value {
    json!({
        "model": DEFAULT_MODEL,
        "max_tokens": 1024,
        "system": SYSTEM,
        "temperature": 0.5,
        "messages": [{"role": "user", "content": [
            {"type": "text", "text": QUESTION},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
        ]}],
    })
}

/// The input count documented: the system prompt as a `system` turn, then the messages, by
/// the cookbook rule.
fn expected_input_tokens() -> u64 {
    cookbook_tokens(&[("system", SYSTEM), ("user", QUESTION)])
}

/// The text of the content deltas of a stream.
fn streamed_text(events: &[(String, Value)]) -> String {
    events
        .iter()
        .filter(|(name, _)| name == "content_block_delta")
        .map(|(_, data)| {
            assert_eq!(data["index"], 0);
            assert_eq!(data["delta"]["type"], "text_delta");
            data["delta"]["text"].as_str().unwrap()
        })
        .collect()
}

/// The event named `name`, which must occur exactly once.
fn only<'a>(events: &'a [(String, Value)], name: &str) -> &'a Value {
    let mut found = events.iter().filter(|(n, _)| n == name);
    let (_, data) = found.next().unwrap_or_else(|| panic!("no {name}"));
    assert!(found.next().is_none(), "more than one {name}");
    data
}

#[tokio::test]
async fn unstreamed_message_has_the_anthropic_shape_and_exact_usage() {
    let llm = server(ExampleLlmConfig::default()).await;
    let message = answer(&llm, PATH, &request(), 200).await;

    let id = message["id"].as_str().unwrap();
    assert!(id.starts_with("msg_") && id.len() == 4 + 24, "{id}");
    assert_eq!(message["type"], "message");
    assert_eq!(message["role"], "assistant");
    assert_eq!(message["model"], DEFAULT_MODEL);
    assert_eq!(message["stop_reason"], "end_turn");
    assert!(message["stop_sequence"].is_null());
    let content = message["content"].as_array().unwrap();
    assert_eq!(content.len(), 1);
    assert_eq!(content[0]["type"], "text");
    let text = content[0]["text"].as_str().unwrap();
    assert!(text.starts_with("Example reply from"), "{text}");
    assert!(
        !text.contains("capital of France"),
        "the prompt is never quoted: {text}"
    );

    assert_eq!(
        message["usage"],
        json!({"input_tokens": expected_input_tokens(), "output_tokens": tokens(text)})
    );

    // The same reply as a chat completion gives for the same last user message.
    let chat = answer(
        &llm,
        "/v1/chat/completions",
        &json!({"model": DEFAULT_MODEL, "messages": [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": QUESTION},
        ]}),
        200,
    )
    .await;
    assert_eq!(chat["choices"][0]["message"]["content"], text);
    assert_eq!(
        chat["usage"]["prompt_tokens"], message["usage"]["input_tokens"],
        "one conversation, one input count"
    );

    // A system prompt given as text blocks counts the same as a string.
    let mut blocks = request();
    blocks["system"] = json!([{"type": "text", "text": SYSTEM}]);
    assert_eq!(
        answer(&llm, PATH, &blocks, 200).await["usage"],
        message["usage"]
    );
    llm.stop().await.unwrap();
}

#[tokio::test]
async fn a_stream_sends_anthropics_events_and_the_final_usage() {
    let llm = server(ExampleLlmConfig::default()).await;
    let whole = answer(&llm, PATH, &request(), 200).await;
    let text = whole["content"][0]["text"].as_str().unwrap();
    let output_tokens = whole["usage"]["output_tokens"].as_u64().unwrap();

    let mut streamed = request();
    streamed["stream"] = json!(true);
    let events = stream(&llm, PATH, &streamed).await;
    // The reply is ASCII: one delta per token.
    assert_eq!(
        names(&events),
        sequence(
            &["message_start", "content_block_start", "ping"],
            "content_block_delta",
            output_tokens,
            &["content_block_stop", "message_delta", "message_stop"],
        )
    );

    let start = &only(&events, "message_start")["message"];
    assert!(start["id"].as_str().unwrap().starts_with("msg_"));
    assert_eq!(start["type"], "message");
    assert_eq!(start["role"], "assistant");
    assert_eq!(start["model"], DEFAULT_MODEL);
    assert_eq!(start["content"], json!([]));
    assert!(start["stop_reason"].is_null());
    assert_eq!(
        start["usage"],
        json!({"input_tokens": expected_input_tokens(), "output_tokens": 1})
    );
    assert_eq!(
        only(&events, "content_block_start")["content_block"],
        json!({"type": "text", "text": ""})
    );
    assert_eq!(only(&events, "content_block_stop")["index"], 0);
    assert_eq!(streamed_text(&events), text);

    // The final output count is cumulative: the unstreamed total itself, not an increment on
    // message_start's provisional 1.
    let delta = only(&events, "message_delta");
    assert_eq!(
        delta["delta"],
        json!({"stop_reason": "end_turn", "stop_sequence": null})
    );
    assert_eq!(delta["usage"], json!({"output_tokens": output_tokens}));
    assert_eq!(
        json!({
            "input_tokens": start["usage"]["input_tokens"],
            "output_tokens": delta["usage"]["output_tokens"],
        }),
        whole["usage"],
        "the stream's usage is the unstreamed usage"
    );

    assert_eq!(
        llm.counters(),
        CountersSnapshot {
            messages: 2,
            streamed_messages: 1,
            message_input_tokens: 2 * expected_input_tokens(),
            message_output_tokens: 2 * output_tokens,
            ..CountersSnapshot::default()
        }
    );
    llm.stop().await.unwrap();
}

#[tokio::test]
async fn max_tokens_cuts_the_reply() {
    let llm = server(ExampleLlmConfig::default()).await;
    for max in [1, 5, 12] {
        let mut body = request();
        body["max_tokens"] = json!(max);
        let message = answer(&llm, PATH, &body, 200).await;
        let text = message["content"][0]["text"].as_str().unwrap();
        assert_eq!(tokens(text), max, "{max}: {text:?}");
        assert_eq!(message["usage"]["output_tokens"], max);
        assert_eq!(message["stop_reason"], "max_tokens");

        body["stream"] = json!(true);
        let events = stream(&llm, PATH, &body).await;
        assert_eq!(streamed_text(&events), text);
        let delta = only(&events, "message_delta");
        assert_eq!(delta["delta"]["stop_reason"], "max_tokens");
        assert_eq!(delta["usage"]["output_tokens"], max);
    }
    llm.stop().await.unwrap();
}

/// The status and the error object of a refusal in Anthropic's format.
async fn refusal(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["type"], "error", "{body}");
    let error = body["error"].clone();
    assert!(error["message"].is_string(), "{body}");
    assert!(error["type"].is_string(), "{body}");
    assert_eq!(
        error.as_object().unwrap().len(),
        2,
        "only type and message: {body}"
    );
    (status, error)
}

#[tokio::test]
async fn invalid_requests_get_anthropic_errors() {
    let llm = server(ExampleLlmConfig::default()).await;
    let user = json!([{"role": "user", "content": "hi"}]);
    for body in [
        json!({"model": DEFAULT_MODEL, "messages": user}),
        json!({"model": DEFAULT_MODEL, "max_tokens": 0, "messages": user}),
        json!({"model": DEFAULT_MODEL, "max_tokens": -3, "messages": user}),
        json!({"model": DEFAULT_MODEL, "max_tokens": 10, "messages": []}),
        json!({"model": DEFAULT_MODEL, "max_tokens": 10}),
        json!({"model": DEFAULT_MODEL, "max_tokens": 10,
            "messages": [{"role": "system", "content": "hi"}]}),
        json!({"max_tokens": 10, "messages": user}),
        json!("hello"),
    ] {
        let (status, error) = refusal(post(&llm, PATH, &body).await).await;
        assert_eq!(status, 400, "{body}: {error}");
        assert_eq!(error["type"], "invalid_request_error", "{body}");
    }
    let (_, error) = refusal(
        post(
            &llm,
            PATH,
            &json!({"model": DEFAULT_MODEL, "messages": user}),
        )
        .await,
    )
    .await;
    assert!(
        error["message"].as_str().unwrap().contains("max_tokens"),
        "{error}"
    );

    let unknown = json!({"model": "claude-9", "max_tokens": 10, "messages": user});
    let (status, error) = refusal(post(&llm, PATH, &unknown).await).await;
    assert_eq!(status, 404);
    assert_eq!(error["type"], "not_found_error");

    let huge = reqwest::Client::new()
        .post(format!("http://{}{PATH}", llm.addr()))
        .header("content-type", "application/json")
        .body(vec![b' '; MAX_REQUEST_BYTES + 1])
        .send()
        .await
        .unwrap();
    let (status, error) = refusal(huge).await;
    assert_eq!(status, 413);
    assert_eq!(error["type"], "request_too_large");

    let get = reqwest::Client::new()
        .get(format!("http://{}{PATH}", llm.addr()))
        .send()
        .await
        .unwrap();
    assert_eq!(refusal(get).await.0, 405);

    assert_eq!(llm.counters(), CountersSnapshot::default());
    llm.stop().await.unwrap();
}

#[tokio::test]
async fn a_configured_key_is_taken_as_x_api_key() {
    let llm = server(ExampleLlmConfig {
        api_key: Some("sk-ant-right".to_owned()),
        ..ExampleLlmConfig::default()
    })
    .await;
    let body = request();
    let anthropic = |key| [("x-api-key", key), ("anthropic-version", "2023-06-01")];

    let (status, error) =
        refusal(post_with(&llm, PATH, &anthropic("sk-ant-wrong"), &body).await).await;
    assert_eq!(status, 401);
    assert_eq!(error["type"], "authentication_error");
    assert!(
        !error["message"].as_str().unwrap().contains("sk-"),
        "{error}"
    );
    let (status, error) = refusal(post(&llm, PATH, &body).await).await;
    assert_eq!(status, 401);
    assert_eq!(error["type"], "authentication_error");
    assert_eq!(llm.counters().messages, 0);

    let right = post_with(&llm, PATH, &anthropic("sk-ant-right"), &body).await;
    assert_eq!(right.status(), 200);
    assert_eq!(right.json::<Value>().await.unwrap()["type"], "message");
    // A bearer token is taken too, here and on the OpenAI routes alike.
    let bearer = post_with(
        &llm,
        PATH,
        &[("authorization", "Bearer sk-ant-right")],
        &body,
    )
    .await;
    assert_eq!(bearer.status(), 200);
    let models = reqwest::Client::new()
        .get(format!("{}/models", llm.base_url()))
        .header("x-api-key", "sk-ant-right")
        .send()
        .await
        .unwrap();
    assert_eq!(models.status(), 200);
    assert_eq!(llm.counters().messages, 2);
    llm.stop().await.unwrap();
}

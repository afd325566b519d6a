//! The example upstream over real HTTP, as an OpenAI client sees it.

use std::time::Duration;

use nullgate_example_llm::{
    CountersSnapshot, DEFAULT_MODEL, ExampleLlmConfig, MAX_REQUEST_BYTES, RunningExampleLlm, start,
};
use serde_json::{Value, json};
use tiktoken_rs::{ChatCompletionRequestMessage, num_tokens_from_messages, o200k_base_singleton};

async fn server(config: ExampleLlmConfig) -> RunningExampleLlm {
    start(config).await.expect("the example server starts")
}

fn messages() -> Value {
    json!([
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "What is the capital of France, and why is it Paris?"},
    ])
}

/// The prompt count that tiktoken-rs's own cookbook rule gives for [`messages`].
fn expected_prompt_tokens() -> u64 {
    let messages: Vec<ChatCompletionRequestMessage> = messages()
        .as_array()
        .unwrap()
        .iter()
        .map(|m| ChatCompletionRequestMessage {
            role: m["role"].as_str().unwrap().to_owned(),
            content: Some(m["content"].as_str().unwrap().to_owned()),
            ..Default::default()
        })
        .collect();
    num_tokens_from_messages("gpt-4o", &messages).unwrap() as u64
}

fn tokens(text: &str) -> u64 {
    o200k_base_singleton()
        .encode_with_special_tokens(text)
        .len() as u64
}

async fn post(llm: &RunningExampleLlm, body: &Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}/chat/completions", llm.base_url()))
        .json(body)
        .send()
        .await
        .unwrap()
}

/// The `data:` payloads of an event stream, in order.
fn events(body: &str) -> Vec<String> {
    assert!(body.ends_with("\n\n"), "{body:?}");
    body.split("\n\n")
        .filter(|event| !event.is_empty())
        .map(|event| {
            event
                .strip_prefix("data: ")
                .unwrap_or_else(|| panic!("not a data event: {event:?}"))
                .to_owned()
        })
        .collect()
}

/// The chunks of a streamed answer, checking the framing that OpenAI clients rely on.
async fn stream(llm: &RunningExampleLlm, body: Value) -> Vec<Value> {
    let response = post(llm, &body).await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let events = events(&response.text().await.unwrap());
    assert_eq!(events.last().unwrap(), "[DONE]");
    events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str::<Value>(e).unwrap())
        .inspect(|chunk| {
            assert_eq!(chunk["object"], "chat.completion.chunk");
            assert!(chunk["id"].as_str().unwrap().starts_with("chatcmpl-"));
            assert_eq!(chunk["model"], DEFAULT_MODEL);
        })
        .collect()
}

fn content(chunks: &[Value]) -> String {
    chunks
        .iter()
        .filter_map(|c| c["choices"].get(0)?["delta"]["content"].as_str())
        .collect()
}

#[tokio::test]
async fn unstreamed_answer_has_the_openai_shape_and_real_usage() {
    let llm = server(ExampleLlmConfig::default()).await;
    let response = post(
        &llm,
        &json!({"model": DEFAULT_MODEL, "messages": messages()}),
    )
    .await;
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();

    assert!(answer["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert_eq!(answer["object"], "chat.completion");
    assert!(answer["created"].as_u64().unwrap() > 1_600_000_000);
    assert_eq!(answer["model"], DEFAULT_MODEL);
    let choice = &answer["choices"][0];
    assert_eq!(choice["index"], 0);
    assert_eq!(choice["message"]["role"], "assistant");
    assert_eq!(choice["finish_reason"], "stop");
    let text = choice["message"]["content"].as_str().unwrap();
    assert!(text.starts_with("Example reply from"), "{text}");
    assert!(
        !text.contains("capital of France"),
        "the prompt is never quoted: {text}"
    );

    let usage = &answer["usage"];
    assert_eq!(
        usage["prompt_tokens"].as_u64().unwrap(),
        expected_prompt_tokens()
    );
    assert_eq!(usage["completion_tokens"].as_u64().unwrap(), tokens(text));
    assert_eq!(
        usage["total_tokens"].as_u64().unwrap(),
        expected_prompt_tokens() + tokens(text)
    );
    llm.stop().await.unwrap();
}

#[tokio::test]
async fn streamed_answers_match_the_unstreamed_one() {
    let llm = server(ExampleLlmConfig::default()).await;
    let request = json!({"model": DEFAULT_MODEL, "messages": messages()});
    let whole: Value = post(&llm, &request).await.json().await.unwrap();
    let text = whole["choices"][0]["message"]["content"].as_str().unwrap();

    // Without include_usage: role first, content deltas, finish_reason, no usage anywhere.
    let mut plain = request.clone();
    plain["stream"] = json!(true);
    let chunks = stream(&llm, plain).await;
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    assert!(chunks.len() > 3, "one chunk per token");
    assert_eq!(content(&chunks), text);
    let last = chunks.last().unwrap();
    assert_eq!(last["choices"][0]["finish_reason"], "stop");
    assert!(chunks.iter().all(|c| c.get("usage").is_none()));
    assert!(
        chunks[..chunks.len() - 1]
            .iter()
            .all(|c| c["choices"][0]["finish_reason"].is_null())
    );

    // With include_usage: one more chunk, with no choices and the same usage as unstreamed.
    let mut with_usage = request.clone();
    with_usage["stream"] = json!(true);
    with_usage["stream_options"] = json!({"include_usage": true});
    let chunks = stream(&llm, with_usage).await;
    assert_eq!(content(&chunks), text);
    let (usage_chunk, rest) = chunks.split_last().unwrap();
    assert_eq!(usage_chunk["choices"], json!([]));
    assert_eq!(usage_chunk["usage"], whole["usage"]);
    assert_eq!(rest.last().unwrap()["choices"][0]["finish_reason"], "stop");
    assert!(rest.iter().all(|c| c["usage"].is_null()));

    assert_eq!(
        llm.counters(),
        CountersSnapshot {
            chat_completions: 3,
            streamed_chat_completions: 2,
            prompt_tokens: 3 * expected_prompt_tokens(),
            completion_tokens: 3 * tokens(text),
            ..CountersSnapshot::default()
        }
    );
    llm.stop().await.unwrap();
}

#[tokio::test]
async fn max_tokens_bounds_the_completion() {
    let llm = server(ExampleLlmConfig::default()).await;
    for (field, max) in [
        ("max_tokens", 1),
        ("max_tokens", 5),
        ("max_completion_tokens", 7),
    ] {
        let mut request = json!({"model": DEFAULT_MODEL, "messages": messages()});
        request[field] = json!(max);
        let answer: Value = post(&llm, &request).await.json().await.unwrap();
        let text = answer["choices"][0]["message"]["content"].as_str().unwrap();
        assert_eq!(tokens(text), max, "{field} = {max}: {text:?}");
        assert_eq!(answer["usage"]["completion_tokens"], max);
        assert_eq!(answer["choices"][0]["finish_reason"], "length");

        request["stream"] = json!(true);
        let chunks = stream(&llm, request).await;
        assert_eq!(content(&chunks), text);
        assert_eq!(
            chunks.last().unwrap()["choices"][0]["finish_reason"],
            "length"
        );
    }
    // A bound above the reply's length changes nothing.
    let request = json!({"model": DEFAULT_MODEL, "messages": messages(), "max_tokens": 4096});
    let answer: Value = post(&llm, &request).await.json().await.unwrap();
    assert_eq!(answer["choices"][0]["finish_reason"], "stop");
    llm.stop().await.unwrap();
}

#[tokio::test]
async fn chunks_are_sent_as_they_are_made() {
    let llm = server(ExampleLlmConfig {
        chunk_delay: Duration::from_millis(100),
        ..ExampleLlmConfig::default()
    })
    .await;
    let request = json!({"model": DEFAULT_MODEL, "messages": messages(), "max_tokens": 3,
        "stream": true});
    let mut response = post(&llm, &request).await;
    let first = response.chunk().await.unwrap().unwrap();
    let first = std::str::from_utf8(&first).unwrap();
    assert!(first.starts_with("data: {"), "{first:?}");
    assert!(!first.contains("[DONE]"), "the whole stream came at once");
    let mut rest = Vec::new();
    while let Some(chunk) = response.chunk().await.unwrap() {
        rest.extend_from_slice(&chunk);
    }
    assert!(
        String::from_utf8(rest)
            .unwrap()
            .ends_with("data: [DONE]\n\n")
    );
    llm.stop().await.unwrap();
}

#[tokio::test]
async fn models_are_listed() {
    let llm = server(ExampleLlmConfig {
        models: vec!["alpha".to_owned(), "beta".to_owned()],
        ..ExampleLlmConfig::default()
    })
    .await;
    let client = reqwest::Client::new();
    let list: Value = client
        .get(format!("{}/models", llm.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["object"], "list");
    let ids: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .inspect(|m| {
            assert_eq!(m["object"], "model");
            assert!(m["created"].is_u64());
            assert!(m["owned_by"].is_string());
        })
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["alpha", "beta"]);

    let one = client
        .get(format!("{}/models/beta", llm.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(one.status(), 200);
    assert_eq!(one.json::<Value>().await.unwrap()["id"], "beta");
    llm.stop().await.unwrap();
}

/// The status and the OpenAI error object of a refusal.
async fn refusal(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    let error = body["error"].clone();
    assert!(error["message"].is_string(), "{body}");
    assert!(error["type"].is_string(), "{body}");
    assert!(error["param"].is_null(), "{body}");
    assert!(error.get("code").is_some(), "{body}");
    (status, error)
}

#[tokio::test]
async fn bad_requests_get_openai_errors() {
    let llm = server(ExampleLlmConfig::default()).await;
    let client = reqwest::Client::new();
    let url = format!("{}/chat/completions", llm.base_url());
    let raw = |body: Vec<u8>| {
        client
            .post(&url)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };

    let (status, error) = refusal(raw(b"{\"model\": ".to_vec()).await.unwrap()).await;
    assert_eq!(status, 400);
    assert_eq!(error["type"], "invalid_request_error");
    assert!(error["code"].is_null());

    for body in [
        json!({"messages": messages()}),
        json!({"model": DEFAULT_MODEL}),
        json!({"model": DEFAULT_MODEL, "messages": []}),
        json!({"model": DEFAULT_MODEL, "messages": [{"role": "wizard", "content": "hi"}]}),
        json!({"model": DEFAULT_MODEL, "messages": messages(), "max_tokens": -1}),
        json!({"model": DEFAULT_MODEL, "messages": messages(), "max_tokens": 0}),
        json!({"model": DEFAULT_MODEL, "messages": messages(), "n": 3}),
        json!({"model": DEFAULT_MODEL, "messages": messages(),
            "stream_options": {"include_usage": true}}),
        json!([1, 2, 3]),
    ] {
        let (status, error) = refusal(post(&llm, &body).await).await;
        assert_eq!(status, 400, "{body}: {error}");
    }

    let unknown = json!({"model": "gpt-9", "messages": messages()});
    let (status, error) = refusal(post(&llm, &unknown).await).await;
    assert_eq!(status, 404);
    assert_eq!(error["code"], "model_not_found");

    let huge = vec![b' '; MAX_REQUEST_BYTES + 1];
    let (status, _) = refusal(raw(huge).await.unwrap()).await;
    assert_eq!(status, 413);

    let (status, _) = refusal(
        client
            .get(format!("{}/nothing-here", llm.base_url()))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 404);

    // Nothing refused was counted.
    assert_eq!(llm.counters(), CountersSnapshot::default());
    llm.stop().await.unwrap();
}

#[tokio::test]
async fn a_configured_key_is_required() {
    let llm = server(ExampleLlmConfig {
        api_key: Some("sk-right".to_owned()),
        ..ExampleLlmConfig::default()
    })
    .await;
    let client = reqwest::Client::new();
    let request = json!({"model": DEFAULT_MODEL, "messages": messages()});
    let send = |key: Option<&str>| {
        let mut builder = client
            .post(format!("{}/chat/completions", llm.base_url()))
            .json(&request);
        if let Some(key) = key {
            builder = builder.bearer_auth(key);
        }
        builder.send()
    };

    let (status, error) = refusal(send(Some("sk-wrong")).await.unwrap()).await;
    assert_eq!(status, 401);
    assert_eq!(error["code"], "invalid_api_key");
    assert!(!error["message"].as_str().unwrap().contains("sk-"));
    let (status, _) = refusal(send(None).await.unwrap()).await;
    assert_eq!(status, 401);
    let models = client
        .get(format!("{}/models", llm.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(models.status(), 401);
    assert_eq!(llm.counters().chat_completions, 0);

    assert_eq!(send(Some("sk-right")).await.unwrap().status(), 200);
    assert_eq!(llm.counters().chat_completions, 1);
    llm.stop().await.unwrap();
}

//! OpenAI's Responses API, `POST /v1/responses`, over real HTTP, as an OpenAI client sees it.

mod common;

use common::{answer, cookbook_tokens, names, post, sequence, server, stream, tokens};
use nullgate_example_llm::{CountersSnapshot, DEFAULT_MODEL, ExampleLlmConfig};
use serde_json::{Value, json};

const PATH: &str = "/v1/responses";
const INSTRUCTIONS: &str = "You are a helpful assistant.";
const QUESTION: &str = "What is the capital of France, and why is it Paris?";

fn request() -> Value {
    json!({"model": DEFAULT_MODEL, "instructions": INSTRUCTIONS, "input": QUESTION,
        "store": false})
}

/// The input count documented: the instructions as a `system` turn, then the input as a
/// `user` turn, by the cookbook rule.
fn expected_input_tokens() -> u64 {
    cookbook_tokens(&[("system", INSTRUCTIONS), ("user", QUESTION)])
}

/// The text of the one output message of a finished response.
fn output_text(response: &Value) -> &str {
    let output = response["output"].as_array().unwrap();
    assert_eq!(output.len(), 1, "{response}");
    let item = &output[0];
    assert_eq!(item["type"], "message");
    assert_eq!(item["role"], "assistant");
    assert!(item["id"].as_str().unwrap().starts_with("msg_"));
    let content = item["content"].as_array().unwrap();
    assert_eq!(content.len(), 1);
    assert_eq!(content[0]["type"], "output_text");
    assert_eq!(content[0]["annotations"], json!([]));
    content[0]["text"].as_str().unwrap()
}

fn usage(input: u64, output: u64) -> Value {
    json!({
        "input_tokens": input,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": output,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": input + output,
    })
}

#[tokio::test]
async fn unstreamed_response_has_the_openai_shape_and_exact_usage() {
    let llm = server(ExampleLlmConfig::default()).await;
    let response = answer(&llm, PATH, &request(), 200).await;

    assert!(response["id"].as_str().unwrap().starts_with("resp_"));
    assert_eq!(response["object"], "response");
    assert!(response["created_at"].as_u64().unwrap() > 1_600_000_000);
    assert_eq!(response["status"], "completed");
    assert!(response["incomplete_details"].is_null());
    assert!(response["error"].is_null());
    assert_eq!(response["model"], DEFAULT_MODEL);
    assert_eq!(response["output"][0]["status"], "completed");
    let text = output_text(&response);
    assert!(text.starts_with("Example reply from"), "{text}");
    assert!(
        !text.contains("capital of France"),
        "the prompt is never quoted: {text}"
    );
    assert_eq!(
        response["usage"],
        usage(expected_input_tokens(), tokens(text))
    );

    // The same conversation as message items, with and without `type`, counts the same.
    let items = json!({"model": DEFAULT_MODEL, "instructions": INSTRUCTIONS, "input": [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": QUESTION}]},
    ]});
    let from_items = answer(&llm, PATH, &items, 200).await;
    assert_eq!(output_text(&from_items), text);
    assert_eq!(from_items["usage"], response["usage"]);
    let history = json!({"model": DEFAULT_MODEL, "input": [
        {"role": "user", "content": "Hello"},
        {"role": "assistant", "content": [{"type": "output_text", "text": "Hi there."}]},
        {"role": "user", "content": QUESTION},
    ]});
    let with_history = answer(&llm, PATH, &history, 200).await;
    assert_eq!(
        output_text(&with_history),
        text,
        "the last user message is answered"
    );
    assert_eq!(
        with_history["usage"]["input_tokens"],
        cookbook_tokens(&[
            ("user", "Hello"),
            ("assistant", "Hi there."),
            ("user", QUESTION)
        ])
    );
    llm.stop().await.unwrap();
}

#[tokio::test]
async fn a_stream_sends_the_response_events_in_sequence_with_the_final_usage() {
    let llm = server(ExampleLlmConfig::default()).await;
    let whole = answer(&llm, PATH, &request(), 200).await;
    let text = output_text(&whole).to_owned();
    let output_tokens = whole["usage"]["output_tokens"].as_u64().unwrap();

    let mut body = request();
    body["stream"] = json!(true);
    let events = stream(&llm, PATH, &body).await;
    // The reply is ASCII: one delta per token.
    assert_eq!(
        names(&events),
        sequence(
            &[
                "response.created",
                "response.in_progress",
                "response.output_item.added",
                "response.content_part.added",
            ],
            "response.output_text.delta",
            output_tokens,
            &[
                "response.output_text.done",
                "response.content_part.done",
                "response.output_item.done",
                "response.completed",
            ],
        )
    );
    for (i, (_, data)) in events.iter().enumerate() {
        assert_eq!(data["sequence_number"], i as u64, "{data}");
    }

    let response_id = events[0].1["response"]["id"].as_str().unwrap();
    assert!(response_id.starts_with("resp_"));
    for (_, data) in &events[..2] {
        let response = &data["response"];
        assert_eq!(response["id"], response_id);
        assert_eq!(response["status"], "in_progress");
        assert_eq!(response["output"], json!([]));
        assert!(response["usage"].is_null());
    }
    let added = &events[2].1["item"];
    assert_eq!(added["status"], "in_progress");
    assert_eq!(added["content"], json!([]));
    let item_id = added["id"].as_str().unwrap();
    assert_eq!(
        events[3].1["part"],
        json!({"type": "output_text", "text": "", "annotations": []})
    );

    let deltas: String = events
        .iter()
        .filter(|(name, _)| name == "response.output_text.delta")
        .map(|(_, data)| {
            assert_eq!(data["item_id"], item_id);
            assert_eq!(data["output_index"], 0);
            assert_eq!(data["content_index"], 0);
            data["delta"].as_str().unwrap()
        })
        .collect();
    assert_eq!(deltas, text);
    let tail = &events[events.len() - 4..];
    assert_eq!(tail[0].1["text"], text);
    assert_eq!(tail[1].1["part"]["text"], text);
    assert_eq!(tail[2].1["item"]["id"], item_id);
    assert_eq!(tail[2].1["item"]["status"], "completed");

    let completed = &tail[3].1["response"];
    assert_eq!(completed["id"], response_id);
    assert_eq!(completed["status"], "completed");
    assert_eq!(output_text(completed), text);
    assert_eq!(
        completed["usage"], whole["usage"],
        "the stream's usage is the unstreamed usage"
    );

    assert_eq!(
        llm.counters(),
        CountersSnapshot {
            responses: 2,
            streamed_responses: 1,
            response_input_tokens: 2 * expected_input_tokens(),
            response_output_tokens: 2 * output_tokens,
            ..CountersSnapshot::default()
        }
    );
    llm.stop().await.unwrap();
}

#[tokio::test]
async fn max_output_tokens_makes_the_response_incomplete() {
    let llm = server(ExampleLlmConfig::default()).await;
    for max in [16, 20] {
        let mut body = request();
        body["max_output_tokens"] = json!(max);
        let response = answer(&llm, PATH, &body, 200).await;
        let text = output_text(&response).to_owned();
        assert_eq!(tokens(&text), max, "{max}: {text:?}");
        assert_eq!(response["status"], "incomplete");
        assert_eq!(
            response["incomplete_details"],
            json!({"reason": "max_output_tokens"})
        );
        assert_eq!(response["output"][0]["status"], "incomplete");
        assert_eq!(response["max_output_tokens"], max);
        assert_eq!(response["usage"], usage(expected_input_tokens(), max));

        body["stream"] = json!(true);
        let events = stream(&llm, PATH, &body).await;
        let (name, last) = events.last().unwrap();
        assert_eq!(name, "response.incomplete");
        assert_eq!(last["response"]["status"], "incomplete");
        assert_eq!(output_text(&last["response"]), text);
        assert_eq!(last["response"]["usage"], response["usage"]);
    }
    // A bound above the reply's length changes nothing.
    let mut body = request();
    body["max_output_tokens"] = json!(4096);
    assert_eq!(answer(&llm, PATH, &body, 200).await["status"], "completed");
    llm.stop().await.unwrap();
}

#[tokio::test]
async fn invalid_requests_get_openai_errors() {
    let llm = server(ExampleLlmConfig::default()).await;
    for body in [
        json!({"model": DEFAULT_MODEL}),
        json!({"input": "hi"}),
        json!({"model": DEFAULT_MODEL, "input": []}),
        json!({"model": DEFAULT_MODEL, "input": [{"role": "wizard", "content": "hi"}]}),
        json!({"model": DEFAULT_MODEL, "input": [{"type": "function_call_output",
            "role": "user", "content": "hi"}]}),
        json!({"model": DEFAULT_MODEL, "input": "hi", "max_output_tokens": 15}),
        json!({"model": DEFAULT_MODEL, "input": "hi", "max_output_tokens": -1}),
    ] {
        let response = post(&llm, PATH, &body).await;
        assert_eq!(response.status(), 400, "{body}");
        let error = &response.json::<Value>().await.unwrap()["error"];
        assert_eq!(error["type"], "invalid_request_error", "{body}");
        assert!(error["message"].is_string(), "{body}");
        assert!(
            error["param"].is_null() && error.get("code").is_some(),
            "{error}"
        );
    }
    let unknown = post(&llm, PATH, &json!({"model": "gpt-9", "input": "hi"})).await;
    assert_eq!(unknown.status(), 404);
    assert_eq!(
        unknown.json::<Value>().await.unwrap()["error"]["code"],
        "model_not_found"
    );
    assert_eq!(llm.counters(), CountersSnapshot::default());
    llm.stop().await.unwrap();
}

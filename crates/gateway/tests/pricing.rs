//! Every pricing mode of the price list against real upstreams: per JSON-RPC method against
//! anvil (a batch priced as its sum, unknown methods refused before reservation), and the
//! token APIs (OpenAI chat, embeddings and Responses, Anthropic Messages) against the
//! example LLM, unstreamed and streamed, each charged exactly its reported usage.

mod common;

use common::{Harness, receipt_of, stream_receipt};
use nullgate_example_llm::DEFAULT_MODEL;
use nullgate_protocol::{
    price::{MethodPrices, PriceList, Pricing, Route},
    rejection::Problem,
};
use serde_json::{Value, json};

/// The JSON-RPC route's prices: above the demo's floor fee of 5, so each is seen as is.
fn rpc_prices() -> PriceList {
    PriceList::new(
        vec![500, 2_000, 8_000, 32_000],
        5,
        vec!["content-type".into()],
        vec![Route {
            method: "POST".into(),
            path: "/".into(),
            pricing: Pricing::JsonRpc(
                MethodPrices::new(vec![
                    ("eth_blockNumber".into(), 7),
                    ("eth_chainId".into(), 6),
                    ("eth_getBalance".into(), 9),
                    ("eth_getLogs".into(), 600),
                ])
                .unwrap(),
            ),
        }],
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
#[cfg_attr(
    not(nullgate_anvil),
    ignore = "needs anvil: run `npm ci` in contracts/ or set NULLGATE_ANVIL (.ci/run does)"
)]
async fn json_rpc_is_priced_per_method_and_a_batch_as_its_sum() {
    let path = std::env::var_os("NULLGATE_ANVIL")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../contracts/node_modules/.bin/anvil")
        });
    let anvil = alloy::node_bindings::Anvil::at(path).spawn();
    let h = Harness::start_with(4, rpc_prices(), Some(anvil.endpoint())).await;

    // One call: its method's price, and anvil's own answer.
    let one = json!({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}).to_string();
    let response = h.pay(&h.genesis(0), 0, "/", &one).await;
    assert_eq!(response.status(), 200);
    assert_eq!(receipt_of(&response).charge, 6);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["result"], "0x7a69", "anvil's chain id 31337");

    // A batch: the sum of its calls (a notification too), and every answer relayed.
    let batch = json!([
        {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []},
        {"jsonrpc": "2.0", "id": 2, "method": "eth_blockNumber", "params": []},
        {"jsonrpc": "2.0", "id": 3, "method": "eth_getBalance",
         "params": ["0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266", "latest"]},
        {"jsonrpc": "2.0", "id": 4, "method": "eth_blockNumber", "params": []},
    ])
    .to_string();
    let response = h.pay(&h.genesis(1), 0, "/", &batch).await;
    assert_eq!(response.status(), 200);
    assert_eq!(receipt_of(&response).charge, 6 + 7 + 9 + 7);
    let answers: Vec<Value> = response.json().await.unwrap();
    assert_eq!(answers.len(), 4);

    // An unpriced method anywhere in a batch: refused before reservation, nothing stored.
    let before = h.stored().await;
    let unpriced = json!([
        {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"},
        {"jsonrpc": "2.0", "id": 2, "method": "eth_sendRawTransaction", "params": ["0x00"]},
    ])
    .to_string();
    let response = h.pay(&h.genesis(2), 0, "/", &unpriced).await;
    assert_eq!(response.status(), 400);
    assert!(response.headers().get("nullgate-receipt").is_none());
    let problem: Problem = response.json().await.unwrap();
    assert_eq!(problem.code(), Some("unpriced-request"));

    // Not JSON-RPC at all: the same.
    let response = h.pay(&h.genesis(2), 0, "/", "{\"hello\": 1}").await;
    assert_eq!(response.status(), 400);

    // A price above the credential's class (600 > C_1 = 500): refused, not undercharged.
    let logs =
        json!({"jsonrpc": "2.0", "id": 1, "method": "eth_getLogs", "params": [{}]}).to_string();
    let response = h.pay(&h.genesis(2), 0, "/", &logs).await;
    assert_eq!(response.status(), 400);
    let problem: Problem = response.json().await.unwrap();
    assert_eq!(problem.code(), Some("class-too-small"));
    assert_eq!(
        h.stored().await,
        before,
        "refusals before reservation store nothing"
    );

    // The same note pays it in the next class, at the same index (nothing was consumed).
    let response = h.pay(&h.genesis(2), 1, "/", &logs).await;
    assert_eq!(response.status(), 200);
    assert_eq!(receipt_of(&response).charge, 600);
    assert_eq!(h.stored().await.0, before.0 + 1);
}

/// `{"role": "user", "content": text}` as every chat-like API takes it.
fn user(text: &str) -> Value {
    json!([{"role": "user", "content": text}])
}

fn messages_body(text: &str, max_tokens: u64, stream: bool) -> String {
    json!({
        "model": DEFAULT_MODEL,
        "max_tokens": max_tokens,
        "messages": user(text),
        "stream": stream,
    })
    .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn anthropic_messages_are_charged_their_usage_and_a_stream_the_last_cumulative_count() {
    let h = Harness::start(3).await;
    let path = "/v1/messages";
    let body = messages_body("Tell me about lighthouses on rocky coasts", 64, false);
    let response = h.pay(&h.genesis(0), 1, path, &body).await;
    assert_eq!(response.status(), 200);
    let charge = receipt_of(&response).charge;
    let answer: Value = response.json().await.unwrap();
    let input = answer["usage"]["input_tokens"].as_u64().unwrap();
    let output = answer["usage"]["output_tokens"].as_u64().unwrap();
    assert!(output > 1);
    assert_eq!(
        charge,
        input + 4 * output,
        "1 per input token, 4 per output token"
    );

    // Streamed: message_start says 1 output token, message_delta the total. Summing the
    // two would charge 4 more.
    let body = messages_body("Tell me about lighthouses on rocky coasts", 64, true);
    let response = h.pay(&h.genesis(1), 1, path, &body).await;
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    for event in [
        "message_start",
        "content_block_delta",
        "message_delta",
        "message_stop",
    ] {
        assert!(
            text.contains(&format!("event: {event}")),
            "{event} relayed: {text}"
        );
    }
    assert_eq!(stream_receipt(&text).charge, input + 4 * output);
    let counters = h.upstream.counters();
    assert_eq!((counters.messages, counters.streamed_messages), (2, 1));
    assert_eq!(counters.message_output_tokens, 2 * output);

    // Over its class cap (C_1 = 500): cut off at it, and told so.
    let long = messages_body(&"word ".repeat(450), 400, true);
    let response = h.pay(&h.genesis(2), 0, path, &long).await;
    let text = response.text().await.unwrap();
    assert!(text.contains("event: nullgate-cutoff"), "{text}");
    assert!(!text.contains("event: message_stop"));
    assert_eq!(stream_receipt(&text).charge, 500);
}

#[tokio::test(flavor = "multi_thread")]
async fn responses_and_embeddings_are_charged_their_usage() {
    let h = Harness::start(3).await;
    let body = |stream: bool| {
        json!({
            "model": DEFAULT_MODEL,
            "input": user("Describe a quiet harbour at dawn"),
            "instructions": "Be brief.",
            "max_output_tokens": 64,
            "stream": stream,
        })
        .to_string()
    };
    let response = h.pay(&h.genesis(0), 1, "/v1/responses", &body(false)).await;
    assert_eq!(response.status(), 200);
    let charge = receipt_of(&response).charge;
    let answer: Value = response.json().await.unwrap();
    let input = answer["usage"]["input_tokens"].as_u64().unwrap();
    let output = answer["usage"]["output_tokens"].as_u64().unwrap();
    assert_eq!(charge, input + 4 * output);

    let response = h.pay(&h.genesis(1), 1, "/v1/responses", &body(true)).await;
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    assert!(text.contains("event: response.output_text.delta"));
    assert!(text.contains("event: response.completed"));
    assert_eq!(stream_receipt(&text).charge, input + 4 * output);
    assert_eq!(h.upstream.counters().streamed_responses, 1);

    // Embeddings: input tokens only, in the base64 encoding the OpenAI SDKs ask for.
    let texts = [
        "a lighthouse keeper's log of the winter storms",
        "the harbour master counts the boats at dawn",
    ];
    let body =
        json!({"model": DEFAULT_MODEL, "input": texts, "encoding_format": "base64"}).to_string();
    let response = h.pay(&h.genesis(2), 0, "/v1/embeddings", &body).await;
    assert_eq!(response.status(), 200);
    let charge = receipt_of(&response).charge;
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["data"].as_array().unwrap().len(), 2);
    let tokens = h.upstream.counters().embedding_tokens;
    assert!(
        tokens > 5,
        "above the floor fee, so the charge shows the count"
    );
    assert_eq!(answer["usage"]["prompt_tokens"], tokens);
    assert_eq!(charge, tokens);
}

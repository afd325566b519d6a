//! Every pricing mode of the price list against real upstreams: per JSON-RPC method against
//! anvil (a batch priced as its sum, unknown methods refused before reservation), and the
//! token APIs (OpenAI chat, embeddings and Responses, Anthropic Messages) against the
//! example LLM, unstreamed and streamed, each charged exactly its reported usage.

mod common;

use common::{Harness, receipt_of};
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

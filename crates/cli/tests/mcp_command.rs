//! An MCP host (rmcp's client over the stdio of a child process) against `nullgate demo
//! --mcp`: the demo's whole stack (chain, vault, gateway in front of the example upstream,
//! relay, wallet) with the proxy's calls as MCP tools. The host lists the tools and calls
//! each; a call to an API the price list does not name is refused and nothing is paid.

use rmcp::{
    ServiceExt,
    model::{CallToolRequestParams, CallToolResult},
    transport::TokioChildProcess,
};
use serde_json::{Value, json};

/// The structured result of a tool call that succeeded.
fn structured(result: &CallToolResult) -> &Value {
    assert_ne!(result.is_error, Some(true), "{result:?}");
    result
        .structured_content
        .as_ref()
        .unwrap_or_else(|| panic!("no structured content in {result:?}"))
}

fn call(name: &'static str, arguments: Value) -> CallToolRequestParams {
    let params = CallToolRequestParams::new(name);
    match arguments {
        Value::Object(map) => params.with_arguments(map),
        _ => params,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_mcp_host_lists_the_tools_and_calls_each() {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_nullgate"));
    command.args(["demo", "--mcp", "--calls", "0", "--notes", "2"]);
    let transport = TokioChildProcess::new(command).expect("spawn nullgate demo --mcp");
    // The demo sets up its stack (a DEV key setup on a cold cache) before it answers.
    let host = tokio::time::timeout(std::time::Duration::from_secs(300), ().serve(transport))
        .await
        .expect("nullgate demo --mcp answered the MCP handshake in 300 s")
        .expect("MCP handshake");

    let mut names: Vec<String> = host
        .list_all_tools()
        .await
        .unwrap()
        .into_iter()
        .map(|tool| tool.name.to_string())
        .collect();
    names.sort();
    assert_eq!(names, ["balance", "call_api", "list_apis"]);

    let apis = host
        .call_tool(call("list_apis", Value::Null))
        .await
        .unwrap();
    let apis = structured(&apis);
    let chat = apis["apis"]
        .as_array()
        .unwrap()
        .iter()
        .find(|api| api["path"] == "/v1/chat/completions")
        .unwrap_or_else(|| panic!("no chat route in {apis}"));
    assert_eq!(chat["method"], "POST");
    assert!(chat["price"]["per_output_token"].as_u64().unwrap() > 0);
    assert!(!apis["cost_classes"].as_array().unwrap().is_empty());

    let before = host.call_tool(call("balance", Value::Null)).await.unwrap();
    let before = structured(&before)["balance"].as_u64().unwrap();
    assert_eq!(
        before,
        2 * 100_000,
        "two notes of the demo's default deposit"
    );

    let answer = host
        .call_tool(call(
            "call_api",
            json!({
                "method": "POST",
                "path": "/v1/chat/completions",
                "body": {
                    "model": "nullgate-example-1",
                    "messages": [{"role": "user", "content": "Say something short about tides."}],
                    "max_tokens": 32,
                },
            }),
        ))
        .await
        .unwrap();
    let answer = structured(&answer);
    assert_eq!(answer["status"], 200, "{answer}");
    let charged = answer["charged"].as_u64().unwrap();
    assert!(charged > 0, "{answer}");
    let text = answer["answer"]["choices"][0]["message"]["content"]
        .as_str()
        .unwrap_or_default();
    assert!(!text.is_empty(), "{answer}");

    // The balance went down by exactly the charge, once the receipt is applied.
    let mut after = before;
    for _ in 0..100 {
        let balance = host.call_tool(call("balance", Value::Null)).await.unwrap();
        after = structured(&balance)["balance"].as_u64().unwrap();
        if after != before {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(after, before - charged);

    // Anything the price list does not price is refused, and nothing is paid.
    for (method, path) in [
        ("GET", "/etc/passwd"),
        ("POST", "http://evil.example/steal"),
    ] {
        let refused = host
            .call_tool(call("call_api", json!({"method": method, "path": path})))
            .await
            .unwrap();
        assert_eq!(refused.is_error, Some(true), "{refused:?}");
        let error = refused.structured_content.as_ref().unwrap()["error"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(error.contains("not one of the configured APIs"), "{error}");
    }
    let balance = host.call_tool(call("balance", Value::Null)).await.unwrap();
    assert_eq!(structured(&balance)["balance"].as_u64().unwrap(), after);

    host.cancel().await.unwrap();
}

//! `nullgate mcp`: an MCP server (on stdio) that gives an agent host three tools:
//!
//! - `list_apis`: the APIs the gateway's price list prices, with their prices, the cost
//!   classes and the floor fee;
//! - `call_api`: one private, paid call (method, path, JSON body) to one of those APIs; the
//!   answer comes back with its status and charge;
//! - `balance`: the wallet's notes (balance, index, status) and the anonymity set.
//!
//! `call_api` goes through the proxy's own routes, in process (no socket): the same
//! stripping of identifiers, the same class choice, the same refusals. A method and path
//! that the price list does not price is refused before anything is paid, so no tool can
//! reach an address that is not a configured API.

use std::sync::Arc;

use axum::{
    Router,
    body::Body,
    http::{Request, header},
};
use http_body_util::BodyExt;
use nullgate_protocol::price::{PriceList, Pricing};
use rmcp::{
    ServerHandler,
    handler::server::{router::tool::ToolRouter, wrapper::Parameters},
    model::{CallToolResult, Implementation, ServerCapabilities, ServerConfig},
    tool, tool_handler, tool_router,
};
use serde::Deserialize;
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::{
    client::Client,
    paid::Payer,
    proxy::{self, ProxyConfig},
    wallet::NoteEntry,
};

/// What the `balance` tool shows of the wallet.
pub trait WalletView: Send + Sync + 'static {
    /// The notes, as the wallet holds them now.
    fn notes(&self) -> Vec<NoteEntry>;
    /// Active, unexpired notes in the vault at the last sync; `None` before the first.
    fn anonymity_set(&self) -> Option<usize>;
}

impl<T: nullgate_net::Transport + 'static> WalletView for Client<T> {
    fn notes(&self) -> Vec<NoteEntry> {
        Client::notes(self)
    }

    fn anonymity_set(&self) -> Option<usize> {
        Client::anonymity_set(self)
    }
}

/// The largest answer body `call_api` returns; a longer one is cut, saying so.
pub const MAX_ANSWER_BYTES: usize = 1 << 20;

/// The MCP server over a payer (the client core) and its wallet.
#[derive(Clone)]
pub struct McpServer {
    routes: Router,
    price_list: PriceList,
    wallet: Arc<dyn WalletView>,
    #[allow(dead_code)] // read by the code `tool_handler` generates
    tool_router: ToolRouter<Self>,
}

impl std::fmt::Debug for McpServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("McpServer").finish_non_exhaustive()
    }
}

/// The arguments of `call_api`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct CallApi {
    /// The HTTP method, e.g. "POST".
    pub method: String,
    /// The path of a route `list_apis` shows, e.g. "/v1/chat/completions" (a query string
    /// is passed on for fixed-price routes).
    pub path: String,
    /// The JSON request body, as the API expects it (omit for GET).
    #[serde(default)]
    pub body: Option<Value>,
}

#[tool_router]
impl McpServer {
    /// A server paying with `payer` and showing `wallet`.
    pub fn new<P: Payer>(payer: Arc<P>, wallet: Arc<dyn WalletView>, config: ProxyConfig) -> Self {
        let price_list = payer.price_list().clone();
        Self {
            routes: proxy::router(payer, config),
            price_list,
            wallet,
            tool_router: Self::tool_router(),
        }
    }

    /// `list_apis`.
    #[tool(
        description = "List the APIs this wallet can call privately: method, path and price \
                       of each, the cost classes and the floor fee (credits)."
    )]
    async fn list_apis(&self) -> CallToolResult {
        CallToolResult::structured(apis(&self.price_list))
    }

    /// `balance`.
    #[tool(
        description = "Show the wallet: each note's balance, request index and status, the \
                       spendable total, and the anonymity set (Active notes in the vault)."
    )]
    async fn balance(&self) -> CallToolResult {
        let notes = self.wallet.notes();
        let total: u64 = notes
            .iter()
            .filter(|n| n.status == crate::wallet::NoteStatus::Active)
            .map(|n| n.state.balance)
            .sum();
        let rows: Vec<Value> = notes
            .iter()
            .map(|n| {
                json!({
                    "status": n.status,
                    "balance": n.state.balance,
                    "index": n.state.index,
                    "expiry": n.expiry,
                })
            })
            .collect();
        CallToolResult::structured(json!({
            "notes": rows,
            "balance": total,
            "anonymity_set": self.wallet.anonymity_set(),
        }))
    }

    /// `call_api`.
    #[tool(
        description = "Call one of the APIs list_apis shows, privately and paid from the \
                       wallet: give the method, the path and the JSON body. Returns the HTTP \
                       status, the credits charged and the answer."
    )]
    async fn call_api(&self, Parameters(call): Parameters<CallApi>) -> CallToolResult {
        match self.call(call).await {
            Ok(answer) => CallToolResult::structured(answer),
            Err(refusal) => CallToolResult::structured_error(json!({ "error": refusal })),
        }
    }
}

#[tool_handler]
impl ServerHandler for McpServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("nullgate", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "Private, prepaid API calls: list_apis shows what can be called and at what \
                 price, call_api makes one call (unlinkable to the user and to other calls), \
                 balance shows what is left.",
            )
    }
}

impl McpServer {
    async fn call(&self, call: CallApi) -> Result<Value, String> {
        let method = call.method.to_ascii_uppercase();
        let path = call.path.split('?').next().unwrap_or_default();
        if self.price_list.route(&method, path).is_none() {
            return Err(format!(
                "{method} {path} is not one of the configured APIs (see list_apis); nothing \
                 was paid"
            ));
        }
        let body = match &call.body {
            None | Some(Value::Null) => Body::empty(),
            Some(value) => Body::from(value.to_string()),
        };
        let request = Request::builder()
            .method(method.as_str())
            .uri(&call.path)
            // The proxy's guard admits local callers only; this one is in process.
            .header(header::HOST, "127.0.0.1")
            .header(header::CONTENT_TYPE, "application/json")
            .body(body)
            .map_err(|_| format!("{method} {} is not a valid request line", call.path))?;
        let response = self
            .routes
            .clone()
            .oneshot(request)
            .await
            .unwrap_or_else(|never| match never {});
        let status = response.status().as_u16();
        let (parts, body) = response.into_parts();
        let header = |name: &str| {
            parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok())
        };
        let (charged, class) = (header("x-nullgate-charged"), header("x-nullgate-class"));
        let bytes = body
            .collect()
            .await
            .map_err(|_| "the answer could not be read".to_owned())?
            .to_bytes();
        let truncated = bytes.len() > MAX_ANSWER_BYTES;
        let bytes = &bytes[..bytes.len().min(MAX_ANSWER_BYTES)];
        let answer = serde_json::from_slice::<Value>(bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(bytes).into_owned()));
        Ok(json!({
            "status": status,
            "charged": charged,
            "class": class,
            "answer": answer,
            "truncated": truncated,
        }))
    }
}

/// The price list as `list_apis` shows it.
fn apis(list: &PriceList) -> Value {
    let routes: Vec<Value> = list
        .routes()
        .iter()
        .map(|route| {
            let price = match &route.pricing {
                Pricing::Fixed { credits } => json!({ "fixed": credits }),
                Pricing::Tokens(prices) => json!({
                    "per_input_token": prices.input,
                    "per_output_token": prices.output,
                    "usage": prices.api.keyword(),
                }),
                Pricing::JsonRpc(methods) => json!({
                    "per_json_rpc_method": methods
                        .methods()
                        .iter()
                        .map(|(name, credits)| (name.to_owned(), json!(credits)))
                        .collect::<serde_json::Map<_, _>>(),
                }),
            };
            json!({ "method": route.method, "path": route.path, "price": price })
        })
        .collect();
    json!({
        "apis": routes,
        "cost_classes": list.classes(),
        "floor_fee": list.floor_fee(),
    })
}

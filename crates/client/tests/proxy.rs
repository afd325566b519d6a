//! The local proxy against a bound socket, with a test `Payer` that records what it was asked
//! to pay for and answers with a canned response (the core is tested on its own).

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use bytes::Bytes;
use nullgate_client::{
    paid::{PaidRequest, PaidResponse, PayError, Payer},
    proxy::{Proxy, ProxyConfig, ServeError},
};
use nullgate_protocol::{
    price::{MethodPrices, PriceList, Pricing, Route, TokenApi, TokenPrices},
    receipt::Receipt,
};
use nullgate_zk::{
    Fr,
    curve::{Point, Scalar, generator_g, mul},
    derive,
    schnorr::SecretKey,
};
use rand::SeedableRng;
use serde_json::{Value, json};

/// What the test payer charges for every call.
const CHARGE: u64 = 37;

/// Prompt and completion prices of the chat route.
const PROMPT: u64 = 1;
const COMPLETION: u64 = 4;

/// Price of the fixed-price search route.
const SEARCH: u64 = 150;

fn price_list(with_models: bool) -> PriceList {
    let tokens = |path: &str, api| Route {
        method: "POST".into(),
        path: path.into(),
        pricing: Pricing::Tokens(TokenPrices {
            api,
            input: PROMPT,
            output: COMPLETION,
        }),
    };
    let mut routes = vec![
        tokens("/v1/chat/completions", TokenApi::OpenAiChat),
        tokens("/v1/responses", TokenApi::OpenAiResponses),
        tokens("/v1/embeddings", TokenApi::OpenAiChat),
        tokens("/v1/messages", TokenApi::Anthropic),
        tokens("/v1/completions", TokenApi::OpenAiChat),
        Route {
            method: "GET".into(),
            path: "/search".into(),
            pricing: Pricing::Fixed { credits: SEARCH },
        },
        Route {
            method: "POST".into(),
            path: "/rpc".into(),
            pricing: Pricing::JsonRpc(
                MethodPrices::new(vec![
                    ("eth_blockNumber".into(), 20),
                    ("eth_chainId".into(), 10),
                ])
                .unwrap(),
            ),
        },
    ];
    if with_models {
        routes.push(Route {
            method: "GET".into(),
            path: "/v1/models".into(),
            pricing: Pricing::Fixed { credits: 10 },
        });
    }
    PriceList::new(
        vec![100, 1_000, 10_000, 100_000],
        10,
        vec!["accept".into(), "content-type".into()],
        routes,
    )
    .unwrap()
}

fn receipt(charge: u64) -> Receipt {
    let key = SecretKey::from_scalar(Scalar::from(1234u64)).unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let dom = derive::dom(31337, &[7u8; 20]);
    let p = mul(&generator_g(), &Scalar::from(5u64));
    let state = Point::from_coordinates(p.x, p.y, "test point").unwrap();
    Receipt::issue(&dom, Fr::from(13u64), &state, charge, 1, &key, &mut rng)
}

type Reply = Box<dyn Fn(&PaidRequest) -> Result<PaidResponse, PayError> + Send + Sync>;

/// Records every request; answers with `reply`.
struct TestPayer {
    list: PriceList,
    seen: Mutex<Vec<PaidRequest>>,
    reply: Reply,
}

impl TestPayer {
    fn answering(list: PriceList, reply: Reply) -> Arc<Self> {
        Arc::new(Self {
            list,
            seen: Mutex::new(Vec::new()),
            reply,
        })
    }

    /// Answers 200 with `content_type` and `body`, paid with the requested class.
    fn ok(content_type: &'static str, body: &'static str) -> Arc<Self> {
        let list = price_list(true);
        let classes = list.classes().to_vec();
        Self::answering(
            list,
            Box::new(move |request| {
                let mut headers = http::HeaderMap::new();
                headers.insert(http::header::CONTENT_TYPE, content_type.parse().unwrap());
                headers.insert("x-upstream-secret", "not for the agent".parse().unwrap());
                Ok(PaidResponse {
                    status: http::StatusCode::OK,
                    headers,
                    body: Bytes::from_static(body.as_bytes()),
                    receipt: receipt(CHARGE),
                    class_cost: classes[usize::from(request.class_index)],
                })
            }),
        )
    }

    fn json() -> Arc<Self> {
        Self::ok(
            "application/json",
            r#"{"id":"chatcmpl-1","object":"chat.completion"}"#,
        )
    }

    fn seen(&self) -> Vec<PaidRequest> {
        self.seen.lock().unwrap().clone()
    }

    fn only(&self) -> PaidRequest {
        let seen = self.seen();
        assert_eq!(seen.len(), 1, "one request paid for");
        seen.into_iter().next().unwrap()
    }
}

impl Payer for TestPayer {
    fn price_list(&self) -> &PriceList {
        &self.list
    }

    async fn pay(&self, request: PaidRequest) -> Result<PaidResponse, PayError> {
        self.seen.lock().unwrap().push(request.clone());
        (self.reply)(&request)
    }
}

/// Serves `payer` on a free loopback port; returns the base URL.
async fn start(payer: Arc<TestPayer>, config: ProxyConfig) -> String {
    let config = ProxyConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        ..config
    };
    let proxy = Proxy::bind(payer, config).await.unwrap();
    let base = format!("http://{}", proxy.local_addr());
    tokio::spawn(proxy.run(std::future::pending()));
    base
}

async fn start_default(payer: Arc<TestPayer>) -> String {
    start(payer, ProxyConfig::default()).await
}

fn chat_request() -> Value {
    json!({
        "model": "nullgate-example-1",
        "messages": [{"role": "user", "content": "Say hi."}],
    })
}

async fn post_chat(base: &str, body: &Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{base}/v1/chat/completions"))
        .json(body)
        .send()
        .await
        .unwrap()
}

/// The OpenAI-style error of a response, after checking its status.
async fn error_of(response: reqwest::Response, status: u16) -> Value {
    assert_eq!(response.status().as_u16(), status);
    let body: Value = response.json().await.unwrap();
    let error = &body["error"];
    assert!(error["message"].is_string(), "{body}");
    assert!(error["type"].is_string(), "{body}");
    assert!(
        error.get("param").is_some() && error["code"].is_string(),
        "{body}"
    );
    error.clone()
}

fn body_of(request: &PaidRequest) -> Value {
    serde_json::from_slice(&request.body).unwrap()
}

/// Bytes of the forwarded body without the `max_tokens` the proxy added: the prompt bound.
fn prompt_bytes_without_max_tokens(request: &PaidRequest) -> u64 {
    let mut body = body_of(request);
    body.as_object_mut().unwrap().remove("max_tokens");
    serde_json::to_vec(&body).unwrap().len() as u64
}

#[tokio::test]
async fn a_host_that_is_not_loopback_is_refused_and_nothing_is_paid() {
    let payer = TestPayer::json();
    let base = start_default(payer.clone()).await;
    let client = reqwest::Client::new();
    for host in [
        "evil.example",
        "evil.example:8787",
        "127.0.0.1.nip.io",
        "10.1.2.3:8787",
    ] {
        let response = client
            .post(format!("{base}/v1/chat/completions"))
            .header("host", host)
            .json(&chat_request())
            .send()
            .await
            .unwrap();
        let error = error_of(response, 403).await;
        assert_eq!(error["code"], "nullgate_host_not_allowed", "{host}");
        assert!(error["message"].as_str().unwrap().contains("DNS rebinding"));
        let response = client
            .get(format!("{base}/v1/models"))
            .header("host", host)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403);
    }
    // Also in front of unknown routes.
    let response = client
        .get(format!("{base}/nothing"))
        .header("host", "evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    assert!(payer.seen().is_empty());

    for host in ["localhost:8787", "127.0.0.1", "[::1]:8787"] {
        let response = client
            .get(format!("{base}/v1/models"))
            .header("host", host)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{host}");
    }
}

#[tokio::test]
async fn browser_requests_are_refused() {
    let payer = TestPayer::json();
    let base = start_default(payer.clone()).await;
    let client = reqwest::Client::new();
    for (name, value) in [
        ("origin", "http://127.0.0.1:8787"),
        ("origin", "null"),
        ("sec-fetch-site", "cross-site"),
        ("sec-fetch-mode", "no-cors"),
    ] {
        let response = client
            .post(format!("{base}/v1/chat/completions"))
            .header(name, value)
            .json(&chat_request())
            .send()
            .await
            .unwrap();
        let error = error_of(response, 403).await;
        assert_eq!(error["code"], "nullgate_browser_request", "{name}");
        assert!(error["message"].as_str().unwrap().contains("Origin"));
    }
    assert!(payer.seen().is_empty());
}

#[tokio::test]
async fn identifying_headers_are_dropped() {
    let payer = TestPayer::json();
    let base = start_default(payer.clone()).await;
    let response = reqwest::Client::new()
        .post(format!("{base}/v1/chat/completions?api-version=2024-06-01"))
        .header("authorization", "Bearer sk-proj-secret")
        .header("api-key", "sk-azure-secret")
        .header("user-agent", "OpenAI/Python 1.99.0")
        .header("x-stainless-lang", "python")
        .header("x-stainless-os", "Linux")
        .header("x-stainless-arch", "x64")
        .header("cookie", "session=1")
        .header("openai-organization", "org-123")
        .header("openai-project", "proj_123")
        .header("accept", "application/json")
        .header("content-type", "application/json; charset=utf-8")
        .body(serde_json::to_vec(&chat_request()).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    // The upstream's own headers do not reach the agent.
    assert!(response.headers().get("x-upstream-secret").is_none());
    let request = payer.only();
    assert_eq!(request.method, http::Method::POST);
    // The query is not forwarded either.
    assert_eq!(request.path_and_query, "/v1/chat/completions");
    // `accept` is signed by the price list, but the proxy forwards content-type only, and
    // its own spelling of it.
    assert_eq!(
        request.headers,
        vec![("content-type".to_owned(), b"application/json".to_vec())]
    );
}

#[tokio::test]
async fn identifying_body_fields_are_removed_and_store_is_false() {
    let payer = TestPayer::json();
    let base = start_default(payer.clone()).await;
    let mut request = chat_request();
    let extra = json!({
        "user": "user-1234",
        "metadata": {"customer": "acme"},
        "safety_identifier": "hash-of-email",
        "prompt_cache_key": "my-cache",
        "store": true,
        "temperature": 0.7,
        "stream_options": null,
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
        "max_tokens": 20,
    });
    request
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    assert_eq!(post_chat(&base, &request).await.status(), 200);

    let forwarded = body_of(&payer.only());
    let mut expected = request.as_object().unwrap().clone();
    for removed in ["user", "metadata", "safety_identifier", "prompt_cache_key"] {
        assert!(forwarded.get(removed).is_none(), "{removed} forwarded");
        expected.remove(removed);
    }
    assert_eq!(forwarded["store"], false);
    expected.insert("store".into(), Value::Bool(false));
    // Everything else is forwarded as it was.
    assert_eq!(forwarded, Value::Object(expected));

    // A request without `store` gets it too.
    let payer = TestPayer::json();
    let base = start_default(payer.clone()).await;
    assert_eq!(post_chat(&base, &chat_request()).await.status(), 200);
    assert_eq!(body_of(&payer.only())["store"], false);
}

#[tokio::test]
async fn the_class_covers_the_requested_max_tokens() {
    let payer = TestPayer::json();
    let base = start_default(payer.clone()).await;
    let list = price_list(true);

    // (field, limit, n, expected class index)
    let cases = [
        // The body alone is about 110 bytes: C_1 = 100 is out of reach.
        ("max_tokens", 5, None, 1),
        ("max_tokens", 200, None, 1),
        ("max_tokens", 300, None, 2),
        ("max_completion_tokens", 1_000, None, 2),
        ("max_completion_tokens", 1_000, Some(3), 3),
        ("max_tokens", 10_000, Some(2), 3),
    ];
    for (i, (field, limit, n, expected)) in cases.into_iter().enumerate() {
        let mut request = chat_request();
        request[field] = json!(limit);
        if let Some(n) = n {
            request["n"] = json!(n);
        }
        let response = post_chat(&base, &request).await;
        assert_eq!(response.status(), 200);
        let sent = payer.seen()[i].clone();
        let bytes = sent.body.len() as u64;
        let worst = PROMPT * bytes + COMPLETION * limit * n.unwrap_or(1);
        let (index, cost) = list.class_for(worst).unwrap();
        assert_eq!(index, expected, "{field} {limit} n={n:?}");
        assert_eq!(sent.class_index, index);
        assert_eq!(
            response.headers()["x-nullgate-class"],
            cost.to_string().as_str()
        );
        assert_eq!(
            response.headers()["x-nullgate-charged"],
            CHARGE.to_string().as_str()
        );
        // The agent's own limit is kept as it was.
        let forwarded = body_of(&sent);
        assert_eq!(forwarded[field], limit);
        assert!(
            forwarded
                .get(if field == "max_tokens" {
                    "max_completion_tokens"
                } else {
                    "max_tokens"
                })
                .is_none()
        );
    }

    // Both limits set: the larger one bounds the cost.
    let mut request = chat_request();
    request["max_tokens"] = json!(5);
    request["max_completion_tokens"] = json!(300);
    assert_eq!(post_chat(&base, &request).await.status(), 200);
    assert_eq!(payer.seen().last().unwrap().class_index, 2);
}

#[tokio::test]
async fn without_max_tokens_the_proxy_sets_the_most_the_class_pays_for() {
    let list = price_list(true);

    // Default 1024: 4·1024 = 4096 plus the body → C_3 = 10_000.
    let payer = TestPayer::json();
    let base = start_default(payer.clone()).await;
    let response = post_chat(&base, &chat_request()).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-nullgate-class"], "10000");
    let sent = payer.only();
    assert_eq!(sent.class_index, 2);
    let bytes = prompt_bytes_without_max_tokens(&sent);
    assert_eq!(
        list.class_for(PROMPT * bytes + COMPLETION * 1024),
        Some((2, 10_000))
    );
    let max_tokens = (10_000 - PROMPT * bytes) / COMPLETION;
    assert_eq!(body_of(&sent)["max_tokens"], max_tokens);
    assert!(max_tokens >= 1024);

    // A configured default of 10 fits C_2 = 1_000; n = 2 halves what it pays for.
    let payer = TestPayer::json();
    let config = ProxyConfig {
        default_max_tokens: 10,
        ..ProxyConfig::default()
    };
    let base = start(payer.clone(), config).await;
    let mut request = chat_request();
    request["n"] = json!(2);
    // `null` is no limit.
    request["max_completion_tokens"] = Value::Null;
    assert_eq!(post_chat(&base, &request).await.status(), 200);
    let sent = payer.only();
    assert_eq!(sent.class_index, 1);
    let bytes = prompt_bytes_without_max_tokens(&sent);
    assert_eq!(
        body_of(&sent)["max_tokens"],
        (1_000 - PROMPT * bytes) / (COMPLETION * 2)
    );
}

#[tokio::test]
async fn a_request_too_large_for_every_class_is_refused() {
    let payer = TestPayer::json();
    let base = start_default(payer.clone()).await;

    let mut request = chat_request();
    request["max_tokens"] = json!(100_000);
    let error = error_of(post_chat(&base, &request).await, 400).await;
    assert_eq!(error["code"], "nullgate_request_too_large");
    assert_eq!(error["param"], "max_tokens");
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("largest cost class"), "{message}");
    assert!(message.contains("ask for at most"), "{message}");

    // A prompt that alone costs more than C_max, with no max_tokens.
    let mut request = chat_request();
    request["messages"][0]["content"] = json!("x".repeat(100_001));
    let error = error_of(post_chat(&base, &request).await, 400).await;
    assert!(error["message"].as_str().unwrap().contains("shorten"));

    // Malformed limits are refused, not guessed at.
    let mut request = chat_request();
    request["max_tokens"] = json!(-1);
    let error = error_of(post_chat(&base, &request).await, 400).await;
    assert_eq!(error["param"], "max_tokens");
    assert!(payer.seen().is_empty());
}

#[tokio::test]
async fn bodies_over_the_limit_or_not_json_are_refused() {
    let payer = TestPayer::json();
    let config = ProxyConfig {
        max_body_bytes: 1_000,
        ..ProxyConfig::default()
    };
    let base = start(payer.clone(), config).await;
    let mut request = chat_request();
    request["messages"][0]["content"] = json!("x".repeat(2_000));
    let error = error_of(post_chat(&base, &request).await, 413).await;
    assert!(error["message"].as_str().unwrap().contains("1000 bytes"));

    let client = reqwest::Client::new();
    for body in ["{\"model\": ", "[1, 2]", "not json"] {
        let response = client
            .post(format!("{base}/v1/chat/completions"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let error = error_of(response, 400).await;
        assert_eq!(error["code"], "nullgate_invalid_json");
        // The body is not quoted back.
        assert!(!error["message"].as_str().unwrap().contains("not json"));
    }
    assert!(payer.seen().is_empty());
}

#[tokio::test]
async fn unknown_routes_are_openai_style_404s() {
    let payer = TestPayer::json();
    let base = start_default(payer.clone()).await;
    let client = reqwest::Client::new();
    for (method, path) in [
        (reqwest::Method::GET, "/v1/completions"),
        (reqwest::Method::POST, "/chat/completions"),
        (reqwest::Method::GET, "/v1/chat/completions"),
        (reqwest::Method::POST, "/v1/models"),
        (reqwest::Method::GET, "/v1/responses"),
        (reqwest::Method::GET, "/"),
    ] {
        let response = client
            .request(method.clone(), format!("{base}{path}"))
            .send()
            .await
            .unwrap();
        let error = error_of(response, 404).await;
        assert_eq!(error["type"], "invalid_request_error");
        assert_eq!(error["code"], "nullgate_unknown_url");
        let message = error["message"].as_str().unwrap();
        assert!(
            message.contains(&format!("Invalid URL ({method} {path})")),
            "{message}"
        );
    }
    assert!(payer.seen().is_empty());

    // A served route that the gateway's price list does not price.
    let payer = TestPayer::answering(price_list(false), Box::new(|_| unreachable!()));
    let base = start_default(payer.clone()).await;
    let response = client
        .get(format!("{base}/v1/models"))
        .send()
        .await
        .unwrap();
    let error = error_of(response, 404).await;
    assert_eq!(error["code"], "nullgate_route_not_priced");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("GET /v1/models")
    );
}

#[tokio::test]
async fn a_stream_is_passed_through_as_server_sent_events() {
    const SSE: &str = "data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}\n\ndata: [DONE]\n\n";
    let payer = TestPayer::ok("text/event-stream", SSE);
    let base = start_default(payer.clone()).await;
    let mut request = chat_request();
    request["stream"] = json!(true);
    request["stream_options"] = json!({"include_usage": true});
    let response = post_chat(&base, &request).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    assert_eq!(response.headers()["cache-control"], "no-cache");
    assert_eq!(
        response.headers()["x-nullgate-charged"],
        CHARGE.to_string().as_str()
    );
    assert_eq!(response.text().await.unwrap(), SSE);
    let forwarded = body_of(&payer.only());
    assert_eq!(forwarded["stream"], true);
    assert_eq!(forwarded["stream_options"], json!({"include_usage": true}));
}

#[tokio::test]
async fn models_are_listed_through_the_payer() {
    const MODELS: &str =
        r#"{"object":"list","data":[{"id":"nullgate-example-1","object":"model"}]}"#;
    let payer = TestPayer::ok("application/json", MODELS);
    let base = start_default(payer.clone()).await;
    let response = reqwest::Client::new()
        .get(format!("{base}/v1/models"))
        .header("authorization", "Bearer sk-dummy")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    assert!(response.headers().get("cache-control").is_none());
    // Fixed 10 credits → C_1 = 100.
    assert_eq!(response.headers()["x-nullgate-class"], "100");
    assert_eq!(response.text().await.unwrap(), MODELS);
    let request = payer.only();
    assert_eq!(request.method, http::Method::GET);
    assert_eq!(request.path_and_query, "/v1/models");
    assert!(request.headers.is_empty());
    assert!(request.body.is_empty());
    assert_eq!(request.class_index, 0);
}

#[tokio::test]
async fn payment_failures_become_openai_errors() {
    type Case = (fn() -> PayError, u16, &'static str);
    let cases: [Case; 6] = [
        (
            || PayError::NoNote {
                class_cost: 10_000,
                reason: "all notes are busy".into(),
            },
            429,
            "insufficient_quota",
        ),
        (
            || PayError::Refused {
                status: 403,
                detail: "policy".into(),
            },
            403,
            "invalid_request_error",
        ),
        (
            || PayError::Transport("timed out".into()),
            502,
            "server_error",
        ),
        (
            || PayError::BadReceipt("bad signature".into()),
            502,
            "server_error",
        ),
        (|| PayError::Wallet("disk full".into()), 500, "server_error"),
        (
            || PayError::TooFewNotes { active: 3, min: 8 },
            503,
            "server_error",
        ),
    ];
    for (make, status, kind) in cases {
        let payer = TestPayer::answering(price_list(true), Box::new(move |_| Err(make())));
        let base = start_default(payer).await;
        let error = error_of(post_chat(&base, &chat_request()).await, status).await;
        assert_eq!(error["type"], kind);
        assert_eq!(error["message"], make().to_string());
    }
}

#[tokio::test]
async fn only_loopback_addresses_are_bound() {
    for listen in ["0.0.0.0:0", "192.0.2.1:8787", "[::]:0"] {
        let config = ProxyConfig {
            listen: listen.parse().unwrap(),
            ..ProxyConfig::default()
        };
        let error = Proxy::bind(TestPayer::json(), config).await.unwrap_err();
        assert!(matches!(error, ServeError::NotLoopback(_)), "{listen}");
        assert!(error.to_string().contains("127.0.0.1"));
    }
}

#[test]
fn the_config_has_documented_defaults() {
    let config: ProxyConfig = serde_json::from_str("{}").unwrap();
    assert_eq!(config, ProxyConfig::default());
    assert_eq!(config.listen, SocketAddr::from(([127, 0, 0, 1], 8787)));
    assert_eq!(config.max_body_bytes, 4 << 20);
    assert_eq!(config.default_max_tokens, 1024);
    let config: ProxyConfig =
        serde_json::from_value(json!({"listen": "[::1]:9000", "default_max_tokens": 256})).unwrap();
    assert_eq!(config.listen, "[::1]:9000".parse().unwrap());
    assert_eq!(config.default_max_tokens, 256);
    assert!(serde_json::from_value::<ProxyConfig>(json!({"listne": "127.0.0.1:1"})).is_err());
}

/// POSTs `body` to `base path`.
async fn post(base: &str, path: &str, body: &Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{base}{path}"))
        .json(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn responses_requests_are_stripped_stored_nowhere_and_bounded() {
    let payer = TestPayer::json();
    let base = start_default(payer.clone()).await;
    let request = json!({
        "model": "nullgate-example-1",
        "input": "Say hi.",
        "user": "u-1",
        "safety_identifier": "s",
        "prompt_cache_key": "k",
        "metadata": {"a": "b"},
        "store": true,
    });
    assert_eq!(post(&base, "/v1/responses", &request).await.status(), 200);
    let sent = payer.only();
    assert_eq!(sent.path_and_query, "/v1/responses");
    let forwarded = body_of(&sent);
    for removed in ["user", "safety_identifier", "prompt_cache_key", "metadata"] {
        assert!(forwarded.get(removed).is_none(), "{removed} forwarded");
    }
    assert_eq!(forwarded["store"], false);
    // Open: the proxy writes max_output_tokens, the most the class pays for.
    let mut without = forwarded.clone();
    without.as_object_mut().unwrap().remove("max_output_tokens");
    let prompt = serde_json::to_vec(&without).unwrap().len() as u64;
    let class = [100, 1_000, 10_000, 100_000][usize::from(sent.class_index)];
    assert_eq!(
        forwarded["max_output_tokens"].as_u64().unwrap(),
        (class - PROMPT * prompt) / COMPLETION
    );
    assert!(forwarded.get("max_tokens").is_none());

    // A limit the agent set is kept, and names the class.
    let payer = TestPayer::json();
    let base = start_default(payer.clone()).await;
    // 62 bytes + 4 × 5 = 82 ≤ C_1 = 100.
    let request = json!({"model": "m", "input": "hi", "max_output_tokens": 5});
    assert_eq!(post(&base, "/v1/responses", &request).await.status(), 200);
    let sent = payer.only();
    assert_eq!(sent.class_index, 0);
    assert_eq!(body_of(&sent)["max_output_tokens"], 5);

    // Too large for every class: the refusal names max_output_tokens.
    let request = json!({"model": "m", "input": "hi", "max_output_tokens": 1_000_000});
    let error = error_of(post(&base, "/v1/responses", &request).await, 400).await;
    assert_eq!(error["param"], "max_output_tokens");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("(max_output_tokens)"),
        "{error}"
    );
}

#[tokio::test]
async fn responses_that_chain_to_stored_ones_are_refused() {
    let payer = TestPayer::json();
    let base = start_default(payer.clone()).await;
    for (field, value) in [
        ("previous_response_id", json!("resp_123")),
        ("conversation", json!({"id": "conv_1"})),
    ] {
        let request = json!({"model": "m", "input": "hi", field: value});
        let error = error_of(post(&base, "/v1/responses", &request).await, 400).await;
        assert_eq!(error["code"], "nullgate_field_refused");
        assert_eq!(error["param"], field);
    }
    assert!(payer.seen().is_empty());
}

#[tokio::test]
async fn embeddings_are_classed_by_their_input_alone() {
    let payer = TestPayer::json();
    let base = start_default(payer.clone()).await;
    let request = json!({"model": "m", "input": ["one", "two"], "user": "u-1"});
    assert_eq!(post(&base, "/v1/embeddings", &request).await.status(), 200);
    let sent = payer.only();
    let forwarded = body_of(&sent);
    assert!(forwarded.get("user").is_none());
    // Embeddings are never stored and have no completion limit to write.
    assert!(forwarded.get("store").is_none());
    assert!(forwarded.get("max_tokens").is_none());
    // ~40 bytes × 1 credit: the smallest class, although COMPLETION × 1024 default tokens
    // would not fit it.
    assert_eq!(sent.class_index, 0);

    // A huge input: beyond every class.
    let request = json!({"model": "m", "input": "x".repeat(200_000)});
    let error = error_of(post(&base, "/v1/embeddings", &request).await, 400).await;
    assert_eq!(error["code"], "nullgate_request_too_large");
}

/// An Anthropic error document, after checking its status.
async fn anthropic_error_of(response: reqwest::Response, status: u16) -> Value {
    assert_eq!(response.status().as_u16(), status);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["type"], "error", "{body}");
    assert!(body["error"]["message"].is_string(), "{body}");
    assert!(body.get("code").is_none(), "{body}");
    body["error"].clone()
}

#[tokio::test]
async fn anthropic_messages_lose_their_identifiers_and_keep_their_limit() {
    let payer = TestPayer::json();
    let base = start_default(payer.clone()).await;
    let response = reqwest::Client::new()
        .post(format!("{base}/v1/messages"))
        .header("x-api-key", "sk-ant-secret")
        .header("anthropic-version", "2023-06-01")
        .header("anthropic-beta", "tools-2024-04-04")
        .header("user-agent", "Anthropic/Python 0.60.0")
        .json(&json!({
            "model": "m",
            "max_tokens": 20,
            "messages": [{"role": "user", "content": "hi"}],
            "metadata": {"user_id": "u-1"},
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let sent = payer.only();
    assert_eq!(sent.path_and_query, "/v1/messages");
    assert_eq!(
        sent.headers,
        vec![("content-type".to_owned(), b"application/json".to_vec())]
    );
    let forwarded = body_of(&sent);
    assert!(forwarded.get("metadata").is_none());
    assert!(forwarded.get("store").is_none());
    assert_eq!(forwarded["max_tokens"], 20);

    // Without max_tokens (which Anthropic requires) the proxy writes the class's.
    let payer = TestPayer::json();
    let base = start_default(payer.clone()).await;
    let request = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]});
    assert_eq!(post(&base, "/v1/messages", &request).await.status(), 200);
    assert!(body_of(&payer.only())["max_tokens"].as_u64().unwrap() >= 1024);
}

#[tokio::test]
async fn anthropic_errors_are_in_anthropics_format() {
    let base = start_default(TestPayer::json()).await;
    let too_large = json!({"model": "m", "max_tokens": 10_000_000, "messages": []});
    let error = anthropic_error_of(post(&base, "/v1/messages", &too_large).await, 400).await;
    assert_eq!(error["type"], "invalid_request_error");
    let response = reqwest::Client::new()
        .post(format!("{base}/v1/messages"))
        .body("{")
        .send()
        .await
        .unwrap();
    anthropic_error_of(response, 400).await;

    // No note free: 429, rate_limit_error, which the SDK retries.
    let payer = TestPayer::answering(
        price_list(true),
        Box::new(|_| {
            Err(PayError::NoNote {
                class_cost: 100,
                reason: "all notes are busy".into(),
            })
        }),
    );
    let base = start_default(payer).await;
    let request = json!({"model": "m", "max_tokens": 5, "messages": []});
    let error = anthropic_error_of(post(&base, "/v1/messages", &request).await, 429).await;
    assert_eq!(error["type"], "rate_limit_error");

    // The guard answers in Anthropic's format on Anthropic's route.
    let response = reqwest::Client::new()
        .post(format!("{base}/v1/messages"))
        .header("origin", "https://evil.example")
        .json(&request)
        .send()
        .await
        .unwrap();
    let error = anthropic_error_of(response, 403).await;
    assert_eq!(error["type"], "permission_error");
}

/// A chat completion the Ollama routes translate.
const COMPLETION_JSON: &str = r#"{"id":"chatcmpl-1","object":"chat.completion","created":1700000000,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Hello there."},"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":3,"total_tokens":12}}"#;

/// The same, streamed with its usage chunk.
const COMPLETION_SSE: &str = "data: {\"created\":1700000000,\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n\
data: {\"created\":1700000000,\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hello\"}}]}\n\n\
data: {\"created\":1700000000,\"choices\":[{\"index\":0,\"delta\":{\"content\":\" there.\"},\"finish_reason\":\"length\"}]}\n\n\
data: {\"created\":1700000000,\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":3,\"total_tokens\":12}}\n\n\
data: [DONE]\n\n";

#[tokio::test]
async fn ollama_chat_is_translated_to_chat_completions_and_back() {
    let payer = TestPayer::ok("application/json", COMPLETION_JSON);
    let base = start_default(payer.clone()).await;
    let request = json!({
        "model": "m",
        "messages": [{"role": "user", "content": "hi"}],
        "stream": false,
        "options": {"num_predict": 12},
    });
    let response = post(&base, "/api/chat", &request).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-nullgate-charged"], CHARGE.to_string());
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["message"]["content"], "Hello there.");
    assert_eq!(answer["message"]["role"], "assistant");
    assert_eq!(answer["done"], true);
    assert_eq!(answer["done_reason"], "stop");
    assert_eq!(answer["prompt_eval_count"], 9);
    assert_eq!(answer["eval_count"], 3);
    assert_eq!(answer["created_at"], "2023-11-14T22:13:20Z");
    let sent = payer.only();
    assert_eq!(sent.path_and_query, "/v1/chat/completions");
    let forwarded = body_of(&sent);
    assert_eq!(forwarded["max_tokens"], 12);
    assert_eq!(forwarded["messages"], request["messages"]);
    assert_eq!(forwarded["store"], false);
}

#[tokio::test]
async fn ollama_streams_by_default_as_ndjson() {
    let payer = TestPayer::ok("text/event-stream", COMPLETION_SSE);
    let base = start_default(payer.clone()).await;
    let request = json!({"model": "m", "prompt": "hi", "system": "be brief"});
    let response = post(&base, "/api/generate", &request).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/x-ndjson");
    let text = response.text().await.unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert_eq!(lines[0]["response"], "Hello");
    assert_eq!(lines[0]["done"], false);
    assert_eq!(lines[1]["response"], " there.");
    assert_eq!(lines[2]["done"], true);
    assert_eq!(lines[2]["done_reason"], "length");
    assert_eq!(lines[2]["eval_count"], 3);
    let forwarded = body_of(&payer.only());
    assert_eq!(forwarded["stream"], true);
    assert_eq!(forwarded["stream_options"], json!({"include_usage": true}));
    assert_eq!(forwarded["messages"][0]["role"], "system");
}

#[tokio::test]
async fn ollama_errors_are_in_ollamas_format() {
    let payer = TestPayer::json();
    let base = start_default(payer.clone()).await;
    for (path, body) in [
        (
            "/api/generate",
            json!({"model": "m", "prompt": "hi", "images": ["aGk="]}),
        ),
        ("/api/chat", json!({"messages": []})),
        ("/api/chat", json!("not an object")),
    ] {
        let response = post(&base, path, &body).await;
        assert_eq!(response.status(), 400);
        let error: Value = response.json().await.unwrap();
        assert!(error["error"].is_string(), "{error}");
    }
    assert!(payer.seen().is_empty());
    // An upstream error's message comes through in Ollama's shape, with its status.
    let payer = TestPayer::answering(
        price_list(true),
        Box::new(|_| {
            Ok(PaidResponse {
                status: http::StatusCode::NOT_FOUND,
                headers: http::HeaderMap::new(),
                body: Bytes::from_static(br#"{"error":{"message":"no model m"}}"#),
                receipt: receipt(CHARGE),
                class_cost: 100,
            })
        }),
    );
    let base = start_default(payer).await;
    let body = json!({"model": "m", "messages": [], "stream": false});
    let response = post(&base, "/api/chat", &body).await;
    assert_eq!(response.status(), 404);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"error": "no model m"})
    );
}

#[tokio::test]
async fn ollama_tags_list_the_gateways_models() {
    const MODELS: &str = r#"{"object":"list","data":[{"id":"nullgate-example-1","object":"model","created":1700000000}]}"#;
    let payer = TestPayer::ok("application/json", MODELS);
    let base = start_default(payer.clone()).await;
    let response = reqwest::get(format!("{base}/api/tags")).await.unwrap();
    assert_eq!(response.status(), 200);
    let tags: Value = response.json().await.unwrap();
    assert_eq!(tags["models"][0]["name"], "nullgate-example-1");
    assert_eq!(tags["models"][0]["model"], "nullgate-example-1");
    assert_eq!(payer.only().path_and_query, "/v1/models");
}

#[tokio::test]
async fn fixed_price_routes_pass_through_with_their_query() {
    let payer = TestPayer::json();
    let base = start_default(payer.clone()).await;
    let response = reqwest::Client::new()
        .get(format!("{base}/search?q=rivers&n=3"))
        .header("authorization", "Bearer key")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let sent = payer.only();
    assert_eq!(sent.method, http::Method::GET);
    assert_eq!(sent.path_and_query, "/search?q=rivers&n=3");
    assert!(sent.headers.is_empty());
    // 150 credits → C_2 = 1_000.
    assert_eq!(sent.class_index, 1);
}

#[tokio::test]
async fn json_rpc_ids_are_renumbered_and_put_back() {
    let payer = TestPayer::ok(
        "application/json",
        r#"[{"jsonrpc":"2.0","id":1,"result":"0x10"},{"jsonrpc":"2.0","id":0,"result":"0x7a69"}]"#,
    );
    let base = start_default(payer.clone()).await;
    let batch = json!([
        {"jsonrpc": "2.0", "id": 41, "method": "eth_chainId"},
        {"jsonrpc": "2.0", "id": "call-42", "method": "eth_blockNumber"},
    ]);
    let response = post(&base, "/rpc", &batch).await;
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer[0]["id"], "call-42");
    assert_eq!(answer[0]["result"], "0x10");
    assert_eq!(answer[1]["id"], 41);
    let sent = payer.only();
    let forwarded = body_of(&sent);
    assert_eq!(forwarded[0]["id"], 0);
    assert_eq!(forwarded[1]["id"], 1);
    // 10 + 20 credits → C_1.
    assert_eq!(sent.class_index, 0);

    // An unpriced method refuses the whole body, before anything is paid.
    let payer = TestPayer::json();
    let base = start_default(payer.clone()).await;
    let call = json!({"jsonrpc": "2.0", "id": 1, "method": "eth_sendRawTransaction"});
    let error = error_of(post(&base, "/rpc", &call).await, 400).await;
    assert_eq!(error["code"], "nullgate_request_not_priced");
    assert!(payer.seen().is_empty());
}

#[tokio::test]
async fn token_routes_the_proxy_cannot_bound_are_refused() {
    let payer = TestPayer::json();
    let base = start_default(payer.clone()).await;
    let request = json!({"model": "m", "prompt": "hi"});
    let error = error_of(post(&base, "/v1/completions", &request).await, 404).await;
    assert_eq!(error["code"], "nullgate_route_not_served");
    let response = post(&base, "/api/unknown", &request).await;
    assert_eq!(response.status(), 404);
    assert!(response.json::<Value>().await.unwrap()["error"].is_string());
    assert!(payer.seen().is_empty());
}

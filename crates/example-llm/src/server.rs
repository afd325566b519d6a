//! The HTTP server: configuration, routes, bearer-key check, counters, start and stop.

use std::{
    fmt,
    future::Future,
    net::{Ipv4Addr, SocketAddr},
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use axum::{
    Json, Router,
    body::Bytes,
    extract::{DefaultBodyLimit, Path, Request, State, rejection::BytesRejection},
    http::{StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use rand::{Rng, distributions::Alphanumeric};
use serde_json::{Value, json};
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};

use crate::{
    Error,
    chat::{ChatRequest, Completion, Delivery},
    error::ApiError,
    tokens,
};

/// The model id served when [`ExampleLlmConfig::models`] is left at its default.
pub const DEFAULT_MODEL: &str = "nullgate-example-1";

/// The largest request body accepted (1 MiB); a larger one gets 413.
pub const MAX_REQUEST_BYTES: usize = 1 << 20;

/// What the example server serves and how.
#[derive(Clone)]
pub struct ExampleLlmConfig {
    /// Where [`start`] listens. Default `127.0.0.1:0`: a free port on loopback.
    pub listen: SocketAddr,
    /// The model ids listed by `GET /v1/models` and accepted in requests; any other model gets
    /// 404. Default: [`DEFAULT_MODEL`] alone.
    pub models: Vec<String>,
    /// If set, every request must carry `Authorization: Bearer <key>` or gets 401. Default none.
    pub api_key: Option<String>,
    /// Pause between two streamed chunks, to make streaming visible. Default zero.
    pub chunk_delay: Duration,
}

impl Default for ExampleLlmConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            models: vec![DEFAULT_MODEL.to_owned()],
            api_key: None,
            chunk_delay: Duration::ZERO,
        }
    }
}

impl fmt::Debug for ExampleLlmConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The key is a secret of the test or demo; keep it out of logs.
        f.debug_struct("ExampleLlmConfig")
            .field("listen", &self.listen)
            .field("models", &self.models)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("chunk_delay", &self.chunk_delay)
            .finish()
    }
}

/// Running totals of what a server has served, shared between the server and its owner.
///
/// A chat completion counts when its response starts: a stream counts in full even if the
/// client leaves early. Token totals are the `usage` figures of every completion served,
/// including streams that did not ask for usage to be included.
#[derive(Debug, Default)]
pub struct Counters {
    totals: Mutex<CountersSnapshot>,
}

impl Counters {
    /// The totals so far, read consistently.
    pub fn snapshot(&self) -> CountersSnapshot {
        *self.totals.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn record(&self, completion: &Completion) {
        let mut totals = self.totals.lock().unwrap_or_else(PoisonError::into_inner);
        totals.chat_completions += 1;
        if matches!(completion.delivery, Delivery::Stream { .. }) {
            totals.streamed_chat_completions += 1;
        }
        totals.prompt_tokens = totals
            .prompt_tokens
            .saturating_add(completion.prompt_tokens);
        totals.completion_tokens = totals
            .completion_tokens
            .saturating_add(completion.completion_tokens);
    }
}

/// The totals of [`Counters`] at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CountersSnapshot {
    /// Chat completions served, streamed or not (refused requests are not counted).
    pub chat_completions: u64,
    /// Of those, the ones streamed.
    pub streamed_chat_completions: u64,
    /// Sum of `usage.prompt_tokens` over the completions served.
    pub prompt_tokens: u64,
    /// Sum of `usage.completion_tokens` over the completions served.
    pub completion_tokens: u64,
}

/// A server started by [`start`]. Dropping it stops the server too, without waiting.
#[derive(Debug)]
pub struct RunningExampleLlm {
    addr: SocketAddr,
    counters: Arc<Counters>,
    shutdown: oneshot::Sender<()>,
    task: JoinHandle<Result<(), Error>>,
}

impl RunningExampleLlm {
    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL an OpenAI client takes, `http://ADDR/v1`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// The totals served so far.
    pub fn counters(&self) -> CountersSnapshot {
        self.counters.snapshot()
    }

    /// Stops accepting connections, lets the responses in progress finish, and waits.
    pub async fn stop(self) -> Result<(), Error> {
        let Self { shutdown, task, .. } = self;
        // The server may have stopped already, on an error that `task` carries.
        let _ = shutdown.send(());
        task.await
            .map_err(|e| Error::Serve(std::io::Error::other(e)))?
    }
}

/// Binds `config.listen` and serves there on a spawned task until stopped. Call within a tokio
/// runtime.
pub async fn start(config: ExampleLlmConfig) -> Result<RunningExampleLlm, Error> {
    tokens::bpe()?;
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| Error::Bind {
            addr: config.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| Error::Bind {
        addr: config.listen,
        source,
    })?;
    let counters = Arc::new(Counters::default());
    let (shutdown, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(serve(config, listener, counters.clone(), async {
        // A send and a dropped sender both mean stop.
        let _ = stopped.await;
    }));
    Ok(RunningExampleLlm {
        addr,
        counters,
        shutdown,
        task,
    })
}

/// Serves on `listener` (ignoring `config.listen`), counting into `counters`, until `shutdown`
/// completes; then lets the responses in progress finish.
pub async fn serve(
    config: ExampleLlmConfig,
    listener: TcpListener,
    counters: Arc<Counters>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    tokens::bpe()?;
    axum::serve(listener, router(&config, counters))
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(Error::Serve)
}

/// The routes alone, to mount elsewhere or to call without a socket:
/// `POST /v1/chat/completions`, `GET /v1/models`, `GET /v1/models/{model}`.
pub fn router(config: &ExampleLlmConfig, counters: Arc<Counters>) -> Router {
    let state = Arc::new(AppState {
        models: config.models.clone(),
        api_key: config.api_key.clone(),
        chunk_delay: config.chunk_delay,
        created: unix_time(),
        counters,
    });
    Router::new()
        .route("/v1/chat/completions", post(chat_completions))
        .route("/v1/models", get(list_models))
        .route("/v1/models/{model}", get(retrieve_model))
        .fallback(unknown_route)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), require_key))
        .layer(DefaultBodyLimit::max(MAX_REQUEST_BYTES))
        .with_state(state)
}

struct AppState {
    models: Vec<String>,
    api_key: Option<String>,
    chunk_delay: Duration,
    /// The `created` time given for every model.
    created: u64,
    counters: Arc<Counters>,
}

async fn chat_completions(
    State(state): State<Arc<AppState>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(body) => body,
        Err(rejection) => {
            return ApiError::with_status(rejection.status(), rejection.body_text())
                .into_response();
        }
    };
    let request: ChatRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(e) => {
            return ApiError::invalid(format!(
                "We could not parse the JSON body of your request: {e}"
            ))
            .into_response();
        }
    };
    let Ok(bpe) = tokens::bpe() else {
        return ApiError::internal().into_response();
    };
    // Tokenizing up to a megabyte of prompt takes a while: off the async workers.
    let models = state.models.clone();
    let planned = tokio::task::spawn_blocking(move || Completion::plan(bpe, &models, request));
    let completion = match planned.await {
        Ok(Ok(completion)) => completion,
        Ok(Err(refusal)) => return refusal.into_response(),
        Err(_) => return ApiError::internal().into_response(),
    };
    state.counters.record(&completion);

    let id = completion_id();
    let created = unix_time();
    match completion.delivery {
        Delivery::Whole => Json(completion.to_json(&id, created)).into_response(),
        Delivery::Stream { .. } => {
            completion.into_event_stream(bpe, id, created, state.chunk_delay)
        }
    }
}

async fn list_models(State(state): State<Arc<AppState>>) -> Json<Value> {
    let data: Vec<Value> = state
        .models
        .iter()
        .map(|id| model_object(id, state.created))
        .collect();
    Json(json!({ "object": "list", "data": data }))
}

async fn retrieve_model(State(state): State<Arc<AppState>>, Path(model): Path<String>) -> Response {
    if state.models.contains(&model) {
        Json(model_object(&model, state.created)).into_response()
    } else {
        ApiError::model_not_found(&model).into_response()
    }
}

async fn unknown_route(request: Request) -> ApiError {
    ApiError::with_status(
        StatusCode::NOT_FOUND,
        format!(
            "Invalid URL ({} {})",
            request.method(),
            request.uri().path()
        ),
    )
}

async fn method_not_allowed(request: Request) -> ApiError {
    ApiError::with_status(
        StatusCode::METHOD_NOT_ALLOWED,
        format!(
            "Method {} is not allowed for {}",
            request.method(),
            request.uri().path()
        ),
    )
}

/// With a key configured, refuses requests that do not present it as a bearer token.
async fn require_key(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    if let Some(key) = &state.api_key {
        let presented = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "));
        match presented {
            None => return ApiError::missing_key().into_response(),
            Some(presented) if presented != key => return ApiError::wrong_key().into_response(),
            Some(_) => {}
        }
    }
    next.run(request).await
}

fn model_object(id: &str, created: u64) -> Value {
    json!({ "id": id, "object": "model", "created": created, "owned_by": "nullgate" })
}

/// `chatcmpl-` and 29 random alphanumerics, the shape of OpenAI's ids.
fn completion_id() -> String {
    let suffix: String = rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(29)
        .map(char::from)
        .collect();
    format!("chatcmpl-{suffix}")
}

fn unix_time() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

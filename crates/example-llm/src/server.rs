//! The HTTP server: configuration, routes, key check, counters, start and stop.

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
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tiktoken_rs::CoreBPE;
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};

use crate::{
    Error,
    chat::{Completion, Delivery},
    embeddings::Embeddings,
    error::{ApiError, Dialect},
    messages::Answer,
    responses::{ModelResponse, ResponseIds},
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
    /// If set, every request must present it, as `Authorization: Bearer <key>` (OpenAI's way)
    /// or `x-api-key: <key>` (Anthropic's), on any route, or gets 401. Default none.
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
/// A call counts when its response starts: a stream counts in full even if the client leaves
/// early. Token totals are the `usage` figures of every call served, including chat streams
/// that did not ask for usage to be included. Each API has its own totals; refused requests
/// count nowhere.
#[derive(Debug, Default)]
pub struct Counters {
    totals: Mutex<CountersSnapshot>,
}

impl Counters {
    /// The totals so far, read consistently.
    pub fn snapshot(&self) -> CountersSnapshot {
        *self.totals.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts one call to `api`, with the input and output tokens of its usage.
    fn record(&self, api: Api, streamed: bool, input_tokens: u64, output_tokens: u64) {
        let mut guard = self.totals.lock().unwrap_or_else(PoisonError::into_inner);
        let totals = &mut *guard;
        let (calls, streams, input, output) = match api {
            Api::Chat => (
                &mut totals.chat_completions,
                Some(&mut totals.streamed_chat_completions),
                &mut totals.prompt_tokens,
                Some(&mut totals.completion_tokens),
            ),
            Api::Messages => (
                &mut totals.messages,
                Some(&mut totals.streamed_messages),
                &mut totals.message_input_tokens,
                Some(&mut totals.message_output_tokens),
            ),
            Api::Responses => (
                &mut totals.responses,
                Some(&mut totals.streamed_responses),
                &mut totals.response_input_tokens,
                Some(&mut totals.response_output_tokens),
            ),
            Api::Embeddings => (
                &mut totals.embeddings,
                None,
                &mut totals.embedding_tokens,
                None,
            ),
        };
        *calls += 1;
        if streamed && let Some(streams) = streams {
            *streams += 1;
        }
        *input = input.saturating_add(input_tokens);
        if let Some(output) = output {
            *output = output.saturating_add(output_tokens);
        }
    }
}

/// The API a call was served by, for [`Counters`].
#[derive(Debug, Clone, Copy)]
enum Api {
    Chat,
    Messages,
    Responses,
    Embeddings,
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
    /// Anthropic Messages calls served (`POST /v1/messages`), streamed or not.
    pub messages: u64,
    /// Of those, the ones streamed.
    pub streamed_messages: u64,
    /// Sum of `usage.input_tokens` over the messages served.
    pub message_input_tokens: u64,
    /// Sum of the final `usage.output_tokens` over the messages served.
    pub message_output_tokens: u64,
    /// Responses API calls served (`POST /v1/responses`), streamed or not.
    pub responses: u64,
    /// Of those, the ones streamed.
    pub streamed_responses: u64,
    /// Sum of `usage.input_tokens` over the responses served.
    pub response_input_tokens: u64,
    /// Sum of `usage.output_tokens` over the responses served.
    pub response_output_tokens: u64,
    /// Embeddings calls served (`POST /v1/embeddings`; one call may embed many inputs).
    pub embeddings: u64,
    /// Sum of `usage.prompt_tokens` over the embeddings calls served.
    pub embedding_tokens: u64,
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

    /// The base URL an OpenAI client takes, `http://ADDR/v1`. (An Anthropic client takes
    /// `http://ADDR`, and adds `/v1/messages` itself.)
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
/// `POST /v1/chat/completions`, `POST /v1/messages` (Anthropic's Messages API),
/// `POST /v1/responses`, `POST /v1/embeddings`, `GET /v1/models`, `GET /v1/models/{model}`.
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
        .route("/v1/messages", post(messages))
        .route("/v1/responses", post(responses))
        .route("/v1/embeddings", post(embeddings))
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
    let (completion, bpe) = match plan(&state, body, Completion::plan).await {
        Ok(planned) => planned,
        Err(refusal) => return refusal.into_response(),
    };
    let streamed = matches!(completion.delivery, Delivery::Stream { .. });
    state.counters.record(
        Api::Chat,
        streamed,
        completion.prompt_tokens,
        completion.reply.tokens,
    );
    let id = random_id("chatcmpl-", 29);
    let created = unix_time();
    if streamed {
        completion.into_event_stream(bpe, &id, created, state.chunk_delay)
    } else {
        Json(completion.to_json(&id, created)).into_response()
    }
}

async fn messages(
    State(state): State<Arc<AppState>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let (answer, bpe) = match plan(&state, body, Answer::plan).await {
        Ok(planned) => planned,
        Err(refusal) => return refusal.in_dialect(Dialect::Anthropic).into_response(),
    };
    state.counters.record(
        Api::Messages,
        answer.stream,
        answer.input_tokens,
        answer.reply.tokens,
    );
    // `msg_` and 24 alphanumerics, the shape of Anthropic's ids.
    let id = random_id("msg_", 24);
    if answer.stream {
        answer.into_event_stream(bpe, &id, state.chunk_delay)
    } else {
        Json(answer.to_json(&id)).into_response()
    }
}

async fn responses(
    State(state): State<Arc<AppState>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let (response, bpe) = match plan(&state, body, ModelResponse::plan).await {
        Ok(planned) => planned,
        Err(refusal) => return refusal.into_response(),
    };
    state.counters.record(
        Api::Responses,
        response.stream,
        response.input_tokens,
        response.reply.tokens,
    );
    let ids = ResponseIds {
        response: random_id("resp_", 48),
        message: random_id("msg_", 48),
    };
    let created = unix_time();
    if response.stream {
        response.into_event_stream(bpe, &ids, created, state.chunk_delay)
    } else {
        Json(response.to_json(&ids, created)).into_response()
    }
}

async fn embeddings(
    State(state): State<Arc<AppState>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let (embeddings, _) = match plan(&state, body, Embeddings::plan).await {
        Ok(planned) => planned,
        Err(refusal) => return refusal.into_response(),
    };
    state
        .counters
        .record(Api::Embeddings, false, embeddings.prompt_tokens, 0);
    Json(embeddings.to_json()).into_response()
}

/// Reads `body` as the JSON request `R` and checks and plans it with `decide`, off the async
/// workers (tokenizing up to a megabyte of prompt takes a while). Refusals are in OpenAI's
/// format, for the caller to turn into its API's.
async fn plan<R, T>(
    state: &AppState,
    body: Result<Bytes, BytesRejection>,
    decide: fn(&CoreBPE, &[String], R) -> Result<T, ApiError>,
) -> Result<(T, &'static CoreBPE), ApiError>
where
    R: DeserializeOwned + Send + 'static,
    T: Send + 'static,
{
    let body =
        body.map_err(|rejection| ApiError::with_status(rejection.status(), rejection.body_text()))?;
    let request: R = serde_json::from_slice(&body).map_err(|e| {
        ApiError::invalid(format!(
            "We could not parse the JSON body of your request: {e}"
        ))
    })?;
    let bpe = tokens::bpe().map_err(|_| ApiError::internal())?;
    let models = state.models.clone();
    let planned = tokio::task::spawn_blocking(move || decide(bpe, &models, request)).await;
    match planned {
        Ok(planned) => planned.map(|planned| (planned, bpe)),
        Err(_) => Err(ApiError::internal()),
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
    let path = request.uri().path();
    ApiError::with_status(
        StatusCode::NOT_FOUND,
        format!("Invalid URL ({} {path})", request.method()),
    )
    .in_dialect(Dialect::of_path(path))
}

async fn method_not_allowed(request: Request) -> ApiError {
    let path = request.uri().path();
    ApiError::with_status(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("Method {} is not allowed for {path}", request.method()),
    )
    .in_dialect(Dialect::of_path(path))
}

/// With a key configured, refuses requests that present it neither as a bearer token nor as
/// `x-api-key`, in the error format of the API called.
async fn require_key(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    if let Some(key) = &state.api_key {
        let headers = request.headers();
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "));
        let x_api_key = headers
            .get("x-api-key")
            .and_then(|value| value.to_str().ok());
        let dialect = Dialect::of_path(request.uri().path());
        let mut presented = [bearer, x_api_key].into_iter().flatten().peekable();
        if presented.peek().is_none() {
            return ApiError::missing_key(dialect).into_response();
        }
        if !presented.any(|presented| presented == key) {
            return ApiError::wrong_key(dialect).into_response();
        }
    }
    next.run(request).await
}

fn model_object(id: &str, created: u64) -> Value {
    json!({ "id": id, "object": "model", "created": created, "owned_by": "nullgate" })
}

/// `prefix` and `len` random alphanumerics, the shape of the APIs' ids (`chatcmpl-` and 29 for
/// OpenAI's chat completions).
fn random_id(prefix: &str, len: usize) -> String {
    let suffix: String = rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect();
    format!("{prefix}{suffix}")
}

fn unix_time() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

//! `nullgate proxy`: the local server agents talk to.
//!
//! An agent points its base URL at the proxy and needs no API key:
//!
//! | API | base URL | routes |
//! | --- | --- | --- |
//! | OpenAI (`openai.rs`) | `http://127.0.0.1:8787/v1` | `POST /v1/chat/completions`, `POST /v1/responses`, `POST /v1/embeddings`, `GET /v1/models` |
//! | Anthropic (`anthropic.rs`) | `http://127.0.0.1:8787` | `POST /v1/messages` |
//! | Ollama (`ollama.rs`) | `http://127.0.0.1:8787` | `POST /api/chat`, `POST /api/generate`, `GET /api/tags` (translated to the OpenAI routes) |
//! | anything the price list prices at a fixed price or per JSON-RPC method (`passthrough.rs`) | `http://127.0.0.1:8787` | as priced (an Ethereum node's `POST /rpc`, say) |
//!
//! For each request the proxy
//!
//! 1. refuses anything that did not come from a local program (the guard layer): a
//!    `Host` other than `127.0.0.1`, `localhost` or `[::1]` (with any port) is a DNS rebinding
//!    attempt, and an `Origin` or `Sec-Fetch-*` header means a web page sent it; both get 403;
//! 2. strips what identifies the user (PROTOCOL §6 step 5 forwards only the price list's
//!    signed headers, and nullgate forwards less): every incoming header is dropped, API keys,
//!    `User-Agent`, `X-Stainless-*`, `anthropic-version`, cookies and
//!    `OpenAI-Organization`/`-Project` included; the JSON body loses each API's identifiers
//!    (`user`, `metadata`, `safety_identifier`, `prompt_cache_key`) and gets `"store": false`
//!    where the API stores requests; fields that chain a request to earlier ones at the
//!    provider (`previous_response_id`, `conversation`) are refused; JSON-RPC ids are
//!    renumbered;
//! 3. picks the cost class `C_c` (PROTOCOL §5 step 1): the smallest class that covers the most
//!    the request may cost, setting the API's completion limit (`max_tokens`,
//!    `max_output_tokens`) when the agent left it open;
//! 4. hands the request to the [`Payer`], and answers with the gateway's status, content type
//!    and body, plus `x-nullgate-charged` and `x-nullgate-class`.
//!
//! Errors are written in the format of the API called (see `error.rs`); a route the
//! gateway's price list does not price is a 404.
//!
//! **Streams** (`"stream": true`) reach the agent whole, once the gateway's answer is
//! complete: the client core pays for a request and checks its receipt before it hands over
//! any of the answer, and the OHTTP transport carries one sealed response. The agent's SDK
//! sees a well-formed stream whose events all arrive at once.
//!
//! # The cost bound
//!
//! A chat route priced `openai-tokens <prompt> <completion>` costs
//! `prompt·prompt_tokens + completion·completion_tokens`. The proxy cannot count tokens (it
//! does not know the upstream's tokenizer), so it bounds them:
//!
//! - **prompt tokens ≤ the UTF-8 byte length of the body** as forwarded, less the
//!   completion limit the proxy adds itself. Every token of a byte-level tokenizer stands
//!   for at least one byte of text, and the JSON syntax around each message is longer than the
//!   few template tokens a chat format adds per message. Images given by URL break this bound
//!   (a short URL can stand for a thousand tokens); the gateway then charges at most `C_c`
//!   (PROTOCOL §6 step 4), so the user never pays more than the class, the gateway absorbs
//!   the difference.
//! - **completion tokens ≤ `n · max(max_tokens, max_completion_tokens)`**: each of the `n`
//!   choices is limited on its own (the Responses API's `max_output_tokens`, Anthropic's
//!   `max_tokens`; embeddings generate none).
//!
//! Without a limit the class is the one that covers
//! [`ProxyConfig::default_max_tokens`]; the proxy then writes the limit as the most that
//! class pays for, so the answer can never outgrow it.
//!
//! # Why keys come out sorted
//!
//! The body is re-serialised by `serde_json` without its `preserve_order` feature: cargo
//! unifies features across the workspace, and that feature would change the key order of
//! every other crate's JSON (the example LLM's answers, for one). Sorted keys and compact
//! whitespace are also one spelling for every SDK, where the SDKs' own orders and spacing
//! would tell them apart.

mod anthropic;
mod class;
mod config;
mod error;
mod forward;
mod guard;
mod ollama;
mod openai;
mod passthrough;
mod sanitize;

use std::{future::Future, io, net::SocketAddr, sync::Arc};

use axum::{
    Router,
    extract::DefaultBodyLimit,
    middleware,
    routing::{get, post},
};
use tokio::net::TcpListener;

use crate::paid::Payer;

pub use config::ProxyConfig;

/// The proxy's routes with the guard and the body limit, to serve or to call without a
/// socket. `config.listen` is not used here.
pub fn router<P: Payer>(payer: Arc<P>, config: ProxyConfig) -> Router {
    let limit = config.max_body_bytes;
    let app = Arc::new(forward::App { payer, config });
    Router::new()
        .route(openai::CHAT.path, post(openai::chat::<P>))
        .route(openai::RESPONSES.path, post(openai::responses::<P>))
        .route(openai::EMBEDDINGS.path, post(openai::embeddings::<P>))
        .route(openai::MODELS, get(openai::models::<P>))
        .route(anthropic::MESSAGES.path, post(anthropic::messages::<P>))
        .route("/api/chat", post(ollama::chat::<P>))
        .route("/api/generate", post(ollama::generate::<P>))
        .route("/api/tags", get(ollama::tags::<P>))
        .fallback(passthrough::fallback::<P>)
        .method_not_allowed_fallback(passthrough::fallback::<P>)
        .with_state(app)
        .layer(DefaultBodyLimit::max(limit))
        // Outermost: nothing runs, nothing is read, before the guard has passed the request.
        .layer(middleware::from_fn(guard::guard))
}

/// Binds `config.listen` (refusing an address that is not loopback) and serves until
/// `shutdown` completes; then lets the answers in progress finish.
pub async fn serve<P: Payer>(
    payer: Arc<P>,
    config: ProxyConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    Proxy::bind(payer, config).await?.run(shutdown).await
}

/// A proxy bound to its loopback address, not yet serving: [`Proxy::local_addr`] tells the
/// port when `config.listen` asked for port 0.
#[derive(Debug)]
pub struct Proxy {
    listener: TcpListener,
    addr: SocketAddr,
    router: Router,
}

impl Proxy {
    /// Binds `config.listen`. An address that is not loopback (`127.0.0.0/8`, `::1`) is
    /// refused with [`ServeError::NotLoopback`] before any socket is opened.
    pub async fn bind<P: Payer>(payer: Arc<P>, config: ProxyConfig) -> Result<Self, ServeError> {
        let wanted = config.listen;
        if !wanted.ip().is_loopback() {
            return Err(ServeError::NotLoopback(wanted));
        }
        let bind_error = |source| ServeError::Bind {
            addr: wanted,
            source,
        };
        let listener = TcpListener::bind(wanted).await.map_err(bind_error)?;
        let addr = listener.local_addr().map_err(bind_error)?;
        Ok(Self {
            listener,
            addr,
            router: router(payer, config),
        })
    }

    /// The address bound (the actual port if `config.listen` asked for 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves until `shutdown` completes, then lets the answers in progress finish.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        tracing::info!(addr = %self.addr, "nullgate proxy listening");
        // The peer address lets the guard refuse a non-loopback peer too (it cannot happen on
        // a loopback socket; the check costs nothing and survives a future change of bind).
        axum::serve(
            self.listener,
            self.router
                .into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(ServeError::Serve)
    }
}

/// Why the proxy could not start or stopped abnormally.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The listen address is not loopback: other machines could spend the wallet's credits.
    #[error(
        "refusing to listen on {0}: the proxy serves this machine only (its callers spend your \
         credits without a key); listen on 127.0.0.1 or [::1]"
    )]
    NotLoopback(SocketAddr),
    /// The socket could not be bound.
    #[error("could not listen on {addr}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },
    /// Serving failed.
    #[error("the proxy stopped serving")]
    Serve(#[source] io::Error),
}

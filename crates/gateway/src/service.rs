//! The gateway's HTTP surface and how it starts.
//!
//! - `GET /.well-known/nullgate`: the deployment document (PROTOCOL §2).
//! - `GET /nullgate/tree`: every leaf, compact, with an ETag (§3).
//! - `GET /nullgate/receipt/{N}`: unknown, reserved, or the receipt (§6.7).
//! - `GET /metrics`: Prometheus text.
//! - every other path: the paid pipeline (priced routes; others 404 with the price list's
//!   pointer, a request without a credential 402).
//!
//! All of it is served directly and, sealed, through the OHTTP gateway of `nullgate-net`
//! (`POST /ohttp`, `GET /ohttp-keys`), which is how clients reach it.

use std::{
    net::SocketAddr,
    sync::{Arc, RwLock},
};

use axum::{
    Router,
    body::Body,
    extract::{Path, State},
    http::{HeaderMap, HeaderValue, Request, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use nullgate_chain::{Address, PrivateKeySigner, Vault};
use nullgate_net::ohttp::{GatewayConfig as OhttpConfig, KeyRing, gateway_router};
use nullgate_protocol::{
    close::CLOSE_PATH,
    deployment::Deployment,
    price::PriceList,
    rejection::Rejection,
    tree::{TREE_MEDIA_TYPE, encode_leaves},
    well_known::{
        RECEIPT_PATH, StateKeyEntry, TREE_PATH, WELL_KNOWN_PATH, WellKnown, from_hex0x, hex0x,
    },
};
use nullgate_zk::{field::fr_to_bytes, groth16::VerifierKey};

use crate::{
    batching::VerifyQueue,
    charge::StateSigner,
    close,
    config::Limits,
    metrics::Metrics,
    pipeline,
    slash::Slasher,
    store::{NullifierStore, ReceiptLookup},
    upstream::Upstream,
    verify::{Slots, Verifier},
    watcher::{ExitIngest, Serving, TreeView, Watcher},
};

/// What a gateway is built from (files and flags are the binary's business).
pub struct GatewayParts {
    /// The vault on its ledger.
    pub vault: Arc<Vault>,
    /// The block the vault was deployed in.
    pub from_block: u64,
    /// The price list; its hash must equal the vault's `priceListHash`.
    pub price_list: PriceList,
    /// The current state key; its public key must be the vault's current key.
    pub signer: StateSigner,
    /// The request verifying key; its hash must equal the vault's.
    pub verifier_key: VerifierKey,
    /// The exit verifying key (mutual closes); its hash must equal the vault's.
    pub exit_verifier_key: VerifierKey,
    /// The clearance signer's key (mutual closes); its address must be the vault's
    /// `clearanceSigner`. Without one, `POST /nullgate/close` is refused (409) and clients
    /// exit on chain.
    pub clearance_signer: Option<PrivateKeySigner>,
    /// The nullifier store.
    pub store: Arc<dyn NullifierStore>,
    /// The upstream API.
    pub upstream: Upstream,
    /// The OHTTP keys; the served body must hash to the vault's `ohttpKeysHash`.
    pub ohttp: KeyRing,
    /// The authority clients name in sealed requests.
    pub authority: String,
    /// Limits and timings.
    pub limits: Limits,
    /// The account that submits slashes, if any.
    pub slasher: Option<Address>,
}

/// Why a gateway does not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GatewayError {
    /// The chain could not be read.
    #[error("chain: {0}")]
    Chain(#[from] nullgate_chain::ChainError),
    /// Something the gateway holds differs from what the vault pins.
    #[error("{0}")]
    Mismatch(String),
}

/// What the handlers share.
pub(crate) struct Shared {
    pub(crate) deployment: Deployment,
    pub(crate) prices: PriceList,
    pub(crate) signer: StateSigner,
    pub(crate) verifier: Verifier,
    pub(crate) verify_slots: Slots,
    pub(crate) verify_queue: VerifyQueue,
    pub(crate) exit_verifier_key: VerifierKey,
    pub(crate) clearance_signer: Option<PrivateKeySigner>,
    pub(crate) store: Arc<dyn NullifierStore>,
    pub(crate) tree: Arc<RwLock<Arc<TreeView>>>,
    pub(crate) upstream: Upstream,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) limits: Limits,
    pub(crate) slasher: Arc<Slasher>,
    pub(crate) ohttp_body: Vec<u8>,
}

impl Shared {
    /// Runs CPU-bound verification `work` on a blocking thread under a verification slot
    /// (step 3 of mutual closes; requests go through [`VerifyQueue`]). `Err(RateLimited)` when every slot and the
    /// queue before them are taken (counted as shed), `Err(Internal)` if the work panicked.
    pub(crate) async fn on_verify_slot<T: Send + 'static>(
        self: &Arc<Self>,
        work: impl FnOnce(&Shared) -> T + Send + 'static,
    ) -> Result<T, Rejection> {
        let Some(_slot) = self.verify_slots.acquire().await else {
            self.metrics.verification_shed();
            return Err(Rejection::RateLimited);
        };
        let shared = self.clone();
        tokio::task::spawn_blocking(move || work(&shared))
            .await
            .map_err(|error| {
                tracing::error!(%error, "verification task failed (charged 0)");
                Rejection::Internal
            })
    }

    pub(crate) fn tree_view(&self) -> Arc<TreeView> {
        self.tree.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// A running gateway: its router and counters.
pub struct Gateway {
    shared: Arc<Shared>,
    ohttp: Arc<RwLock<KeyRing>>,
    authority: String,
    _watcher: Watcher,
}

impl Gateway {
    /// Reads the vault's parameters, checks everything the gateway holds against them, and
    /// starts the chain watcher.
    pub async fn start(parts: GatewayParts) -> Result<Self, GatewayError> {
        let deployment = parts.vault.summary().await?.deployment()?;
        let mismatch = |what: &str| GatewayError::Mismatch(what.to_owned());
        if parts.price_list.hash() != deployment.price_list_hash {
            return Err(mismatch(
                "the price list's SHA-256 differs from the vault's priceListHash: serve the list the vault pins (or set the new hash on chain)",
            ));
        }
        if parts.price_list.classes() != deployment.cost_classes.as_slice()
            || parts.price_list.floor_fee() != deployment.floor_fee
        {
            return Err(mismatch(
                "the price list's cost classes or floor fee differ from the vault's",
            ));
        }
        if parts.verifier_key.key_hash() != deployment.request_verifying_key_hash {
            return Err(mismatch(
                "the request verifying key's hash differs from the vault's pinned hash",
            ));
        }
        if parts.exit_verifier_key.key_hash() != deployment.exit_verifying_key_hash {
            return Err(mismatch(
                "the exit verifying key's hash differs from the vault's pinned hash",
            ));
        }
        if let Some(signer) = &parts.clearance_signer
            && signer.address() != parts.vault.summary().await?.clearance_signer
        {
            return Err(mismatch(
                "the clearance key is not the vault's clearanceSigner",
            ));
        }
        if parts.signer.key.public_key() != deployment.current_key.1
            || parts.signer.number != deployment.current_key.0
        {
            return Err(mismatch(
                "the state key is not the vault's current state key",
            ));
        }
        let ohttp_body = parts
            .ohttp
            .served_body()
            .map_err(|e| GatewayError::Mismatch(format!("OHTTP keys: {e}")))?;
        let ohttp_hash: [u8; 32] = sha2::Digest::finalize(sha2::Digest::chain_update(
            sha2::Sha256::default(),
            &ohttp_body,
        ))
        .into();
        if ohttp_hash != deployment.ohttp_keys_hash {
            return Err(mismatch(
                "the OHTTP key configuration's hash differs from the vault's ohttpKeysHash",
            ));
        }
        let metrics = Arc::new(Metrics::default());
        let slasher = Arc::new(Slasher {
            vault: parts.vault.clone(),
            from: parts.slasher,
            dom: deployment.dom,
        });
        // Evidence kept before a restart whose slash may not have confirmed.
        {
            let (slasher, store, metrics) = (slasher.clone(), parts.store.clone(), metrics.clone());
            tokio::spawn(async move {
                if let Err(error) = slasher.resume(store, metrics).await {
                    tracing::error!(%error, "cannot read the kept evidence; slashes resume on the next restart");
                }
            });
        }
        let watcher = Watcher::start(
            parts.vault.clone(),
            parts.from_block,
            std::time::Duration::from_millis(parts.limits.poll_ms),
            metrics.clone(),
            Some(ExitIngest {
                store: parts.store.clone(),
                slasher: slasher.clone(),
            }),
            Some(Serving {
                signer: parts.signer.number,
                price_list_hash: parts.price_list.hash(),
                ohttp_keys_hash: ohttp_hash,
            }),
        )
        .await?;
        let verify_slots = Slots::per_core();
        let slots = verify_slots.permits();
        let shared = Arc::new_cyclic(|shared| Shared {
            verifier: Verifier::new(
                parts.verifier_key,
                parts.limits.invalid_per_second,
                metrics.clone(),
            ),
            verify_slots,
            verify_queue: VerifyQueue::start(shared.clone(), slots),
            exit_verifier_key: parts.exit_verifier_key,
            clearance_signer: parts.clearance_signer,
            deployment,
            prices: parts.price_list,
            signer: parts.signer,
            store: parts.store,
            tree: watcher.view(),
            upstream: parts.upstream,
            metrics,
            limits: parts.limits,
            slasher,
            ohttp_body,
        });
        Ok(Self {
            shared,
            ohttp: Arc::new(RwLock::new(parts.ohttp)),
            authority: parts.authority,
            _watcher: watcher,
        })
    }

    /// The counters.
    pub fn metrics(&self) -> Arc<Metrics> {
        self.shared.metrics.clone()
    }

    /// The deployment as the gateway read it.
    pub fn deployment(&self) -> &Deployment {
        &self.shared.deployment
    }

    /// The routes without OHTTP (what an opened request reaches).
    pub fn inner_router(&self) -> Router {
        let shared = self.shared.clone();
        let closing = self.shared.clone();
        Router::new()
            .route(WELL_KNOWN_PATH, get(well_known))
            .route(
                CLOSE_PATH,
                post(move |request: Request<Body>| close::close(closing.clone(), request)),
            )
            .route(TREE_PATH, get(tree))
            .route(&format!("{RECEIPT_PATH}/{{nullifier}}"), get(receipt))
            .route("/metrics", get(metrics))
            .fallback(move |request: Request<Body>| pipeline::paid(shared.clone(), request))
            .with_state(self.shared.clone())
    }

    /// Everything: OHTTP in front (`POST /ohttp`, `GET /ohttp-keys`) and the routes
    /// themselves.
    pub fn router(&self) -> Router {
        let inner = self.inner_router();
        let config = OhttpConfig {
            keys: self.ohttp.clone(),
            allowed_authorities: vec![self.authority.clone()],
            max_request: self.shared.limits.max_request_bytes + (64 << 10),
            max_response: self.shared.limits.max_response_bytes + (64 << 10),
        };
        gateway_router(config, inner.clone()).merge(inner)
    }

    /// Serves on `listener` until the task is dropped.
    pub async fn serve(&self, listener: tokio::net::TcpListener) -> std::io::Result<()> {
        axum::serve(
            listener,
            self.router()
                .into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
    }
}

async fn well_known(State(shared): State<Arc<Shared>>) -> Response {
    let d = &shared.deployment;
    let view = shared.tree_view();
    let doc = WellKnown {
        version: 1,
        chain_id: d.chain_id,
        vault: hex0x(&d.vault),
        dom: hex0x(&fr_to_bytes(&d.dom)),
        exit_x: hex0x(&fr_to_bytes(&d.exit_x())),
        dev_keys: d.dev_keys,
        cost_classes: d.cost_classes.clone(),
        floor_fee: d.floor_fee,
        current_key: view.params().map_or(d.current_key.0, |p| p.current_key),
        state_keys: view
            .request_keys()
            .iter()
            .map(|(number, key)| StateKeyEntry {
                number: *number,
                point: hex0x(&key.to_bytes()),
            })
            .collect(),
        price_list: String::from_utf8_lossy(&shared.prices.to_bytes()).into_owned(),
        price_list_hash: hex0x(&shared.prices.hash()),
        ohttp_keys: nullgate_protocol::base64url(&shared.ohttp_body),
        ohttp_keys_hash: hex0x(&d.ohttp_keys_hash),
        request_verifying_key_hash: hex0x(&d.request_verifying_key_hash),
        exit_verifying_key_hash: hex0x(&d.exit_verifying_key_hash),
        tree: TREE_PATH.into(),
        receipt: format!("{RECEIPT_PATH}/{{N}}"),
    };
    axum::Json(doc).into_response()
}

async fn tree(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let view = shared.tree_view();
    let etag = format!("\"{}-{}\"", view.leaves().len(), view.finalized_block);
    if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        == Some(etag.as_str())
    {
        return StatusCode::NOT_MODIFIED.into_response();
    }
    let mut response = encode_leaves(view.leaves()).into_response();
    let out = response.headers_mut();
    out.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(TREE_MEDIA_TYPE),
    );
    if let Ok(value) = HeaderValue::from_str(&etag) {
        out.insert(header::ETAG, value);
    }
    response
}

async fn receipt(State(shared): State<Arc<Shared>>, Path(nullifier): Path<String>) -> Response {
    let Ok(bytes) = from_hex0x::<32>(
        &format!("0x{}", nullifier.trim_start_matches("0x")),
        "nullifier",
    ) else {
        return (
            StatusCode::BAD_REQUEST,
            "expected the nullifier as 64 hex digits",
        )
            .into_response();
    };
    let Ok(n) = nullgate_zk::field::fr_from_bytes(&bytes, "nullifier") else {
        return (
            StatusCode::BAD_REQUEST,
            "the nullifier is not a field element",
        )
            .into_response();
    };
    let body = match shared.store.receipt(&n).await {
        Ok(ReceiptLookup::Unknown) => serde_json::json!({ "status": "unknown" }),
        Ok(ReceiptLookup::Reserved) => serde_json::json!({ "status": "reserved" }),
        Ok(ReceiptLookup::Receipt(receipt)) => {
            serde_json::json!({ "status": "receipt", "receipt": receipt.to_header() })
        }
        Err(_) => return pipeline::refusal(&Rejection::Internal, None),
    };
    shared.metrics.receipt_lookup();
    axum::Json(body).into_response()
}

async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        shared.metrics.render(),
    )
        .into_response()
}

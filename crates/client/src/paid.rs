//! A paid call as the proxy hands it to the client core, and what comes back.

use bytes::Bytes;
use nullgate_protocol::{price::PriceList, receipt::Receipt};

/// One API request to be paid for with one credential.
#[derive(Clone, Debug)]
pub struct PaidRequest {
    /// The method, upper case.
    pub method: http::Method,
    /// Path and query, exactly as they go on the request line to the gateway.
    pub path_and_query: String,
    /// Request headers to send (already reduced by the proxy to what the price list signs
    /// and forwards, e.g. `content-type`); never `authorization`.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The body.
    pub body: Bytes,
    /// Index of the cost class `C_c` to pay with (0 = `C_1`).
    pub class_index: u8,
}

/// The gateway's answer to a paid request, its receipt checked and applied.
#[derive(Clone, Debug)]
pub struct PaidResponse {
    /// The upstream's (or the gateway's) status.
    pub status: http::StatusCode,
    /// Response headers (no nullgate headers).
    pub headers: http::HeaderMap,
    /// The body; for a streamed response the SSE stream with the final
    /// `event: nullgate-receipt` removed.
    pub body: Bytes,
    /// The receipt (already checked; the note's state has advanced by it).
    pub receipt: Receipt,
    /// `C_c` the call was paid with.
    pub class_cost: u64,
}

/// Why a paid call did not get an answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PayError {
    /// No note has the balance for this class (nor a request held for a re-send).
    #[error(
        "no note can pay {class_cost} credits now ({reason}); deposit more or wait for a call to finish"
    )]
    NoNote {
        /// `C_c` asked for.
        class_cost: u64,
        /// Why.
        reason: String,
    },
    /// Every note that could pay was busy with a call of its own for the whole wait.
    #[error(
        "every note able to pay {class_cost} credits was still busy with another call after \
         {waited} s; retry later, or deposit more notes (`nullgate wallet deposit --notes K`) \
         so that more calls can run at once"
    )]
    AllBusy {
        /// `C_c` asked for.
        class_cost: u64,
        /// Seconds the request waited.
        waited: u64,
    },
    /// Every note that could pay is new and still waits out its random delay after the
    /// deposit (PROTOCOL §3).
    #[error(
        "every note that could pay is new and waits out a random delay after its deposit, so \
         that the deposit's time does not point at its first use (PROTOCOL §3); the first is \
         usable in {seconds} s"
    )]
    FirstUseDelay {
        /// Seconds until the first of them may be used.
        seconds: u64,
    },
    /// Too few notes in the vault to hide a request among (PROTOCOL §9): nothing is spent
    /// until more deposits arrive.
    #[error(
        "refusing to spend: the vault has {active} Active, unexpired notes and a request needs \
         at least {min} to hide among (min_anonymity); wait for more deposits"
    )]
    TooFewNotes {
        /// Active, unexpired notes in the vault at the last sync.
        active: usize,
        /// The configured threshold.
        min: usize,
    },
    /// The class index is not one of the vault's cost classes.
    #[error("cost class index {0} does not exist in this vault")]
    NoSuchClass(u8),
    /// The request was refused by the gateway without a receipt; the journal was cleared
    /// (nothing was consumed) or kept (it will be re-sent), as `kept` says.
    #[error("the gateway refused the request ({status}): {detail}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// The problem document's title, or a summary.
        detail: String,
    },
    /// The transport failed; the request stays journalled and is re-sent byte for byte.
    #[error("could not reach the gateway: {0}; the request stays journalled and will be re-sent")]
    Transport(String),
    /// The receipt did not check out: shown loudly, journal kept so the note can exit safely.
    #[error("the gateway's receipt does not check out: {0}; the note is held for a safe exit")]
    BadReceipt(String),
    /// The wallet or journal could not be written.
    #[error("wallet: {0}")]
    Wallet(String),
    /// Proving failed.
    #[error("proving: {0}")]
    Prover(String),
}

/// What the proxy needs from the client core: the price list it picks classes from, and a
/// way to pay for one request.
pub trait Payer: Send + Sync + 'static {
    /// The price list in effect (its hash checked against the chain).
    fn price_list(&self) -> &PriceList;

    /// Pays for and sends one request, waiting for its answer and checking its receipt.
    fn pay(
        &self,
        request: PaidRequest,
    ) -> impl std::future::Future<Output = Result<PaidResponse, PayError>> + Send;
}

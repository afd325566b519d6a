//! Every refusal a gateway answers, and its one peer-facing mapping (PROTOCOL §6): an HTTP
//! status, an RFC 9457 `application/problem+json` document, a `WWW-Authenticate: NullGate`
//! challenge where the client can act on it, and whether a receipt comes with it.
//!
//! The gateway decides what a peer sees here and nowhere else; details that could help an
//! attacker or link requests stay out of the documents (they carry the reason class, never
//! values from the request).

use serde::{Deserialize, Serialize};

use crate::{WireError, well_known::WELL_KNOWN_PATH};

/// The media type of problem documents (RFC 9457).
pub const PROBLEM_MEDIA_TYPE: &str = "application/problem+json";

/// Prefix of every problem type URI (a URN: it names the problem, it is not fetched).
pub const PROBLEM_TYPE_PREFIX: &str = "urn:nullgate:problem:";

/// Why the gateway refused a request.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rejection {
    /// No `Authorization: NullGate` credential: 402 with the challenge (§6.3).
    #[error("this API is paid with nullgate credits; no credential was sent")]
    MissingCredential,
    /// The credential did not parse: 400, nothing stored (§6.1).
    #[error("malformed credential: {0}")]
    Malformed(WireError),
    /// The credential names a state key the gateway does not accept for requests.
    #[error("the credential names state key {0}, which is not registered or is revoked")]
    UnknownKey(u32),
    /// The credential names a cost class the vault does not have.
    #[error("the credential names cost class index {0}, which the vault does not have")]
    UnknownClass(u8),
    /// The credential's root is not a finalised root the gateway has computed.
    #[error("the credential's root is not a finalised root of this vault's tree")]
    UnknownRoot,
    /// The request key's signature over the payload digest does not verify.
    #[error("the request signature does not verify over this request")]
    BadRequestSignature,
    /// The proof does not verify against the public inputs the gateway assembled.
    #[error("the proof does not verify")]
    InvalidProof,
    /// Too many failed verifications lately (global, not per connection).
    #[error("too many invalid credentials lately; retry later")]
    RateLimited,
    /// The route is not in the price list: 404 before anything is reserved.
    #[error("this gateway has no price for {method} {path}")]
    UnknownRoute {
        /// The method.
        method: String,
        /// The path.
        path: String,
    },
    /// The body cannot be priced on its route (a JSON-RPC method the price list does not
    /// price, or not JSON-RPC at all): 400 before anything is reserved.
    #[error("this request cannot be priced: {0}")]
    Unpriced(crate::price::Unpriced),
    /// The request costs more than the credential's class pays: 400 before anything is
    /// reserved (the cap would otherwise undercharge it).
    #[error("this request costs {price} credits; the credential's class pays {class_cost}")]
    ClassTooSmall {
        /// The request's price from the price list.
        price: u64,
        /// `C_c`.
        class_cost: u64,
    },
    /// A mutual close the gateway cannot clear (§8): unknown note, a note no longer active,
    /// a payout above the deposit, or no clearance signer here: 409, nothing recorded.
    #[error("this mutual close cannot be cleared: {0}")]
    CannotClose(&'static str),
    /// The request body is larger than the gateway accepts.
    #[error("the request body exceeds {limit} bytes")]
    BodyTooLarge {
        /// The limit.
        limit: usize,
    },
    /// The original request at this nullifier is still running (§6.2 retry): 503.
    #[error("the original request is still running; retry shortly")]
    InProgress,
    /// A retry of a request whose response is no longer kept (§6.2): 410 with its receipt.
    #[error(
        "this request was served; its response is no longer kept, its receipt comes with this answer"
    )]
    ResponseExpired,
    /// A different payload at an index already used (§6.2): 409 with the stored receipt.
    #[error(
        "this index was already used for another request; advance with the receipt and send at the next index"
    )]
    SecondPayload,
    /// Two different request keys at one index (§6.2): 409, the note is slashed.
    #[error("double spend: a second request key at one index")]
    DoubleSpend,
    /// Known nullifier, same `x`, another `y` or a bad signature (§6.2): 409.
    #[error("this nullifier is taken and the credential does not match it")]
    Conflict,
    /// `t` outside the gateway's skew (§6.4): 403 with a floor-fee receipt.
    #[error(
        "the credential's hour is outside the gateway's accepted skew; the floor fee is charged"
    )]
    StaleHour,
    /// A policy refusal after reservation (§6.4): 403 with a floor-fee receipt.
    #[error("refused by policy: {0}; the floor fee is charged")]
    Policy(String),
    /// The upstream failed (§6.4): 502 with a receipt for the usage consumed.
    #[error("the upstream API failed; charged for what it consumed")]
    Upstream,
    /// The gateway that reserved `N` stopped while the request was at the upstream
    /// (§6.4): whether it ran there is unknown, so it is never run again; 502 with a
    /// floor-fee receipt.
    #[error("the gateway stopped while this request was at the upstream; it is not run again")]
    Interrupted,
    /// The gateway is not serving (its chain watcher stopped, or it is starting): 503.
    #[error("the gateway is not serving now: {0}")]
    Unavailable(&'static str),
    /// The gateway itself failed: 500, charge 0.
    #[error("internal error of the gateway")]
    Internal,
}

impl Rejection {
    /// The HTTP status.
    pub fn status(&self) -> u16 {
        match self {
            Self::MissingCredential => 402,
            Self::Malformed(_)
            | Self::UnknownClass(_)
            | Self::Unpriced(_)
            | Self::ClassTooSmall { .. } => 400,
            Self::UnknownKey(_)
            | Self::UnknownRoot
            | Self::BadRequestSignature
            | Self::InvalidProof => 401,
            Self::StaleHour | Self::Policy(_) => 403,
            Self::CannotClose(_) => 409,
            Self::UnknownRoute { .. } => 404,
            Self::ResponseExpired => 410,
            Self::SecondPayload | Self::DoubleSpend | Self::Conflict => 409,
            Self::BodyTooLarge { .. } => 413,
            Self::RateLimited => 429,
            Self::Internal => 500,
            Self::Upstream | Self::Interrupted => 502,
            Self::InProgress | Self::Unavailable(_) => 503,
        }
    }

    /// The short code: the problem type's last segment and the challenge's `error`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::MissingCredential => "payment-required",
            Self::Malformed(_) => "malformed-credential",
            Self::UnknownKey(_) => "unknown-key",
            Self::UnknownClass(_) => "unknown-class",
            Self::UnknownRoot => "unknown-root",
            Self::BadRequestSignature => "invalid-signature",
            Self::InvalidProof => "invalid-proof",
            Self::RateLimited => "rate-limited",
            Self::UnknownRoute { .. } => "unknown-route",
            Self::BodyTooLarge { .. } => "body-too-large",
            Self::Unpriced(_) => "unpriced-request",
            Self::CannotClose(_) => "cannot-close",
            Self::ClassTooSmall { .. } => "class-too-small",
            Self::InProgress => "in-progress",
            Self::ResponseExpired => "response-expired",
            Self::SecondPayload => "index-used",
            Self::DoubleSpend => "double-spend",
            Self::Conflict => "nullifier-conflict",
            Self::StaleHour => "stale-hour",
            Self::Policy(_) => "policy",
            Self::Upstream => "upstream-failed",
            Self::Interrupted => "interrupted",
            Self::Unavailable(_) => "unavailable",
            Self::Internal => "internal",
        }
    }

    /// What the client should do, for people reading the problem document.
    fn advice(&self) -> &'static str {
        match self {
            Self::MissingCredential => {
                "fetch /.well-known/nullgate, deposit into the vault it names, and send an Authorization: NullGate credential (nullgate proxy does this)"
            }
            Self::Malformed(_) | Self::UnknownClass(_) => {
                "this client speaks another version of the nullgate protocol; update it"
            }
            Self::UnknownKey(_) => {
                "re-read the vault's state keys from the chain and prove under a registered key"
            }
            Self::UnknownRoot => {
                "re-sync the note tree to the newest finalised block and prove again"
            }
            Self::BadRequestSignature => {
                "sign the payload digest of exactly this request with the index's request key"
            }
            Self::InvalidProof => {
                "prove again with the vault's pinned proving key; a re-send of a journalled request may succeed later"
            }
            Self::RateLimited | Self::InProgress | Self::Unavailable(_) | Self::Internal => {
                "retry later with the same bytes"
            }
            Self::UnknownRoute { .. } => {
                "see the price list in /.well-known/nullgate for the routes this gateway serves"
            }
            Self::BodyTooLarge { .. } => "send a smaller request",
            Self::CannotClose(_) => {
                "exit on chain with initiateExit instead (it needs no gateway), or correct the exit statement"
            }
            Self::Unpriced(_) => {
                "send only the methods the price list in /.well-known/nullgate prices on this route"
            }
            Self::ClassTooSmall { .. } => {
                "pay with the smallest cost class covering the request's price from the price list"
            }
            Self::ResponseExpired => {
                "apply the receipt; send the request again at the next index if you still need it"
            }
            Self::SecondPayload => {
                "apply the receipt that comes with this answer and send the request at the next index"
            }
            Self::DoubleSpend => "none: the note's secret is revealed and the note is slashed",
            Self::Conflict => "re-send the journalled request byte for byte, or exit",
            Self::StaleHour => {
                "prove with t the hour of the newest finalised block; apply the receipt"
            }
            Self::Policy(_) => "apply the receipt; the request will not be served as sent",
            Self::Upstream => "apply the receipt; retry as a new request if you still need it",
            Self::Interrupted => {
                "apply the receipt; the request may or may not have run upstream: send it again as a new request only if running it twice is harmless"
            }
        }
    }

    /// The `WWW-Authenticate` value, where the client can act by paying or proving again.
    pub fn challenge(&self) -> Option<String> {
        match self {
            Self::MissingCredential
            | Self::UnknownKey(_)
            | Self::UnknownRoot
            | Self::BadRequestSignature
            | Self::InvalidProof => Some(challenge(self.code())),
            _ => None,
        }
    }

    /// Seconds to wait before retrying, for 429 and 503.
    pub fn retry_after(&self) -> Option<u32> {
        match self {
            Self::InProgress => Some(1),
            Self::RateLimited | Self::Unavailable(_) => Some(5),
            _ => None,
        }
    }

    /// Whether the answer consumes the nullifier and carries a receipt (§6.4: every answer
    /// after the reservation does; a 409 for a second payload carries the stored one).
    pub fn carries_receipt(&self) -> bool {
        matches!(
            self,
            Self::SecondPayload
                | Self::ResponseExpired
                | Self::StaleHour
                | Self::Policy(_)
                | Self::Upstream
                | Self::Interrupted
        )
    }

    /// The RFC 9457 problem document.
    pub fn problem(&self) -> Problem {
        Problem {
            kind: format!("{PROBLEM_TYPE_PREFIX}{}", self.code()),
            title: self.to_string(),
            status: self.status(),
            detail: self.advice().to_owned(),
            well_known: matches!(self, Self::MissingCredential).then(|| WELL_KNOWN_PATH.to_owned()),
        }
    }

    /// The problem document's bytes.
    pub fn problem_body(&self) -> Vec<u8> {
        serde_json::to_vec(&self.problem()).expect("a problem document serialises")
    }
}

/// The challenge `NullGate realm="nullgate", well_known="/.well-known/nullgate", error=…`.
pub fn challenge(error: &str) -> String {
    format!(
        "{} realm=\"nullgate\", well_known=\"{WELL_KNOWN_PATH}\", error=\"{error}\"",
        crate::credential::SCHEME
    )
}

/// An RFC 9457 problem document as nullgate writes it.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Problem {
    /// `urn:nullgate:problem:<code>`.
    #[serde(rename = "type")]
    pub kind: String,
    /// What happened.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// What to do.
    pub detail: String,
    /// For 402: where the deployment is described.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub well_known: Option<String>,
}

impl Problem {
    /// The code of a nullgate problem type, if it is one.
    pub fn code(&self) -> Option<&str> {
        self.kind.strip_prefix(PROBLEM_TYPE_PREFIX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapping_of_the_acceptance_cases() {
        let missing = Rejection::MissingCredential;
        assert_eq!(missing.status(), 402);
        assert!(
            missing
                .challenge()
                .unwrap()
                .starts_with("NullGate realm=\"nullgate\"")
        );
        assert_eq!(
            missing.problem().well_known.as_deref(),
            Some("/.well-known/nullgate")
        );
        let malformed = Rejection::Malformed(WireError::Scheme);
        assert_eq!(malformed.status(), 400);
        assert!(malformed.challenge().is_none());
        assert_eq!(Rejection::InvalidProof.status(), 401);
        assert!(
            Rejection::InvalidProof
                .challenge()
                .unwrap()
                .contains("error=\"invalid-proof\"")
        );
        assert_eq!(Rejection::SecondPayload.status(), 409);
        assert!(Rejection::SecondPayload.carries_receipt());
        assert!(!Rejection::DoubleSpend.carries_receipt());
        assert_eq!(Rejection::StaleHour.status(), 403);
        let doc: Problem = serde_json::from_slice(&Rejection::InvalidProof.problem_body()).unwrap();
        assert_eq!(doc.code(), Some("invalid-proof"));
        assert_eq!(doc.status, 401);
    }
}

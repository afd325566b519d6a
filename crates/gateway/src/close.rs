//! Mutual close (PROTOCOL §8): `POST /nullgate/close` verifies an exit proof against public
//! inputs the gateway assembles itself, records `N_n → (x_e, y_e)` through the same unique
//! key as requests, and answers with the clearance (the clearance signer's EIP-712
//! signature that `closeWithClearance` accepts).
//!
//! The same share asked again gets the same clearance (the signature is deterministic).
//! An exit at an index a request already used is an understated exit: the two shares reveal
//! `k` and the note is slashed, as a double spend is.

use std::sync::Arc;

use axum::{
    body::Body,
    http::{HeaderValue, Request, StatusCode, header},
    response::{IntoResponse, Response},
};
use nullgate_chain::{BlockRef, NoteStatus};
use nullgate_protocol::{
    close::{Clearance, CloseRequest, MAX_CLOSE_BODY},
    rejection::Rejection,
};
use nullgate_zk::circuit::exit::ExitPublic;

use crate::{
    metrics::Outcome,
    pipeline::refusal,
    service::Shared,
    store::{Known, Share},
};

/// `POST /nullgate/close`.
pub(crate) async fn close(shared: Arc<Shared>, request: Request<Body>) -> Response {
    match clear(&shared, request).await {
        Ok(clearance) => {
            shared.metrics.clearance();
            let mut response = (StatusCode::OK, clearance.to_json()).into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            response
        }
        Err(rejection) => {
            if matches!(rejection, Rejection::Internal) {
                tracing::error!("mutual close: gateway failure");
            }
            refusal(&rejection, None)
        }
    }
}

async fn clear(shared: &Arc<Shared>, request: Request<Body>) -> Result<Clearance, Rejection> {
    let Some(signer) = &shared.clearance_signer else {
        return Err(Rejection::CannotClose(
            "this gateway holds no clearance key",
        ));
    };
    let body = axum::body::to_bytes(request.into_body(), MAX_CLOSE_BODY)
        .await
        .map_err(|_| Rejection::BodyTooLarge {
            limit: MAX_CLOSE_BODY,
        })?;
    let close = CloseRequest::parse(&body).map_err(Rejection::Malformed)?;
    let tree = shared.tree_view();
    if !tree.healthy {
        return Err(Rejection::Unavailable("the chain watcher is behind"));
    }
    if tree
        .params()
        .is_some_and(|p| p.clearance_signer != signer.address())
    {
        return Err(Rejection::CannotClose(
            "the vault's clearance signer is not this gateway's clearance key",
        ));
    }
    // Everything but the statement's own values comes from the gateway's view.
    let note_id = tree
        .note_of(&close.commitment)
        .ok_or(Rejection::CannotClose(
            "no deposited note has this commitment",
        ))?;
    let leaf = tree
        .leaves()
        .get(note_id as usize)
        .ok_or(Rejection::CannotClose(
            "no deposited note has this commitment",
        ))?;
    let key = tree
        .exit_key(close.key_number, note_id)
        .ok_or(Rejection::UnknownKey(close.key_number))?;
    if close.payout > leaf.deposit {
        return Err(Rejection::CannotClose("the payout exceeds the deposit"));
    }
    let exit_x = shared.deployment.exit_x();
    let public = ExitPublic {
        dom: shared.deployment.dom,
        note_id,
        commitment: close.commitment,
        deposit: leaf.deposit,
        public_key: key.0.affine(),
        max_class_cost: shared.prices.max_class(),
        payout: close.payout,
        recipient: close.recipient,
        nullifier: close.nullifier,
        exit_x,
        exit_y: close.exit_y,
    };
    let proof = close.proof.clone();
    shared
        .on_verify_slot(move |s| {
            s.verifier
                .verify_exit(&s.exit_verifier_key, &public, &proof)
        })
        .await??;
    // The proof holds: the note's status is worth a chain read now (closes are rare).
    let record = shared
        .slasher
        .vault
        .note(&close.commitment, BlockRef::Latest)
        .await
        .map_err(|_| Rejection::Unavailable("the chain cannot be read"))?;
    if record.status != NoteStatus::Active {
        return Err(Rejection::CannotClose("the note is no longer active"));
    }
    let share = Share {
        x: exit_x,
        y: close.exit_y,
    };
    let before = shared
        .store
        .record_exit(&close.nullifier, &share)
        .await
        .map_err(|_| Rejection::Internal)?;
    match before {
        None => {}
        Some(Known::Exit { share: recorded }) if recorded == share => {}
        Some(Known::Exit { .. }) => {
            return Err(Rejection::CannotClose(
                "another exit share is recorded at this index",
            ));
        }
        Some(Known::Reserved { share: used, .. } | Known::Final { share: used, .. }) => {
            // An understated exit: a request already used N_n.
            shared.metrics.count(Outcome::DoubleSpend);
            shared
                .slasher
                .caught(used, share, &tree, &shared.store, &shared.metrics)
                .await
                .map_err(|_| Rejection::Internal)?;
            return Err(Rejection::DoubleSpend);
        }
        Some(Known::Blocked) => return Err(Rejection::DoubleSpend),
    }
    let signature = shared
        .slasher
        .vault
        .clearance(signer, &close.nullifier)
        .await
        .map_err(|_| Rejection::Unavailable("the chain cannot be read"))?;
    Ok(Clearance(signature))
}

//! Leaving the vault and coming back (PROTOCOL §8, §6.7, §9): the exit statement a note's
//! owner proves, the clearance a mutual close asks the gateway for, and the walk over the
//! gateway's receipts that rebuilds a note's state from its secret.
//!
//! An exit goes through three steps, each its own function, so that the caller writes the
//! note's status between them: [`plan_exit`] picks the declared request count `n` from the
//! journal and the payout `P`; [`ExitStatement::prove`] proves it; the caller marks the note
//! Exiting in the wallet *before* the statement leaves the device (chain or gateway), since
//! from then on the note must never take a new request. [`random_delay`] is the pause that
//! separates the last request from the exit.
//!
//! Nothing here needs the gateway except [`ask_clearance`] and [`restore_note`]; an exit
//! is the user's alone.

use std::time::Duration;

use nullgate_chain::{ExitArgs, NoteRecord, NoteStatus as ChainStatus};
use nullgate_net::{HttpRequest, IsolationId, Transport};
use nullgate_protocol::{
    close::{CLOSE_PATH, Clearance, CloseRequest},
    deployment::Deployment,
    receipt::Receipt,
    rejection::Problem,
    well_known::RECEIPT_PATH,
};
use nullgate_zk::{
    Fr,
    circuit::exit::{ExitCircuit, ExitPublic, ExitWitness},
    curve::Point,
    derive,
    field::fr_to_bytes,
    groth16::{Proof, ProverKey},
    note::Note,
    rln,
    schnorr::PublicKey,
    state::{self, StateValue},
};
use serde::Deserialize;

use crate::{
    journal::JournalEntry,
    wallet::{NoteEntry, NoteState, NoteStatus},
};

/// Why a note cannot leave (or be restored) as asked. Nothing was sent when one is returned
/// before the statement left the device.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LeaveError {
    /// Only an Active note (or an Exiting one whose exit is re-sent) can exit or close.
    #[error("note {slot} is {status:?}, and only an Active note can exit or close")]
    NotActive {
        /// The wallet slot.
        slot: usize,
        /// Its status.
        status: NoteStatus,
    },
    /// The journal holds a sent request without receipt: exiting now declares it paid at
    /// `C_max` (`n = m + 1`), which the user must accept explicitly.
    #[error(
        "note {slot} has a request at index {index} that was sent but never receipted; an exit \
         now pays up to {max_class_cost} credits for it. Let the proxy re-send it first (it \
         does on every start), or accept the cost with --give-up-on-receipt"
    )]
    Unreceipted {
        /// The wallet slot.
        slot: usize,
        /// The journalled index.
        index: u32,
        /// `C_max`, what the exit reserves for it.
        max_class_cost: u64,
    },
    /// The payout asked for is more than the statement allows.
    #[error(
        "a payout of {asked} credits is more than this exit allows ({most}: the balance less what the declared requests may cost, at most the deposit)"
    )]
    PayoutTooLarge {
        /// `P` asked for.
        asked: u64,
        /// The largest `P` allowed.
        most: u64,
    },
    /// The note's deposit is not final on chain yet.
    #[error("the note's deposit is not final on chain yet; wait for it to finalise")]
    NotFinal,
    /// The state names a state key the chain does not list.
    #[error("the note's state is signed under state key {0}, which the vault does not list")]
    UnknownKey(u32),
    /// Proving the exit failed.
    #[error("proving the exit: {0}")]
    Prover(String),
    /// The gateway refused, or its answer was not what the protocol says.
    #[error("the gateway: {0}")]
    Gateway(String),
    /// A receipt found while restoring does not check out against the state walked so far.
    #[error("the receipt at index {index} does not check out ({detail}); the restore stops there")]
    BadReceipt {
        /// The index whose receipt failed.
        index: u32,
        /// Why.
        detail: String,
    },
    /// The gateway still runs a request at this index: restore again once it finished.
    #[error(
        "the gateway is still running the request at index {0} (its lease has not expired); \
         run the restore again in a few minutes"
    )]
    StillRunning(u32),
    /// No note with this secret was ever deposited in the vault.
    #[error("no note with this secret was deposited in the vault")]
    NoDeposit,
    /// The note's exit deadline (`3600·expiry + G_exp`, PROTOCOL §8) has passed, or leaves
    /// no time for the exit to reach the chain: the contract refuses exits and closes from
    /// then on, and `claimExpired` credits the deposit to the treasury.
    #[error(
        "note {slot} can no longer exit or close: its deadline (expiry plus the vault's grace) \
         is {deadline}, {left}; from then on the contract refuses both, and its deposit goes to \
         the treasury"
    )]
    PastDeadline {
        /// The wallet slot.
        slot: usize,
        /// The deadline, RFC 3339.
        deadline: String,
        /// How it stands: "passed" or how little time is left.
        left: String,
    },
}

/// The least time an exit needs before its deadline: to prove it and have it mined.
pub const EXIT_MARGIN: Duration = Duration::from_secs(600);

/// The Unix second from which the vault refuses an exit or close of a note with `expiry`
/// (hours): `3600·expiry + G_exp` (PROTOCOL §8).
pub fn exit_deadline(expiry: u32, expiry_grace: u64) -> u64 {
    (u64::from(expiry) * 3600).saturating_add(expiry_grace)
}

/// Time left for note `slot` to exit at chain time `now` (Unix seconds), less
/// [`EXIT_MARGIN`]; refused with [`LeaveError::PastDeadline`] when none is. A note whose
/// expiry is unknown (not final) is [`LeaveError::NotFinal`].
pub fn time_to_exit(
    slot: usize,
    note: &NoteEntry,
    expiry_grace: u64,
    now: u64,
) -> Result<Duration, LeaveError> {
    let expiry = note.expiry.ok_or(LeaveError::NotFinal)?;
    let deadline = exit_deadline(expiry, expiry_grace);
    let left = deadline.saturating_sub(now);
    if left <= EXIT_MARGIN.as_secs() {
        let time = std::time::UNIX_EPOCH + Duration::from_secs(deadline);
        return Err(LeaveError::PastDeadline {
            slot,
            deadline: humantime::format_rfc3339_seconds(time).to_string(),
            left: if left == 0 {
                "passed".into()
            } else {
                format!("only {left} s away, too little to prove and mine an exit")
            },
        });
    }
    Ok(Duration::from_secs(left) - EXIT_MARGIN)
}

/// What an exit declares (PROTOCOL §8): the request count `n` and the payout `P`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExitPlan {
    /// `n`: `m`, or `m + 1` when a sent request was never receipted.
    pub count: u32,
    /// `P`, credit units.
    pub payout: u64,
    /// The largest payout this count allows, `min(B − (n − m)·C_max, D)`.
    pub most: u64,
}

/// Picks `n` and `P` for note `slot` (PROTOCOL §8), Active or already marked Exiting. `journalled` is the note's journal
/// entry, if any: a sent one at the note's index makes `n = m + 1`, and is accepted only with
/// `give_up_on_receipt`. `payout` defaults to the most allowed.
pub fn plan_exit(
    slot: usize,
    note: &NoteEntry,
    journalled: Option<&JournalEntry>,
    max_class_cost: u64,
    payout: Option<u64>,
    give_up_on_receipt: bool,
) -> Result<ExitPlan, LeaveError> {
    // An Exiting note may be planned again: after a crash between marking it Exiting and
    // the chain taking the exit, the same journal gives the same `n`, and so the same share.
    if !matches!(note.status, NoteStatus::Active | NoteStatus::Exiting) {
        return Err(LeaveError::NotActive {
            slot,
            status: note.status,
        });
    }
    let m = note.state.index;
    let unreceipted = journalled.is_some_and(|entry| entry.sent && entry.index == m);
    if unreceipted && !give_up_on_receipt {
        return Err(LeaveError::Unreceipted {
            slot,
            index: m,
            max_class_cost,
        });
    }
    let count = m + u32::from(unreceipted);
    let owed = if unreceipted { max_class_cost } else { 0 };
    let most = note.state.balance.saturating_sub(owed).min(note.deposit);
    let payout = payout.unwrap_or(most);
    if payout > most {
        return Err(LeaveError::PayoutTooLarge {
            asked: payout,
            most,
        });
    }
    Ok(ExitPlan {
        count,
        payout,
        most,
    })
}

/// A proven exit statement: what `initiateExit`, `closeWithClearance` and the gateway's
/// `POST /nullgate/close` take.
#[derive(Clone, Debug)]
pub struct ExitStatement {
    /// The public inputs.
    pub public: ExitPublic,
    /// The proof.
    pub proof: Proof,
    /// The number of the state key `PK_i` the statement names.
    pub key_number: u32,
}

impl ExitStatement {
    /// Proves `plan` for `note`, paying `recipient`. `state_key` is the key that signed the
    /// note's state (any registered key for a genesis state, which is unsigned).
    pub fn prove(
        exit_key: &ProverKey,
        deployment: &Deployment,
        state_key: (u32, &PublicKey),
        note: &NoteEntry,
        plan: &ExitPlan,
        recipient: [u8; 20],
    ) -> Result<Self, LeaveError> {
        let circuit_note = chain_note(note).ok_or(LeaveError::NotFinal)?;
        let witness = ExitWitness {
            note: circuit_note,
            state: StateValue::new(note.state.balance, note.state.index, circuit_note.note_id)
                .map_err(|e| LeaveError::Prover(e.to_string()))?,
            blinding: note.state.blinding,
            signature: note.state.signature,
            request_count: plan.count,
        };
        let max_class_cost = deployment.cost_classes.last().copied().unwrap_or(0);
        let (circuit, public) = ExitCircuit::new(
            deployment.dom,
            state_key.1,
            max_class_cost,
            plan.payout,
            recipient,
            &witness,
        )
        .map_err(|e| LeaveError::Prover(e.to_string()))?;
        let proof = exit_key
            .prove(circuit, &mut rand::rngs::OsRng)
            .map_err(|e| LeaveError::Prover(e.to_string()))?;
        Ok(Self {
            public,
            proof,
            key_number: state_key.0,
        })
    }

    /// The arguments of `initiateExit` (and, with a clearance, `closeWithClearance`).
    pub fn chain_args(&self) -> ExitArgs {
        ExitArgs::new(&self.public, self.key_number, &self.proof)
    }

    /// The body of a mutual close request.
    pub fn close_request(&self) -> CloseRequest {
        CloseRequest {
            commitment: self.public.commitment,
            key_number: self.key_number,
            payout: self.public.payout,
            recipient: self.public.recipient,
            nullifier: self.public.nullifier,
            exit_y: self.public.exit_y,
            proof: self.proof.clone(),
        }
    }
}

/// Which state key a note's exit names: the one that signed its state, or for a genesis
/// state the vault's current key.
pub fn state_key_number(note: &NoteEntry, current: u32) -> u32 {
    if note.state.signature.is_some() {
        note.state.key_number
    } else {
        current
    }
}

/// The note as the circuits take it; `None` until its deposit is final.
fn chain_note(note: &NoteEntry) -> Option<Note> {
    Some(Note {
        secret: note.secret,
        note_id: note.note_id?,
        deposit: note.deposit,
        expiry: note.expiry?,
    })
}

/// A uniformly random pause in `[0, most]`, from the OS generator.
pub fn random_delay(most: Duration) -> Duration {
    use rand::Rng;
    let millis = u64::try_from(most.as_millis()).unwrap_or(u64::MAX);
    Duration::from_millis(rand::rngs::OsRng.gen_range(0..=millis))
}

/// Asks the gateway for the clearance of a mutual close (PROTOCOL §8), over a fresh route.
/// The same statement asked again gets the same clearance.
pub async fn ask_clearance<T: Transport>(
    transport: &T,
    authority: &str,
    statement: &ExitStatement,
) -> Result<Clearance, LeaveError> {
    let mut request = HttpRequest::new(http::Method::POST, "https", authority, CLOSE_PATH);
    request.headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    request.body = statement.close_request().to_json().into();
    let response = transport
        .send(request, IsolationId::fresh())
        .await
        .map_err(|e| LeaveError::Gateway(e.to_string()))?;
    if response.status != http::StatusCode::OK {
        let detail = serde_json::from_slice::<Problem>(&response.body)
            .map(|p| p.title)
            .unwrap_or_else(|_| "no problem document".into());
        return Err(LeaveError::Gateway(format!(
            "the close was refused ({}): {detail}",
            response.status
        )));
    }
    Clearance::parse(&response.body)
        .map_err(|e| LeaveError::Gateway(format!("the clearance is malformed: {e}")))
}

/// What `GET /nullgate/receipt/{N}` answers.
#[derive(Deserialize)]
#[serde(tag = "status", rename_all = "lowercase")]
enum Lookup {
    Unknown,
    Reserved,
    Receipt { receipt: String },
}

/// Rebuilds one note from its secret (PROTOCOL §6.7, §9): its deposit as the chain records
/// it (`record`, at a finalised block), then every receipt the gateway holds for it,
/// starting from `from` (a backed-up state; the genesis state when `None`). Each look-up
/// goes over a fresh route after a pause drawn by [`random_delay`] from `[0, pause]`, so the
/// look-ups do not link the note's history; each receipt is checked against the state
/// walked so far before the walk goes on. `keys` are the vault's registered state keys.
///
/// Returns the note with the state after its last receipt. Its status follows the chain:
/// an Active deposit is Active, one whose exit has started is Exiting, and so on.
#[allow(clippy::too_many_arguments)]
pub async fn restore_note<T: Transport>(
    transport: &T,
    authority: &str,
    deployment: &Deployment,
    keys: &[(u32, PublicKey)],
    secret: Fr,
    record: &NoteRecord,
    from: Option<NoteState>,
    pause: Duration,
) -> Result<NoteEntry, LeaveError> {
    let status = match record.status {
        ChainStatus::None => return Err(LeaveError::NoDeposit),
        ChainStatus::Active => NoteStatus::Active,
        ChainStatus::Exiting => NoteStatus::Exiting,
        ChainStatus::Closed => NoteStatus::Closed,
        ChainStatus::Slashed => NoteStatus::Slashed,
        ChainStatus::Expired => NoteStatus::Expired,
    };
    let mut entry = NoteEntry {
        secret,
        note_id: Some(record.note_id),
        deposit: record.amount,
        expiry: Some(record.expiry),
        status,
        state: from.unwrap_or(NoteState::genesis(record.amount)),
        // Its deposit is long past: a restored note may be used at once.
        first_use: None,
    };
    let max_class_cost = deployment.cost_classes.last().copied().unwrap_or(0);
    loop {
        let index = entry.state.index;
        tokio::time::sleep(random_delay(pause)).await;
        let nullifier = rln::nullifier(&rln::slope(&deployment.dom, &secret, index));
        let path = format!("{RECEIPT_PATH}/{}", hex::encode(fr_to_bytes(&nullifier)));
        let request = HttpRequest::new(http::Method::GET, "https", authority, &path);
        let response = transport
            .send(request, IsolationId::fresh())
            .await
            .map_err(|e| LeaveError::Gateway(e.to_string()))?;
        if response.status != http::StatusCode::OK {
            return Err(LeaveError::Gateway(format!(
                "the receipt look-up answered {}",
                response.status
            )));
        }
        let lookup: Lookup = serde_json::from_slice(&response.body)
            .map_err(|_| LeaveError::Gateway("the receipt look-up is not JSON".into()))?;
        let encoded = match lookup {
            Lookup::Unknown => return Ok(entry),
            Lookup::Reserved => return Err(LeaveError::StillRunning(index)),
            Lookup::Receipt { receipt } => receipt,
        };
        let bad = |detail: String| LeaveError::BadReceipt { index, detail };
        let receipt = Receipt::from_header(encoded.as_bytes()).map_err(|e| bad(e.to_string()))?;
        let next = next_state(&entry, deployment, keys, max_class_cost, &receipt).map_err(bad)?;
        entry.state = next;
    }
}

/// The state after `receipt` settled the request at `entry`'s index: what the request's
/// `A_pub` was is computed from the state (the rerandomiser is derived from `k` and `m`),
/// so the receipt is checked exactly as a live one is, with `C_max` as the cap.
fn next_state(
    entry: &NoteEntry,
    deployment: &Deployment,
    keys: &[(u32, PublicKey)],
    max_class_cost: u64,
    receipt: &Receipt,
) -> Result<NoteState, String> {
    let note_id = entry.note_id.ok_or("the note has no note_id")?;
    let current = &entry.state;
    let value =
        StateValue::new(current.balance, current.index, note_id).map_err(|e| e.to_string())?;
    let epsilon = derive::rerandomiser(&entry.secret, current.index);
    let published = state::rerandomise(&state::commit(&value, &current.blinding), &epsilon);
    let published =
        Point::from_coordinates(published.x, published.y, "A_pub").map_err(|e| e.to_string())?;
    let nullifier = rln::nullifier(&rln::slope(&deployment.dom, &entry.secret, current.index));
    receipt
        .check(
            &deployment.dom,
            &nullifier,
            &published,
            max_class_cost,
            keys,
        )
        .map_err(|e| e.to_string())?;
    Ok(NoteState {
        balance: current
            .balance
            .checked_sub(receipt.charge)
            .ok_or("the charge is more than the balance")?,
        index: current.index + 1,
        blinding: current.blinding + epsilon,
        signature: Some(receipt.signature),
        key_number: receipt.key_number,
    })
}

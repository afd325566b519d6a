//! The vault's events, decoded from logs.

use alloy::primitives::U256;
use alloy::sol_types::SolEventInterface;

use crate::ChainError;
use crate::bindings::NoteVault::NoteVaultEvents;
use crate::ledger::BlockLog;

/// Every event the vault emits (PROTOCOL §2, §3, §8), as the ABI defines them.
pub type VaultEvent = NoteVaultEvents;

/// An event with the block it was emitted in.
#[derive(Clone, Debug)]
pub struct LoggedEvent {
    /// The block.
    pub block: u64,
    /// The event.
    pub event: VaultEvent,
}

impl LoggedEvent {
    /// Decodes a vault log. Logs of other contracts never reach here (the ledgers filter by
    /// address), so an undecodable log is an error.
    pub fn decode(log: &BlockLog) -> Result<Self, ChainError> {
        let event = NoteVaultEvents::decode_log(&log.log).map_err(|error| ChainError::Decode {
            what: "vault log",
            detail: error.to_string(),
        })?;
        Ok(Self {
            block: log.block,
            event: event.data,
        })
    }

    /// The deposit this event records, if it is a `NoteDeposited`.
    pub fn deposit(&self) -> Option<Deposit> {
        match &self.event {
            NoteVaultEvents::NoteDeposited(event) => Some(Deposit {
                note_id: event.noteId,
                commitment: event.commitment,
                amount: event.amount,
                expiry: event.expiry,
            }),
            _ => None,
        }
    }
}

/// One `NoteDeposited` event: everything a tree leaf and the deposits digest are made of.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Deposit {
    /// The note's position.
    pub note_id: u32,
    /// The commitment `C`.
    pub commitment: U256,
    /// The deposit `D`, credit units.
    pub amount: u64,
    /// The expiry, hours since the Unix epoch.
    pub expiry: u32,
}

/// The notes a spend hides among (PROTOCOL §9): deposited, still Active (no exit begun, not
/// closed, slashed or claimed), and unexpired. Built from the vault's events in order.
#[derive(Clone, Debug, Default)]
pub struct AnonymitySet {
    /// `note_id → expiry` (hours) of every note still Active.
    active: std::collections::BTreeMap<u32, u32>,
}

impl AnonymitySet {
    /// The set of the events `events`, in the order they were emitted.
    pub fn of(events: &[LoggedEvent]) -> Self {
        let mut set = Self::default();
        for event in events {
            set.observe(event);
        }
        set
    }

    /// Takes one more event into account.
    pub fn observe(&mut self, event: &LoggedEvent) {
        match &event.event {
            NoteVaultEvents::NoteDeposited(e) => {
                self.active.insert(e.noteId, e.expiry);
            }
            NoteVaultEvents::ExitInitiated(e) => {
                self.active.remove(&e.noteId);
            }
            NoteVaultEvents::NoteClosed(e) => {
                self.active.remove(&e.noteId);
            }
            NoteVaultEvents::NoteSlashed(e) => {
                self.active.remove(&e.noteId);
            }
            NoteVaultEvents::NoteExpired(e) => {
                self.active.remove(&e.noteId);
            }
            _ => {}
        }
    }

    /// How many Active notes are unexpired at `hour` (hours since the Unix epoch).
    pub fn size_at(&self, hour: u32) -> usize {
        self.active
            .values()
            .filter(|&&expiry| expiry > hour)
            .count()
    }
}

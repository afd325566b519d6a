//! The JSON layout of `wallet.json` (described in the module documentation of
//! [`crate::wallet`]), and its conversion to and from the typed notes.

use nullgate_zk::{
    curve::{scalar_from_bytes, scalar_to_bytes},
    field::{fr_from_bytes, fr_to_bytes},
    schnorr::Signature,
};
use serde::{Deserialize, Serialize};

use super::{NoteEntry, NoteState, NoteStatus, VaultId};

/// The format version this build reads and writes.
pub(crate) const VERSION: u32 = 1;

/// Why a wallet file could not be used.
pub(crate) enum Problem {
    /// Not a wallet file of any version: fall back to the backup.
    Corrupt(String),
    /// A wallet file of a version we do not know: do not fall back, the backup is as new.
    Version(u32),
}

/// Encodes a wallet as pretty JSON.
pub(crate) fn encode(vault: &VaultId, notes: &[NoteEntry]) -> Vec<u8> {
    let file = WalletFile {
        version: VERSION,
        vault: VaultFile {
            chain_id: vault.chain_id,
            address: format!("0x{}", hex::encode(vault.vault)),
        },
        notes: notes.iter().map(NoteFile::from_entry).collect(),
    };
    serde_json::to_vec_pretty(&file).expect("a wallet always serialises")
}

/// Decodes a wallet file; [`super::validate`] is left to the caller.
pub(crate) fn decode(bytes: &[u8]) -> Result<(VaultId, Vec<NoteEntry>), Problem> {
    // The version is read first, so that a newer file is not reported as corrupt.
    let versioned: Versioned = serde_json::from_slice(bytes).map_err(json_problem)?;
    if versioned.version != VERSION {
        return Err(Problem::Version(versioned.version));
    }
    let file: WalletFile = serde_json::from_slice(bytes).map_err(json_problem)?;
    let address = file
        .vault
        .address
        .strip_prefix("0x")
        .unwrap_or(&file.vault.address);
    let vault = VaultId {
        chain_id: file.vault.chain_id,
        vault: hex::FromHex::from_hex(address)
            .map_err(|_| Problem::Corrupt("vault address: not 20 bytes of hex".to_owned()))?,
    };
    let notes = file
        .notes
        .into_iter()
        .enumerate()
        .map(|(index, note)| {
            note.into_entry()
                .map_err(|reason| Problem::Corrupt(format!("note {index}: {reason}")))
        })
        .collect::<Result<_, _>>()?;
    Ok((vault, notes))
}

#[derive(Deserialize)]
struct Versioned {
    version: u32,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WalletFile {
    version: u32,
    vault: VaultFile,
    notes: Vec<NoteFile>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct VaultFile {
    chain_id: u64,
    address: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct NoteFile {
    secret: String,
    note_id: Option<u32>,
    deposit: u64,
    expiry: Option<u32>,
    status: NoteStatus,
    state: StateFile,
    /// Absent in wallets written before the first-use delay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    first_use: Option<u64>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StateFile {
    balance: u64,
    index: u32,
    blinding: String,
    signature: Option<String>,
    key_number: u32,
}

impl NoteFile {
    fn from_entry(entry: &NoteEntry) -> Self {
        let state = &entry.state;
        Self {
            secret: hex::encode(fr_to_bytes(&entry.secret)),
            note_id: entry.note_id,
            deposit: entry.deposit,
            expiry: entry.expiry,
            status: entry.status,
            state: StateFile {
                balance: state.balance,
                index: state.index,
                blinding: hex::encode(scalar_to_bytes(&state.blinding)),
                signature: state
                    .signature
                    .map(|signature| hex::encode(signature.to_bytes())),
                key_number: state.key_number,
            },
            first_use: entry.first_use,
        }
    }

    fn into_entry(self) -> Result<NoteEntry, String> {
        let secret = fr_from_bytes(&unhex(&self.secret, "secret")?, "secret")
            .map_err(|error| error.to_string())?;
        let blinding = scalar_from_bytes(&unhex(&self.state.blinding, "blinding")?, "blinding")
            .map_err(|error| error.to_string())?;
        let signature = match &self.state.signature {
            None => None,
            Some(text) => Some(
                Signature::from_bytes(&unhex(text, "signature")?)
                    .map_err(|error| format!("signature: {error}"))?,
            ),
        };
        Ok(NoteEntry {
            secret,
            note_id: self.note_id,
            deposit: self.deposit,
            expiry: self.expiry,
            status: self.status,
            state: NoteState {
                balance: self.state.balance,
                index: self.state.index,
                blinding,
                signature,
                key_number: self.state.key_number,
            },
            first_use: self.first_use,
        })
    }
}

/// Where the JSON went wrong, without serde's message: it can quote the file's contents, and
/// those include secrets.
fn json_problem(error: serde_json::Error) -> Problem {
    Problem::Corrupt(json_error_text(&error))
}

/// What kind of JSON error this is and where, never what the file holds.
pub(crate) fn json_error_text(error: &serde_json::Error) -> String {
    let kind = match error.classify() {
        serde_json::error::Category::Io => "unreadable",
        serde_json::error::Category::Syntax => "not JSON",
        serde_json::error::Category::Data => "not a wallet (wrong or missing field)",
        serde_json::error::Category::Eof => "truncated",
    };
    format!("{kind} at line {} column {}", error.line(), error.column())
}

fn unhex(text: &str, what: &str) -> Result<Vec<u8>, String> {
    hex::decode(text).map_err(|_| format!("{what}: not hex"))
}

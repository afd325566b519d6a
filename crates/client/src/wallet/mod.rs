//! The wallet: a directory holding the notes of one vault and their private states
//! (PROTOCOL §3, §4, §9).
//!
//! ```text
//! <dir>/            mode 0700 when created here
//!   lock            flock held by the open `Wallet`; holds its pid
//!   wallet.json     the notes (mode 0600, like every file here)
//!   wallet.json.bak the same bytes, written after wallet.json on every change
//!   journal/        the per-note request journal, see [`crate::journal`]
//! ```
//!
//! `wallet.json` (format version 1):
//!
//! ```json
//! {
//!   "version": 1,
//!   "vault": { "chain_id": 31337, "address": "0x5fbdb2315678afecb367f032d93f642f64180aa3" },
//!   "notes": [{
//!     "secret": "<32 bytes hex>", "note_id": 7, "deposit": 1000, "expiry": 490000,
//!     "status": "active",
//!     "state": { "balance": 940, "index": 3, "blinding": "<32 bytes hex>",
//!                "signature": "<96 bytes hex>", "key_number": 1 }
//!   }]
//! }
//! ```
//!
//! Field elements and scalars are 32 bytes big-endian and signatures `R.x ‖ R.y ‖ s`
//! (PROTOCOL §11), in lower-case hex; `note_id` and `expiry` are `null` until the deposit
//! is final, `signature` is `null` for the genesis state. Unknown fields are refused.
//!
//! **One process at a time.** A [`Wallet`] holds an exclusive `flock` on `lock` for as long
//! as it lives; a second [`Wallet::open`] or [`Wallet::create`] of the same directory, from
//! this process or another, fails with [`WalletError::InUse`]. The lock also covers the
//! journal: open the [`Journal`](crate::journal::Journal) at [`Wallet::journal_dir`] only
//! while holding the wallet.
//!
//! **Every change is durable before it returns.** Each mutating method writes the whole file
//! to a temporary in the same directory, fsyncs it, renames it over `wallet.json` and fsyncs
//! the directory, so a crash leaves the old or the new wallet, never a mix; then it writes the
//! backup the same way. The in-memory notes change only once `wallet.json` is saved. Changes
//! are rare (a receipt, a deposit, an exit), so the four fsyncs they cost are off the
//! request's critical path, which touches only the journal.
//!
//! **Backup.** [`Wallet::open`] reads `wallet.json`, and only if it is missing or corrupt the
//! backup, returning an [`OpenWarning`] that says so; the caller must then walk the notes'
//! receipts before any request (PROTOCOL §9).
//!
//! **Encrypted at rest** when created with [`Wallet::create_sealed`] (or opened with a
//! passphrase, which seals a plaintext wallet from then on): both `wallet.json` and its backup
//! are then sealed envelopes, see [`sealed`]. The journal stays plaintext: it holds requests
//! already sealed for the gateway and their public credentials, no note secret.
//!
//! **Secrets stay out of logs.** `Debug` of [`NoteEntry`] and [`NoteState`] omits the secret
//! `k`, the blinding `r` and the signature (which the gateway has seen, and so would link a
//! log line to a request); error messages never quote file contents.

mod error;
mod file;
pub(crate) mod fs;
mod sealed;

use std::{
    collections::HashSet,
    io,
    path::{Path, PathBuf},
};

use nullgate_zk::{Fr, constants::TREE_DEPTH, curve::Scalar, field::fr_to_bytes, schnorr};
use serde::{Deserialize, Serialize};

pub use error::{OpenWarning, WalletError};
pub use sealed::Passphrase;
use sealed::{SealingKey, Unsealed};

/// The vault a wallet's notes were deposited into: `chain_id` and the contract address
/// (PROTOCOL §2). A note secret is never reused across vaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct VaultId {
    /// The chain id.
    pub chain_id: u64,
    /// The NoteVault contract's address.
    pub vault: [u8; 20],
}

/// Where a note is in its life (PROTOCOL §3, §8).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NoteStatus {
    /// Deposited (or about to be), not yet final on chain, or waiting out the random delay
    /// before its first use; never used for requests.
    Pending,
    /// Usable for requests.
    Active,
    /// An exit share has left the device: only journal re-sends are allowed from now on.
    Exiting,
    /// Paid out by an exit or a mutual close.
    Closed,
    /// Slashed: its deposit went to the treasury.
    Slashed,
    /// Claimed by the treasury after expiry and the grace period.
    Expired,
}

/// A note's private state `(B, m, r)` and the gateway's signature on its commitment
/// (PROTOCOL §4).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct NoteState {
    /// The balance `B`, in credit units.
    pub balance: u64,
    /// The next request index `m`.
    pub index: u32,
    /// The blinding `r`.
    pub blinding: Scalar,
    /// The gateway's signature `σ` on `A`; `None` for the genesis state.
    pub signature: Option<schnorr::Signature>,
    /// The absolute number `i` of the state key `PK_i` that signed (unused for genesis).
    pub key_number: u32,
}

impl NoteState {
    /// The genesis state `B = D, m = 0, r = 0`, which needs no signature.
    pub fn genesis(deposit: u64) -> Self {
        Self {
            balance: deposit,
            index: 0,
            blinding: Scalar::from(0u64),
            signature: None,
            key_number: 0,
        }
    }
}

impl core::fmt::Debug for NoteState {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // The blinding opens the commitment and the signature is what the gateway issued:
        // either would link this line to a request.
        f.debug_struct("NoteState")
            .field("balance", &self.balance)
            .field("index", &self.index)
            .field("signed", &self.signature.is_some())
            .field("key_number", &self.key_number)
            .finish_non_exhaustive()
    }
}

/// One note of the wallet, as its owner knows it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct NoteEntry {
    /// The secret `k` (non-zero, unique in the wallet; never shown).
    pub secret: Fr,
    /// The position in the note tree; `None` until the deposit is final.
    pub note_id: Option<u32>,
    /// The deposit `D`, in credit units.
    pub deposit: u64,
    /// The expiry, in hours since the Unix epoch; `None` until the deposit is final.
    pub expiry: Option<u32>,
    /// Where the note is in its life.
    pub status: NoteStatus,
    /// The current private state.
    pub state: NoteState,
    /// Unix seconds before which the note is not used: a random delay after its deposit,
    /// so that deposit time does not point at first use (PROTOCOL §3). `None`: no delay
    /// (a restored note, a wallet written before the rule).
    pub first_use: Option<u64>,
}

impl NoteEntry {
    /// A note about to be deposited: [`NoteStatus::Pending`], no `note_id` or expiry yet,
    /// the genesis state.
    pub fn new(secret: Fr, deposit: u64) -> Self {
        Self {
            secret,
            note_id: None,
            deposit,
            expiry: None,
            status: NoteStatus::Pending,
            state: NoteState::genesis(deposit),
            first_use: None,
        }
    }
}

impl core::fmt::Debug for NoteEntry {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // The secret is never printed.
        f.debug_struct("NoteEntry")
            .field("note_id", &self.note_id)
            .field("deposit", &self.deposit)
            .field("expiry", &self.expiry)
            .field("status", &self.status)
            .field("state", &self.state)
            .field("first_use", &self.first_use)
            .finish_non_exhaustive()
    }
}

/// An open, locked wallet. Dropping it releases the lock.
pub struct Wallet {
    dir: PathBuf,
    vault: VaultId,
    notes: Vec<NoteEntry>,
    /// Set for an encrypted wallet: every write is sealed under it.
    sealing: Option<SealingKey>,
    // Held for the flock; closing it releases the lock.
    _lock: std::fs::File,
}

/// What [`Wallet::open`] returns: the wallet, and a warning to act on if it had to use the
/// backup.
#[derive(Debug)]
#[must_use = "a warning says the wallet must walk its receipts before any request"]
pub struct Opened {
    /// The open wallet.
    pub wallet: Wallet,
    /// Set when `wallet.json` was missing or corrupt and the backup was used.
    pub warning: Option<OpenWarning>,
}

const MAIN: &str = "wallet.json";
const MAIN_TEMPORARY: &str = "wallet.json.tmp";
const BACKUP: &str = "wallet.json.bak";
const BACKUP_TEMPORARY: &str = "wallet.json.bak.tmp";
const CORRUPT: &str = "wallet.json.corrupt";
const LOCK: &str = "lock";
const JOURNAL: &str = "journal";

impl Wallet {
    /// Creates an empty wallet for `vault` in `dir` (created with mode 0700 if missing) and
    /// locks it. Fails with [`WalletError::AlreadyExists`] if `dir` already holds a wallet.
    pub fn create(dir: impl AsRef<Path>, vault: VaultId) -> Result<Self, WalletError> {
        Self::create_with(dir.as_ref(), vault, None)
    }

    /// [`Wallet::create`], encrypted at rest under `passphrase` (argon2id, then
    /// XChaCha20-Poly1305). The key derivation takes about half a second.
    pub fn create_sealed(
        dir: impl AsRef<Path>,
        vault: VaultId,
        passphrase: &Passphrase,
    ) -> Result<Self, WalletError> {
        if passphrase.is_empty() {
            return Err(WalletError::EmptyPassphrase);
        }
        let key = SealingKey::new(passphrase).map_err(WalletError::KeyDerivation)?;
        Self::create_with(dir.as_ref(), vault, Some(key))
    }

    fn create_with(
        dir: &Path,
        vault: VaultId,
        sealing: Option<SealingKey>,
    ) -> Result<Self, WalletError> {
        let dir = dir.to_path_buf();
        fs::create_private_dir(&dir).map_err(io_error("create the wallet directory", &dir))?;
        let lock = lock(&dir)?;
        // Checked under the lock, so that two creates cannot both succeed.
        if dir.join(MAIN).exists() || dir.join(BACKUP).exists() {
            return Err(WalletError::AlreadyExists { dir });
        }
        let wallet = Self {
            dir,
            vault,
            notes: Vec::new(),
            sealing,
            _lock: lock,
        };
        wallet.save(&wallet.notes)?;
        Ok(wallet)
    }

    /// Opens and locks the wallet in `dir`, reading `wallet.json`, or its backup if that is
    /// missing or corrupt (then [`Opened::warning`] says so, the backup is written back as
    /// `wallet.json`, and a corrupt `wallet.json` is kept as `wallet.json.corrupt`).
    ///
    /// An encrypted wallet needs [`Wallet::open_sealed`].
    pub fn open(dir: impl AsRef<Path>) -> Result<Opened, WalletError> {
        Self::open_sealed(dir, None)
    }

    /// [`Wallet::open`] with the passphrase of an encrypted wallet. A plaintext wallet opened
    /// with a passphrase is sealed under it at once (`wallet.json`, then the backup).
    /// A passphrase that opens neither file gives [`WalletError::WrongPassphrase`] and
    /// changes nothing.
    pub fn open_sealed(
        dir: impl AsRef<Path>,
        passphrase: Option<&Passphrase>,
    ) -> Result<Opened, WalletError> {
        let mut opened = Self::open_inner(dir.as_ref(), passphrase)?;
        if let Some(passphrase) = passphrase
            && opened.wallet.sealing.is_none()
        {
            if passphrase.is_empty() {
                return Err(WalletError::EmptyPassphrase);
            }
            let wallet = &mut opened.wallet;
            wallet.sealing = Some(SealingKey::new(passphrase).map_err(WalletError::KeyDerivation)?);
            wallet.save(&wallet.notes)?;
        }
        Ok(opened)
    }

    /// Reads a copy of a wallet file kept elsewhere (`wallet.json.bak` copied to another
    /// disk, say) without locking or changing it: its vault and notes, which a restore walks
    /// the receipts forward from (PROTOCOL §6 step 7). A sealed copy needs `passphrase`.
    pub fn read_copy(
        path: &Path,
        passphrase: Option<&Passphrase>,
    ) -> Result<(VaultId, Vec<NoteEntry>), WalletError> {
        let bad = |problem: String| WalletError::BadCopy {
            path: path.to_path_buf(),
            problem,
        };
        let (Some(dir), Some(name)) = (path.parent(), path.file_name().and_then(|n| n.to_str()))
        else {
            return Err(bad("is not a file name".into()));
        };
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        match read(dir, name, passphrase, &mut None)? {
            Read::Good(contents) => Ok(contents),
            Read::Bad(problem) => Err(bad(problem)),
            Read::WrongKey => Err(bad("does not open with the passphrase given".into())),
        }
    }

    fn open_inner(dir: &Path, passphrase: Option<&Passphrase>) -> Result<Opened, WalletError> {
        let dir = dir.to_path_buf();
        if !dir.join(MAIN).exists() && !dir.join(BACKUP).exists() {
            return Err(WalletError::NotFound { dir });
        }
        let lock = lock(&dir)?;
        // A temporary left by a crash is never a wallet: the rename is what commits.
        for stray in [MAIN_TEMPORARY, BACKUP_TEMPORARY] {
            let path = dir.join(stray);
            fs::remove_if_present(&path).map_err(io_error("remove", &path))?;
        }
        let mut sealing = None;
        let main_problem = match read(&dir, MAIN, passphrase, &mut sealing)? {
            Read::Good((vault, notes)) => {
                let wallet = Self {
                    dir,
                    vault,
                    notes,
                    sealing,
                    _lock: lock,
                };
                return Ok(Opened {
                    wallet,
                    warning: None,
                });
            }
            Read::Bad(problem) => Some(problem),
            Read::WrongKey => None,
        };
        let (vault, notes) = match (read(&dir, BACKUP, passphrase, &mut sealing)?, &main_problem) {
            (Read::Good(contents), _) => contents,
            // Neither opens, and at least one was sealed: most likely the passphrase is wrong.
            (Read::WrongKey, _) | (Read::Bad(_), None) => {
                return Err(WalletError::WrongPassphrase { dir });
            }
            (Read::Bad(backup), Some(main)) => {
                let main = main.clone();
                return Err(WalletError::Corrupt { dir, main, backup });
            }
        };
        let main_problem =
            main_problem.unwrap_or_else(|| "does not open with the passphrase (damaged)".into());
        let main = dir.join(MAIN);
        if main.exists() {
            let corrupt = dir.join(CORRUPT);
            std::fs::rename(&main, &corrupt).map_err(io_error("keep the corrupt", &main))?;
        }
        let wallet = Self {
            dir,
            vault,
            notes,
            sealing,
            _lock: lock,
        };
        wallet.save_main(&file::encode(&wallet.vault, &wallet.notes))?;
        Ok(Opened {
            wallet,
            warning: Some(OpenWarning::UsedBackup {
                problem: main_problem,
            }),
        })
    }

    /// The wallet directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where this wallet's [`Journal`](crate::journal::Journal) lives (`<dir>/journal`).
    pub fn journal_dir(&self) -> PathBuf {
        self.dir.join(JOURNAL)
    }

    /// The vault the notes belong to.
    pub fn vault(&self) -> VaultId {
        self.vault
    }

    /// All notes, in the order they were added; a note's index never changes.
    pub fn notes(&self) -> &[NoteEntry] {
        &self.notes
    }

    /// Note `index`, if there is one.
    pub fn note(&self, index: usize) -> Option<&NoteEntry> {
        self.notes.get(index)
    }

    /// Adds a note and saves the wallet, returning the note's index. The secret must be
    /// non-zero and not already in the wallet.
    pub fn add_note(&mut self, note: NoteEntry) -> Result<usize, WalletError> {
        let mut notes = self.notes.clone();
        notes.push(note);
        self.commit(notes)?;
        Ok(self.notes.len() - 1)
    }

    /// Changes note `index` with `change` and saves the wallet before returning what
    /// `change` returned. If the change breaks an invariant or `wallet.json` cannot be
    /// written, the wallet is left as it was.
    pub fn update<R>(
        &mut self,
        index: usize,
        change: impl FnOnce(&mut NoteEntry) -> R,
    ) -> Result<R, WalletError> {
        let mut notes = self.notes.clone();
        let count = notes.len();
        let note = notes
            .get_mut(index)
            .ok_or(WalletError::NoSuchNote { index, count })?;
        let result = change(note);
        self.commit(notes)?;
        Ok(result)
    }

    /// Sets note `index`'s private state (after a checked receipt) and saves the wallet.
    pub fn set_state(&mut self, index: usize, state: NoteState) -> Result<(), WalletError> {
        self.update(index, |note| note.state = state)
    }

    /// Sets note `index`'s status and saves the wallet.
    pub fn set_status(&mut self, index: usize, status: NoteStatus) -> Result<(), WalletError> {
        self.update(index, |note| note.status = status)
    }

    /// Validates and saves `notes`, then makes them the wallet's.
    fn commit(&mut self, notes: Vec<NoteEntry>) -> Result<(), WalletError> {
        validate(&notes).map_err(|(index, reason)| WalletError::InvalidNote { index, reason })?;
        let bytes = file::encode(&self.vault, &notes);
        self.save_main(&bytes)?;
        // wallet.json is what `open` reads: from here on the change is made.
        self.notes = notes;
        self.save_backup(&bytes)
    }

    fn save(&self, notes: &[NoteEntry]) -> Result<(), WalletError> {
        let bytes = file::encode(&self.vault, notes);
        self.save_main(&bytes)?;
        self.save_backup(&bytes)
    }

    /// Writes `wallet.json` from the plaintext file `bytes` (sealed first if encrypted).
    fn save_main(&self, bytes: &[u8]) -> Result<(), WalletError> {
        let path = self.dir.join(MAIN);
        fs::write_atomically(&path, &self.dir.join(MAIN_TEMPORARY), &self.sealed(bytes))
            .map_err(io_error("write", &path))
    }

    /// Writes `wallet.json.bak` from the plaintext file `bytes`, like [`Self::save_main`].
    fn save_backup(&self, bytes: &[u8]) -> Result<(), WalletError> {
        let path = self.dir.join(BACKUP);
        fs::write_atomically(&path, &self.dir.join(BACKUP_TEMPORARY), &self.sealed(bytes))
            .map_err(|source| WalletError::Backup { path, source })
    }

    fn sealed(&self, bytes: &[u8]) -> Vec<u8> {
        match &self.sealing {
            Some(key) => key.seal(bytes),
            None => bytes.to_vec(),
        }
    }

    /// Whether the wallet is encrypted at rest.
    pub fn is_sealed(&self) -> bool {
        self.sealing.is_some()
    }
}

impl core::fmt::Debug for Wallet {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Wallet")
            .field("dir", &self.dir)
            .field("vault", &self.vault)
            .field("notes", &self.notes)
            .field("sealed", &self.sealing.is_some())
            .finish_non_exhaustive()
    }
}

/// Takes the wallet lock in `dir`.
fn lock(dir: &Path) -> Result<std::fs::File, WalletError> {
    let path = dir.join(LOCK);
    match fs::lock(&path).map_err(io_error("lock", &path))? {
        fs::Locked::Held(file) => Ok(file),
        fs::Locked::Busy(pid) => Err(WalletError::InUse {
            dir: dir.to_path_buf(),
            pid,
        }),
    }
}

/// What a wallet file holds.
type Contents = (VaultId, Vec<NoteEntry>);

/// What reading one wallet file gave.
enum Read {
    Good(Contents),
    /// Missing or corrupt: the caller may fall back.
    Bad(String),
    /// Sealed, and the passphrase does not open it.
    WrongKey,
}

/// Reads, opens (if sealed: `sealing` is set to the key it opened with, and reused) and
/// validates the wallet file `name` in `dir`; `Err` when the caller must not fall back.
fn read(
    dir: &Path,
    name: &str,
    passphrase: Option<&Passphrase>,
    sealing: &mut Option<SealingKey>,
) -> Result<Read, WalletError> {
    let path = dir.join(name);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            return Ok(Read::Bad("is missing".to_owned()));
        }
        Err(error) => return Err(io_error("read", &path)(error)),
    };
    let plaintext = match sealed::unseal(&bytes, passphrase, sealing.as_ref()) {
        Unsealed::Plain => zeroize::Zeroizing::new(bytes),
        Unsealed::Opened(plaintext, key) => {
            *sealing = Some(key);
            plaintext
        }
        Unsealed::WrongKey => return Ok(Read::WrongKey),
        Unsealed::NeedPassphrase => {
            return Err(WalletError::NeedPassphrase {
                dir: dir.to_path_buf(),
            });
        }
        Unsealed::Corrupt(problem) => return Ok(Read::Bad(format!("is corrupt ({problem})"))),
    };
    let path = path.as_path();
    match file::decode(&plaintext) {
        Ok((vault, notes)) => Ok(match validate(&notes) {
            Ok(()) => Read::Good((vault, notes)),
            Err((index, reason)) => Read::Bad(format!("is corrupt (note {index}: {reason})")),
        }),
        Err(file::Problem::Corrupt(problem)) => Ok(Read::Bad(format!("is corrupt ({problem})"))),
        Err(file::Problem::Version(found)) => Err(WalletError::UnsupportedVersion {
            path: path.to_path_buf(),
            found,
            supported: file::VERSION,
        }),
    }
}

/// The invariants of a wallet's notes: secrets non-zero and unique (one note per secret),
/// `note_id` inside the tree.
fn validate(notes: &[NoteEntry]) -> Result<(), (usize, &'static str)> {
    let mut secrets = HashSet::with_capacity(notes.len());
    for (index, note) in notes.iter().enumerate() {
        if note.secret == Fr::from(0u64) {
            return Err((index, "the secret is zero"));
        }
        if !secrets.insert(fr_to_bytes(&note.secret)) {
            return Err((index, "another note has the same secret"));
        }
        if note.note_id.is_some_and(|id| id >= 1 << TREE_DEPTH) {
            return Err((index, "note_id is not below 2^24"));
        }
    }
    Ok(())
}

fn io_error<'a>(
    action: &'static str,
    path: &'a Path,
) -> impl FnOnce(io::Error) -> WalletError + 'a {
    move |source| WalletError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

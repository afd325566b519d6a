//! What can go wrong with a wallet, and the warning an open can carry.

use std::{io, path::PathBuf};

/// Everything that can go wrong creating, opening or changing a [`Wallet`](super::Wallet).
///
/// Messages say what was wrong and what to do; none contains a secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WalletError {
    /// Another `Wallet` value holds the wallet's lock, in this process or another one.
    #[error(
        "wallet {} is in use by another nullgate process ({}); stop it or use another wallet",
        .dir.display(),
        pid_text(*.pid)
    )]
    InUse {
        /// The wallet directory.
        dir: PathBuf,
        /// The pid the holder wrote into the lock file, if it could be read.
        pid: Option<u32>,
    },
    /// `create` found a wallet (or its backup) already in the directory.
    #[error(
        "{} already holds a wallet; open it, or create the new wallet in another directory",
        .dir.display()
    )]
    AlreadyExists {
        /// The wallet directory.
        dir: PathBuf,
    },
    /// `open` found neither `wallet.json` nor its backup.
    #[error(
        "no wallet in {} (neither wallet.json nor wallet.json.bak); check the path, or create one",
        .dir.display()
    )]
    NotFound {
        /// The wallet directory.
        dir: PathBuf,
    },
    /// Both `wallet.json` and its backup are missing or unreadable as a wallet.
    #[error(
        "the wallet in {} cannot be read: wallet.json: {main}; wallet.json.bak: {backup}; \
         restore the directory from a copy (the note secrets are in it)",
        .dir.display()
    )]
    Corrupt {
        /// The wallet directory.
        dir: PathBuf,
        /// What was wrong with `wallet.json`.
        main: String,
        /// What was wrong with `wallet.json.bak`.
        backup: String,
    },
    /// The wallet file was written by a newer nullgate, in a format this one does not know.
    #[error(
        "{} has wallet format version {found}, this nullgate reads version {supported}; \
         upgrade nullgate",
        .path.display()
    )]
    UnsupportedVersion {
        /// The file.
        path: PathBuf,
        /// Its format version.
        found: u32,
        /// The version this build reads and writes.
        supported: u32,
    },
    /// A copy of a wallet file (read by [`Wallet::read_copy`](super::Wallet::read_copy)) is
    /// missing, damaged or sealed under another passphrase.
    #[error(
        "the wallet copy {} {problem}; check the path and the passphrase, or restore from the \
         note secrets alone",
        .path.display()
    )]
    BadCopy {
        /// The copy.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// The wallet is encrypted and no passphrase was given.
    #[error(
        "the wallet in {} is encrypted: give its passphrase (the prompt, or \
         --passphrase-env NAME with the passphrase in the variable NAME)",
        .dir.display()
    )]
    NeedPassphrase {
        /// The wallet directory.
        dir: PathBuf,
    },
    /// Neither `wallet.json` nor its backup opens with the passphrase given.
    #[error(
        "the passphrase does not open the wallet in {} (nor its backup); check it and try \
         again — nothing was changed",
        .dir.display()
    )]
    WrongPassphrase {
        /// The wallet directory.
        dir: PathBuf,
    },
    /// An empty passphrase would protect nothing.
    #[error("refusing an empty passphrase: choose one, or create the wallet unencrypted")]
    EmptyPassphrase,
    /// The key derivation failed (the machine is out of memory, most likely).
    #[error("deriving the wallet key from the passphrase failed: {0}")]
    KeyDerivation(String),
    /// A note index past the end of the wallet (a caller bug).
    #[error("the wallet has {count} notes, there is no note {index}")]
    NoSuchNote {
        /// The index asked for.
        index: usize,
        /// How many notes the wallet holds.
        count: usize,
    },
    /// A note added or changed would break an invariant of the wallet (a caller bug); nothing
    /// was written.
    #[error("refused to store note {index}: {reason}")]
    InvalidNote {
        /// The note's index in the wallet.
        index: usize,
        /// The broken invariant.
        reason: &'static str,
    },
    /// A file operation failed.
    #[error("cannot {action} {}: {source}; check the disk and the permissions", .path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// The change was saved to `wallet.json`, but its backup could not be written.
    #[error(
        "the wallet was saved, but its backup {} could not be written: {source}; \
         the next change retries it",
        .path.display()
    )]
    Backup {
        /// The backup file.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
}

/// Something the caller must act on after an [`open`](super::Wallet::open) that succeeded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OpenWarning {
    /// `wallet.json` was missing or corrupt, and the wallet was read from `wallet.json.bak`
    /// (which is then written back as `wallet.json`; a corrupt file is kept as
    /// `wallet.json.corrupt`). The backup is the state after the last change that was saved
    /// completely, so it may lag by one change: per PROTOCOL §9, walk the notes' receipts
    /// from this state before making any request.
    #[error(
        "wallet.json {problem}; using the backup wallet.json.bak instead (it may lag by one \
         change: the notes' receipts are walked before any request)"
    )]
    UsedBackup {
        /// What was wrong with `wallet.json`.
        problem: String,
    },
}

fn pid_text(pid: Option<u32>) -> String {
    match pid {
        Some(pid) => format!("pid {pid}"),
        None => "pid unknown".to_owned(),
    }
}

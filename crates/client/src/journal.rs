//! The request journal: a request is persisted, fsynced, before any byte of it leaves the
//! device (PROTOCOL §5 step 7, §9).
//!
//! One **slot** per note, the note's index in the [`Wallet`](crate::wallet::Wallet) (stable:
//! notes are never removed), in the file `<journal dir>/<slot>.req`. One request is in flight
//! per note (§9), so a slot holds at most one entry.
//!
//! # Cost: one fsync per write
//!
//! A write is on the critical path of every paid call, so it costs exactly one
//! `sync_data()`: the slot's file is created, and its directory entry made durable, once, by
//! [`Journal::prepare`]; after that a write overwrites the file in place from offset 0 and
//! syncs its data. (Bytes beyond the new record, left by a longer earlier one, are ignored.)
//!
//! # Record layout
//!
//! ```text
//! offset 0   magic        b"NGJ1"
//!        4   length       u32 big-endian: the payload's length (at most MAX_PAYLOAD)
//!        8   checksum     SHA-256(payload), 32 bytes
//!       40   payload:
//!               sent             u8, 0 or 1
//!               index            u32 big-endian: the request index m
//!               class_cost       u64 big-endian: C_c
//!               nullifier        32 bytes: N_m
//!               published_state  64 bytes: A_pub, x ‖ y
//!               request length   u32 big-endian
//!               request          the exact request bytes
//! ```
//!
//! A cleared or freshly prepared slot has a zero header.
//!
//! # Why a record that does not check out reads as empty
//!
//! A record with a bad magic, a length past the file or the bound, or a wrong checksum is
//! a torn write: the process or the machine stopped before `sync_data()` returned. Nothing
//! is sent until that call has returned, so no byte of that request left the device: index
//! `m` was never exposed, and forgetting the entry is safe. (Even if it had somehow left,
//! the request key and the RLN share at `(k, m)` are derived (§5.2), so a different request
//! at `m` costs a 409, never the deposit.) A record whose checksum matches but whose payload
//! does not decode is not a torn write, and is reported as [`JournalError::Malformed`].
//!
//! # `sent` means "may have left"
//!
//! An entry with `sent == false` is one that **provably never left the device**: a client
//! may discard it and exit with `n = m`. Exiting with `n = m` while a request at `m` is out
//! there gets the note slashed (the exit share collides with the request's, §8), so `sent`
//! must be set before the first byte is handed to the transport: either [`Journal::write`]
//! the entry with `sent: true` (the critical path: one fsync), or write it unsent and call
//! [`Journal::mark_sent`] before sending. `mark_sent` rewrites only the header and the `sent`
//! byte, all within the first 512 bytes of the file, so it is one sector write; if it were
//! torn anyway, the record reads as empty, which is safe for the reason above because
//! nothing was sent yet. For the same reason [`Journal::write`] refuses to overwrite a sent
//! entry ([`JournalError::SlotBusy`]): only a receipt for `N_m` or an exit with `n = m + 1`
//! settles it, and then the slot is [cleared](Journal::clear).
//!
//! # Recovery
//!
//! After a restart, [`Journal::pending`] lists what the slots hold. A sent entry is re-sent
//! byte for byte (§5.7); an entry whose `index` is below its note's state index in the wallet
//! was settled (the state is saved before the slot is cleared) and can be cleared.
//!
//! The journal has no lock of its own: it is covered by the wallet's lock, so open it (at
//! [`Wallet::journal_dir`](crate::wallet::Wallet::journal_dir)) only while holding the
//! wallet.

use std::{
    fs::{self, File},
    io::{self, Read, Seek, SeekFrom, Write},
    path::{Path, PathBuf},
};

use sha2::{Digest, Sha256};

use crate::wallet::fs::{create_private_dir, private_options, sync_dir};

/// The largest payload a slot accepts, in bytes (16 MiB).
pub const MAX_PAYLOAD: usize = 16 << 20;

/// A journalled request: what re-sending it and settling it need.
#[derive(Clone, PartialEq, Eq)]
pub struct JournalEntry {
    /// The request index `m`.
    pub index: u32,
    /// The cost class `C_c` it pays with.
    pub class_cost: u64,
    /// The nullifier `N_m`.
    pub nullifier: [u8; 32],
    /// The rerandomised state `A_pub` (`x ‖ y`), which the receipt's new state builds on.
    pub published_state: [u8; 64],
    /// The exact request bytes, re-sent byte for byte.
    pub request: Vec<u8>,
    /// Whether the request may have left the device (see the module documentation).
    pub sent: bool,
}

impl core::fmt::Debug for JournalEntry {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // The request holds the prompt; the nullifier and A_pub are what the gateway sees.
        f.debug_struct("JournalEntry")
            .field("index", &self.index)
            .field("class_cost", &self.class_cost)
            .field("request_len", &self.request.len())
            .field("sent", &self.sent)
            .finish_non_exhaustive()
    }
}

/// Everything that can go wrong with the journal.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JournalError {
    /// The entry's payload is larger than [`MAX_PAYLOAD`]; nothing was written.
    #[error(
        "the request is too large to journal ({size} bytes of payload, at most {max}); \
         send a smaller request"
    )]
    TooLarge {
        /// The payload size the entry needs.
        size: usize,
        /// [`MAX_PAYLOAD`].
        max: usize,
    },
    /// The slot holds a request that may have been sent and is not settled; overwriting it
    /// would lose the duty to re-send it (a caller bug). Nothing was written.
    #[error(
        "journal slot {slot} holds request {index}, which may have been sent and is not \
         settled; re-send it, and clear the slot only after its receipt or an exit"
    )]
    SlotBusy {
        /// The slot.
        slot: usize,
        /// The index `m` of the request it holds.
        index: u32,
    },
    /// `mark_sent` found no entry in the slot (a caller bug).
    #[error("journal slot {slot} is empty: write the request before marking it sent")]
    Empty {
        /// The slot.
        slot: usize,
    },
    /// A record's checksum matched but its payload does not decode: not a torn write, but a
    /// file from another program or version. It is left alone.
    #[error(
        "journal file {} is not a nullgate journal entry ({reason}); move it away if it is \
         not needed, or upgrade nullgate",
        .path.display()
    )]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What does not decode.
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
}

/// The journal directory of one wallet. Methods take `&self`: slots are independent files,
/// so different notes can be journalled from different threads.
#[derive(Debug)]
pub struct Journal {
    dir: PathBuf,
}

impl Journal {
    /// Opens the journal in `dir`, creating it (mode 0700, its entry fsynced) if missing.
    /// Slot files are created with mode 0600.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, JournalError> {
        let dir = dir.as_ref().to_path_buf();
        create_private_dir(&dir).map_err(io_error("create the journal directory", &dir))?;
        Ok(Self { dir })
    }

    /// Creates the slot's file (mode 0600, empty) and makes it durable, so that later writes
    /// cost one fsync each. A slot that exists is left as it is.
    pub fn prepare(&self, slot: usize) -> Result<(), JournalError> {
        let path = self.path(slot);
        match private_options().write(true).create_new(true).open(&path) {
            Ok(file) => {
                file.sync_all().map_err(io_error("sync", &path))?;
                sync_dir(&self.dir).map_err(io_error("sync", &self.dir))
            }
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => Ok(()),
            Err(error) => Err(io_error("create", &path)(error)),
        }
    }

    /// Journals `entry` in `slot`, durably (one `sync_data()`; the slot is prepared first if
    /// it was not). Refuses to replace an entry that may have been sent
    /// ([`JournalError::SlotBusy`]); an unsent one is replaced.
    pub fn write(&self, slot: usize, entry: &JournalEntry) -> Result<(), JournalError> {
        let record = encode(entry)?;
        let path = self.path(slot);
        let mut file = match fs::OpenOptions::new().read(true).write(true).open(&path) {
            Ok(file) => file,
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                self.prepare(slot)?;
                fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(&path)
                    .map_err(io_error("open", &path))?
            }
            Err(error) => return Err(io_error("open", &path)(error)),
        };
        if let Some(index) = sent_entry(&mut file, &path)? {
            return Err(JournalError::SlotBusy { slot, index });
        }
        overwrite(&mut file, &record).map_err(io_error("write", &path))
    }

    /// Marks the entry in `slot` as possibly sent (one `sync_data()`). Call it before the
    /// first byte of the request is handed to the transport. Marking a sent entry does
    /// nothing.
    pub fn mark_sent(&self, slot: usize) -> Result<(), JournalError> {
        let path = self.path(slot);
        let mut file = match fs::OpenOptions::new().read(true).write(true).open(&path) {
            Ok(file) => file,
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                return Err(JournalError::Empty { slot });
            }
            Err(error) => return Err(io_error("open", &path)(error)),
        };
        let bytes = read_all(&mut file).map_err(io_error("read", &path))?;
        let Some(payload) = verified_payload(&bytes) else {
            return Err(JournalError::Empty { slot });
        };
        let entry = decode(payload).map_err(|reason| JournalError::Malformed {
            path: path.clone(),
            reason,
        })?;
        if entry.sent {
            return Ok(());
        }
        // Only the header and the `sent` byte change: one write within the first sector.
        let mut payload = payload.to_vec();
        payload[0] = 1;
        let mut head = header(&payload).to_vec();
        head.push(1);
        overwrite(&mut file, &head).map_err(io_error("write", &path))
    }

    /// The entry in `slot`, or `None` if it is empty, cleared, missing or torn.
    pub fn read(&self, slot: usize) -> Result<Option<JournalEntry>, JournalError> {
        let path = self.path(slot);
        let mut file = match File::open(&path) {
            Ok(file) => file,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(io_error("open", &path)(error)),
        };
        let bytes = read_all(&mut file).map_err(io_error("read", &path))?;
        match verified_payload(&bytes) {
            None => Ok(None),
            Some(payload) => decode(payload)
                .map(Some)
                .map_err(|reason| JournalError::Malformed { path, reason }),
        }
    }

    /// Empties `slot` (a zero header, one `sync_data()`), once its request is settled and
    /// the note's new state is saved. A missing slot is left missing.
    pub fn clear(&self, slot: usize) -> Result<(), JournalError> {
        let path = self.path(slot);
        let mut file = match fs::OpenOptions::new().write(true).open(&path) {
            Ok(file) => file,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(error) => return Err(io_error("open", &path)(error)),
        };
        overwrite(&mut file, &[0; HEADER_LEN + 1]).map_err(io_error("write", &path))
    }

    /// Every slot that holds an entry, in slot order: what a restarted client must settle
    /// before anything else.
    pub fn pending(&self) -> Result<Vec<(usize, JournalEntry)>, JournalError> {
        let entries = fs::read_dir(&self.dir).map_err(io_error("list", &self.dir))?;
        let mut slots = Vec::new();
        for entry in entries {
            let entry = entry.map_err(io_error("list", &self.dir))?;
            if let Some(slot) = entry.file_name().to_str().and_then(slot_of) {
                slots.push(slot);
            }
        }
        slots.sort_unstable();
        let mut pending = Vec::new();
        for slot in slots {
            if let Some(entry) = self.read(slot)? {
                pending.push((slot, entry));
            }
        }
        Ok(pending)
    }

    fn path(&self, slot: usize) -> PathBuf {
        self.dir.join(format!("{slot}.req"))
    }
}

/// The index of the entry in `file` if it is a sent one. Reads only the first bytes
/// unless the `sent` byte is set, so that the usual case (a cleared slot) stays cheap.
fn sent_entry(file: &mut File, path: &Path) -> Result<Option<u32>, JournalError> {
    let mut head = [0u8; HEADER_LEN + 1];
    let got = read_up_to(file, &mut head).map_err(io_error("read", path))?;
    if got < head.len() || head[..4] != MAGIC || head[HEADER_LEN] != 1 {
        return Ok(None);
    }
    file.seek(SeekFrom::Start(0))
        .map_err(io_error("read", path))?;
    let bytes = read_all(file).map_err(io_error("read", path))?;
    Ok(verified_payload(&bytes)
        .and_then(|payload| decode(payload).ok())
        .filter(|entry| entry.sent)
        .map(|entry| entry.index))
}

const MAGIC: [u8; 4] = *b"NGJ1";
const HEADER_LEN: usize = 40;
/// `sent`, `index`, `class_cost`, `nullifier`, `published_state`, the request's length.
const FIXED_LEN: usize = 1 + 4 + 8 + 32 + 64 + 4;

/// The whole record for `entry`: header ‖ payload.
fn encode(entry: &JournalEntry) -> Result<Vec<u8>, JournalError> {
    let size = FIXED_LEN + entry.request.len();
    if size > MAX_PAYLOAD {
        return Err(JournalError::TooLarge {
            size,
            max: MAX_PAYLOAD,
        });
    }
    let mut record = Vec::with_capacity(HEADER_LEN + size);
    record.resize(HEADER_LEN, 0);
    record.push(u8::from(entry.sent));
    record.extend_from_slice(&entry.index.to_be_bytes());
    record.extend_from_slice(&entry.class_cost.to_be_bytes());
    record.extend_from_slice(&entry.nullifier);
    record.extend_from_slice(&entry.published_state);
    // Fits: size ≤ MAX_PAYLOAD < 2^32.
    record.extend_from_slice(&(entry.request.len() as u32).to_be_bytes());
    record.extend_from_slice(&entry.request);
    let head = header(&record[HEADER_LEN..]);
    record[..HEADER_LEN].copy_from_slice(&head);
    Ok(record)
}

fn header(payload: &[u8]) -> [u8; HEADER_LEN] {
    let mut head = [0u8; HEADER_LEN];
    head[..4].copy_from_slice(&MAGIC);
    head[4..8].copy_from_slice(&(payload.len() as u32).to_be_bytes());
    head[8..].copy_from_slice(&Sha256::digest(payload));
    head
}

/// The payload of a record that checks out, or `None` for an empty or torn one.
fn verified_payload(bytes: &[u8]) -> Option<&[u8]> {
    let head = bytes.get(..HEADER_LEN)?;
    if head[..4] != MAGIC {
        return None;
    }
    let length = u32::from_be_bytes(head[4..8].try_into().expect("4 bytes")) as usize;
    if length > MAX_PAYLOAD {
        return None;
    }
    let payload = bytes.get(HEADER_LEN..HEADER_LEN + length)?;
    (Sha256::digest(payload).as_slice() == &head[8..]).then_some(payload)
}

fn decode(payload: &[u8]) -> Result<JournalEntry, &'static str> {
    let mut reader = payload;
    let sent = match take::<1>(&mut reader)? {
        [0] => false,
        [1] => true,
        _ => return Err("the sent flag is neither 0 nor 1"),
    };
    let index = u32::from_be_bytes(take(&mut reader)?);
    let class_cost = u64::from_be_bytes(take(&mut reader)?);
    let nullifier = take(&mut reader)?;
    let published_state = take(&mut reader)?;
    let length = u32::from_be_bytes(take(&mut reader)?) as usize;
    if reader.len() != length {
        return Err("the request length does not match the payload");
    }
    Ok(JournalEntry {
        index,
        class_cost,
        nullifier,
        published_state,
        request: reader.to_vec(),
        sent,
    })
}

fn take<const N: usize>(reader: &mut &[u8]) -> Result<[u8; N], &'static str> {
    let (head, rest) = reader
        .split_first_chunk::<N>()
        .ok_or("the payload is shorter than its fixed fields")?;
    *reader = rest;
    Ok(*head)
}

/// Writes `bytes` at offset 0 and syncs the data: the one fsync of a journal operation.
fn overwrite(file: &mut File, bytes: &[u8]) -> io::Result<()> {
    file.seek(SeekFrom::Start(0))?;
    file.write_all(bytes)?;
    file.sync_data()
}

fn read_all(file: &mut File) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    Ok(bytes)
}

fn read_up_to(file: &mut File, buffer: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buffer.len() {
        match file.read(&mut buffer[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(got)
}

/// The slot named by a journal file name (`<slot>.req`, canonical decimal).
fn slot_of(name: &str) -> Option<usize> {
    let digits = name.strip_suffix(".req")?;
    let canonical = !digits.is_empty()
        && digits.bytes().all(|byte| byte.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'));
    canonical.then(|| digits.parse().ok()).flatten()
}

fn io_error<'a>(
    action: &'static str,
    path: &'a Path,
) -> impl FnOnce(io::Error) -> JournalError + 'a {
    move |source| JournalError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_names_are_canonical() {
        assert_eq!(slot_of("0.req"), Some(0));
        assert_eq!(slot_of("12.req"), Some(12));
        for name in ["012.req", ".req", "1.req.tmp", "a.req", "+1.req", "1"] {
            assert_eq!(slot_of(name), None, "{name}");
        }
    }

    #[test]
    fn payload_decoding_is_strict() {
        let entry = JournalEntry {
            index: 1,
            class_cost: 2,
            nullifier: [3; 32],
            published_state: [4; 64],
            request: b"abc".to_vec(),
            sent: false,
        };
        let record = encode(&entry).unwrap();
        let payload = &record[HEADER_LEN..];
        assert_eq!(decode(payload), Ok(entry));
        assert!(decode(&payload[..payload.len() - 1]).is_err());
        let mut bad_flag = payload.to_vec();
        bad_flag[0] = 2;
        assert!(decode(&bad_flag).is_err());
        let mut longer = payload.to_vec();
        longer.push(0);
        assert!(decode(&longer).is_err());
    }
}

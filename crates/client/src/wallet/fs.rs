//! File-system helpers shared by the wallet and the journal: private permissions, directory
//! fsync, atomic replacement and the wallet lock.

use std::{
    fs::{self, File, OpenOptions},
    io::{self, Read, Write},
    path::Path,
};

/// Creates `dir` (and missing parents) with mode 0700 on unix, and makes its entry durable
/// when it was created (fsync of the parent directory).
pub(crate) fn create_private_dir(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)?;
    match dir.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => sync_dir(parent),
        _ => Ok(()),
    }
}

/// Options that create files readable by their owner only (0600 on unix).
pub(crate) fn private_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
}

/// Makes a directory's entries (a created, renamed or removed file) durable.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    // Directories can be opened and fsynced on unix only; elsewhere the rename itself is
    // what the platform offers.
    #[cfg(unix)]
    File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Replaces `path` with `bytes` atomically: write `temporary` (same directory), fsync it,
/// rename it over `path`, fsync the directory. A crash leaves either the old or the new
/// content at `path`, and at worst a stray `temporary`.
pub(crate) fn write_atomically(path: &Path, temporary: &Path, bytes: &[u8]) -> io::Result<()> {
    // A stray temporary from a crash is removed rather than truncated, so that the new file
    // gets our permissions and not whatever the old one had.
    remove_if_present(temporary)?;
    let mut file = private_options()
        .write(true)
        .create_new(true)
        .open(temporary)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    fs::rename(temporary, path)?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

/// Removes a file, treating "not there" as success.
pub(crate) fn remove_if_present(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => Err(error),
        _ => Ok(()),
    }
}

/// The outcome of trying to take the wallet lock.
pub(crate) enum Locked {
    /// We hold the lock for as long as the file stays open.
    Held(File),
    /// Another open file description holds it; the pid it wrote, if readable.
    Busy(Option<u32>),
}

/// Takes the exclusive `flock` on `path` without blocking and writes our pid into the file.
///
/// `flock` locks belong to an open file description, so a second open in the same process
/// is refused just as one from another process; the lock goes when the file is closed (the
/// process may die: the kernel releases it).
pub(crate) fn lock(path: &Path) -> io::Result<Locked> {
    let mut file = private_options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)?;
    // Called through the trait: std has inherent `File::try_lock` from Rust 1.89 on.
    match fs4::FileExt::try_lock(&file) {
        Ok(()) => {}
        Err(fs4::TryLockError::WouldBlock) => {
            let mut text = String::new();
            // The holder may be between truncating and writing: the pid is then unknown.
            let pid = file
                .read_to_string(&mut text)
                .ok()
                .and_then(|_| text.trim().parse().ok());
            return Ok(Locked::Busy(pid));
        }
        Err(fs4::TryLockError::Error(error)) => return Err(error),
    }
    // The pid is only a hint for the "in use" message: no fsync.
    file.set_len(0)?;
    writeln!(file, "{}", std::process::id())?;
    Ok(Locked::Held(file))
}

//! Fault injection for the crash tests: with `NULLGATE_FAULT=<point>` in the environment, a
//! debug build of the gateway aborts its process the first time it passes that point, as if
//! killed there. Release builds compile every point to nothing and never read the variable.
//!
//! The points sit after every step of the pipeline and of the chain watcher; the crash
//! tests (`tests/crash.rs`) kill a gateway process at each and check, after a restart, that
//! no nullifier was lost, no request ran twice, and every retry gets its receipt.

/// A place a test can kill the gateway at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultPoint {
    /// Step 1 done: the credential parsed.
    Parsed,
    /// Step 2 done: `N` looked up, unknown.
    LookedUp,
    /// Step 3 done: signature and proof verified.
    Verified,
    /// Step 4 done: `N` reserved, durably, before the upstream is called.
    Reserved,
    /// Step 5 done: the upstream answered; nothing charged or recorded yet.
    Forwarded,
    /// Steps 6–7 done: the receipt and response recorded, not yet sent.
    Settled,
    /// The watcher read new events; none recorded yet.
    WatcherSynced,
    /// The watcher recorded an exit's share in the store.
    WatcherRecorded,
}

impl FaultPoint {
    /// Every point, in the order a request (then the watcher) passes them.
    pub const ALL: [FaultPoint; 8] = [
        FaultPoint::Parsed,
        FaultPoint::LookedUp,
        FaultPoint::Verified,
        FaultPoint::Reserved,
        FaultPoint::Forwarded,
        FaultPoint::Settled,
        FaultPoint::WatcherSynced,
        FaultPoint::WatcherRecorded,
    ];

    /// The value of `NULLGATE_FAULT` that arms it.
    pub fn name(self) -> &'static str {
        match self {
            FaultPoint::Parsed => "parsed",
            FaultPoint::LookedUp => "looked-up",
            FaultPoint::Verified => "verified",
            FaultPoint::Reserved => "reserved",
            FaultPoint::Forwarded => "forwarded",
            FaultPoint::Settled => "settled",
            FaultPoint::WatcherSynced => "watcher-synced",
            FaultPoint::WatcherRecorded => "watcher-recorded",
        }
    }
}

/// The environment variable naming the armed point.
pub const FAULT_ENV: &str = "NULLGATE_FAULT";

/// Passes `point`: aborts the process if it is the armed one (debug builds only).
#[inline]
pub(crate) fn reached(point: FaultPoint) {
    #[cfg(debug_assertions)]
    {
        static ARMED: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
        let armed = ARMED.get_or_init(|| std::env::var(FAULT_ENV).ok());
        if armed.as_deref() == Some(point.name()) {
            eprintln!("fault injected at {}: aborting", point.name());
            std::process::abort();
        }
    }
    #[cfg(not(debug_assertions))]
    let _ = point;
}

//! Prometheus counters of the gateway (`GET /metrics`). They count outcomes, never anything
//! about a request that could link it to another.

use std::sync::atomic::{AtomicU64, Ordering};

/// The gateway's counters.
#[derive(Default, Debug)]
pub struct Metrics {
    paid: AtomicU64,
    retries: AtomicU64,
    refused: AtomicU64,
    invalid: AtomicU64,
    double_spends: AtomicU64,
    slashes: AtomicU64,
    upstream_calls: AtomicU64,
    upstream_failures: AtomicU64,
    credits: AtomicU64,
    cut_off: AtomicU64,
    watcher_alarm: AtomicU64,
}

/// What a finished request counts as.
#[derive(Clone, Copy, Debug)]
pub enum Outcome {
    /// Served and charged.
    Paid,
    /// A retry answered from the store.
    Retry,
    /// Refused before reservation (4xx without a receipt).
    Refused,
    /// Failed verification (signature or proof).
    Invalid,
    /// A double spend.
    DoubleSpend,
}

impl Metrics {
    /// Counts a finished request.
    pub fn count(&self, outcome: Outcome) {
        let counter = match outcome {
            Outcome::Paid => &self.paid,
            Outcome::Retry => &self.retries,
            Outcome::Refused => &self.refused,
            Outcome::Invalid => &self.invalid,
            Outcome::DoubleSpend => &self.double_spends,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts credits charged.
    pub fn charged(&self, credits: u64) {
        self.credits.fetch_add(credits, Ordering::Relaxed);
    }

    /// Counts an upstream call and whether it failed.
    pub fn upstream(&self, failed: bool) {
        self.upstream_calls.fetch_add(1, Ordering::Relaxed);
        if failed {
            self.upstream_failures.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts a stream cut off at its class cap.
    pub fn cut_off(&self) {
        self.cut_off.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a submitted slash.
    pub fn slashed(&self) {
        self.slashes.fetch_add(1, Ordering::Relaxed);
    }

    /// Raises or clears the watcher alarm.
    pub fn set_watcher_alarm(&self, on: bool) {
        self.watcher_alarm.store(u64::from(on), Ordering::Relaxed);
    }

    /// Whether the watcher alarm is raised.
    pub fn watcher_alarm(&self) -> bool {
        self.watcher_alarm.load(Ordering::Relaxed) != 0
    }

    /// Upstream calls so far.
    pub fn upstream_calls(&self) -> u64 {
        self.upstream_calls.load(Ordering::Relaxed)
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let mut counter = |name: &str, help: &str, value: &AtomicU64, kind: &str| {
            out.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {}\n",
                value.load(Ordering::Relaxed)
            ));
        };
        counter(
            "nullgate_gateway_paid_total",
            "Requests served and charged.",
            &self.paid,
            "counter",
        );
        counter(
            "nullgate_gateway_retries_total",
            "Retries answered from the store.",
            &self.retries,
            "counter",
        );
        counter(
            "nullgate_gateway_refused_total",
            "Requests refused before reservation.",
            &self.refused,
            "counter",
        );
        counter(
            "nullgate_gateway_invalid_total",
            "Credentials that failed verification.",
            &self.invalid,
            "counter",
        );
        counter(
            "nullgate_gateway_double_spends_total",
            "Double spends detected.",
            &self.double_spends,
            "counter",
        );
        counter(
            "nullgate_gateway_slashes_total",
            "Slash transactions submitted.",
            &self.slashes,
            "counter",
        );
        counter(
            "nullgate_gateway_upstream_calls_total",
            "Calls forwarded upstream.",
            &self.upstream_calls,
            "counter",
        );
        counter(
            "nullgate_gateway_upstream_failures_total",
            "Upstream calls that failed.",
            &self.upstream_failures,
            "counter",
        );
        counter(
            "nullgate_gateway_credits_charged_total",
            "Credit units charged.",
            &self.credits,
            "counter",
        );
        counter(
            "nullgate_gateway_streams_cut_off_total",
            "Streams cut off at their class cap.",
            &self.cut_off,
            "counter",
        );
        counter(
            "nullgate_gateway_watcher_alarm",
            "1 while the chain watcher cannot process events (service stopped).",
            &self.watcher_alarm,
            "gauge",
        );
        out
    }
}

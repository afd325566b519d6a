//! Prometheus counters of the gateway (`GET /metrics`). They count outcomes and sum stage
//! durations over all requests, never anything about a request that could link it to
//! another.

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

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
    proofs_checked: AtomicU64,
    clearances: AtomicU64,
    receipt_lookups: AtomicU64,
    exits_recorded: AtomicU64,
    slashes_submitted: AtomicU64,
    verifications_shed: AtomicU64,
    watcher_alarm: AtomicU64,
    watcher_lag: AtomicU64,
    parameters_mismatch: AtomicU64,
    stages: [Histogram; Stage::ALL.len()],
    /// Checks by how many proofs they held ([`BATCH_BUCKETS`], not cumulative).
    batch_sizes: [AtomicU64; BATCH_BUCKETS.len() + 1],
    batches: AtomicU64,
}

/// Upper bounds of the batch-size histogram's buckets (`+Inf` is implied).
const BATCH_BUCKETS: [u64; 7] = [1, 2, 4, 8, 16, 32, 64];

/// A stage of the paid pipeline whose durations `/metrics` reports as a histogram
/// (`nullgate_gateway_stage_seconds{stage=…}`), so an operator sees where time goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Step 2: the nullifier look-up.
    Lookup,
    /// Step 3: key, root, Ed25519 and Groth16 checks (on a blocking thread, queueing included).
    Verify,
    /// Step 4: the reservation, durable before the upstream is called.
    Reserve,
    /// Step 5: the upstream call, up to its whole body (or its headers, when streamed).
    Upstream,
    /// Steps 6–7: charge, receipt signature and the final record.
    Settle,
    /// A paid request from its body read to its answer.
    Request,
}

impl Stage {
    /// Every stage, in pipeline order.
    pub const ALL: [Stage; 6] = [
        Stage::Lookup,
        Stage::Verify,
        Stage::Reserve,
        Stage::Upstream,
        Stage::Settle,
        Stage::Request,
    ];

    /// The `stage` label.
    pub fn label(self) -> &'static str {
        match self {
            Stage::Lookup => "lookup",
            Stage::Verify => "verify",
            Stage::Reserve => "reserve",
            Stage::Upstream => "upstream",
            Stage::Settle => "settle",
            Stage::Request => "request",
        }
    }
}

/// Upper bounds of the histogram buckets, in seconds (`+Inf` is implied).
const BUCKETS_SECONDS: [f64; 12] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
];

/// A Prometheus histogram of durations: a count per bucket (not cumulative; summed when
/// rendered), the sum in nanoseconds and the count.
#[derive(Default, Debug)]
struct Histogram {
    buckets: [AtomicU64; BUCKETS_SECONDS.len() + 1],
    sum_nanos: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    fn observe(&self, duration: Duration) {
        let seconds = duration.as_secs_f64();
        let bucket = BUCKETS_SECONDS
            .iter()
            .position(|&bound| seconds <= bound)
            .unwrap_or(BUCKETS_SECONDS.len());
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }
}

/// How many times a stage ran and how long it took in all, as read from [`Metrics`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StageTotal {
    /// Observations.
    pub count: u64,
    /// Their summed duration.
    pub sum: Duration,
}

impl StageTotal {
    /// The mean duration since `before` (zero if the stage did not run since).
    pub fn mean_since(&self, before: &StageTotal) -> Duration {
        let count = self.count.saturating_sub(before.count);
        if count == 0 {
            return Duration::ZERO;
        }
        self.sum.saturating_sub(before.sum) / u32::try_from(count).unwrap_or(u32::MAX)
    }
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
    /// Counts a slash transaction submitted (confirmed ones count in `slashed`).
    pub fn slash_submitted(&self) {
        self.slashes_submitted.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts an exit share (`ExitInitiated`, `NoteClosed`) the watcher recorded.
    pub fn exit_recorded(&self) {
        self.exits_recorded.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a clearance signed for a mutual close.
    pub fn clearance(&self) {
        self.clearances.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a receipt look-up (`GET /nullgate/receipt/{N}`, PROTOCOL §6 step 7).
    pub fn receipt_lookup(&self) {
        self.receipt_lookups.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one Groth16 check of `proofs` proofs together (1: a proof alone).
    pub fn batch_checked(&self, proofs: usize) {
        let proofs = u64::try_from(proofs).unwrap_or(u64::MAX);
        self.proofs_checked.fetch_add(proofs, Ordering::Relaxed);
        let bucket = BATCH_BUCKETS
            .iter()
            .position(|&bound| proofs <= bound)
            .unwrap_or(BATCH_BUCKETS.len());
        self.batch_sizes[bucket].fetch_add(1, Ordering::Relaxed);
        self.batches.fetch_add(1, Ordering::Relaxed);
    }

    /// Groth16 checks run so far (a batch counts once).
    pub fn batches(&self) -> u64 {
        self.batches.load(Ordering::Relaxed)
    }

    /// Proofs in Groth16 checks so far.
    pub fn proofs_checked(&self) -> u64 {
        self.proofs_checked.load(Ordering::Relaxed)
    }

    /// Counts a request refused because every verification slot and the bounded queue
    /// before them were taken.
    pub fn verification_shed(&self) {
        self.verifications_shed.fetch_add(1, Ordering::Relaxed);
    }

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

    /// Sets how many blocks the newest block is ahead of the last one the watcher
    /// processed (finality depth included).
    pub fn set_watcher_lag(&self, blocks: u64) {
        self.watcher_lag.store(blocks, Ordering::Relaxed);
    }

    /// Sets the parameter alarm: service stopped because the vault pins what this gateway
    /// does not serve.
    pub fn set_parameters_mismatch(&self, on: bool) {
        self.parameters_mismatch
            .store(u64::from(on), Ordering::Relaxed);
    }

    /// Whether the watcher's alarm is raised.
    pub fn watcher_alarm(&self) -> bool {
        self.watcher_alarm.load(Ordering::Relaxed) != 0
    }

    /// Records how long `stage` took for one request.
    pub fn observe(&self, stage: Stage, duration: Duration) {
        self.stages[stage as usize].observe(duration);
    }

    /// What `stage` has summed so far.
    pub fn stage_total(&self, stage: Stage) -> StageTotal {
        let histogram = &self.stages[stage as usize];
        StageTotal {
            count: histogram.count.load(Ordering::Relaxed),
            sum: Duration::from_nanos(histogram.sum_nanos.load(Ordering::Relaxed)),
        }
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
            "nullgate_gateway_proofs_verified_total",
            "Proofs in Groth16 checks (a proof in a batch counts once; a failing batch's proofs again, alone).",
            &self.proofs_checked,
            "counter",
        );
        counter(
            "nullgate_gateway_slashes_submitted_total",
            "Slash transactions submitted (nullgate_gateway_slashes_total counts the confirmed).",
            &self.slashes_submitted,
            "counter",
        );
        counter(
            "nullgate_gateway_exits_recorded_total",
            "Exit shares from the chain (ExitInitiated, NoteClosed) recorded in the store.",
            &self.exits_recorded,
            "counter",
        );
        counter(
            "nullgate_gateway_clearances_total",
            "Clearances signed for mutual closes (the same share asked again counts again).",
            &self.clearances,
            "counter",
        );
        counter(
            "nullgate_gateway_receipt_lookups_total",
            "Receipt look-ups answered (restoring wallets walking their receipts).",
            &self.receipt_lookups,
            "counter",
        );
        counter(
            "nullgate_gateway_verifications_shed_total",
            "Requests refused (429) because the verification queue was full.",
            &self.verifications_shed,
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
        counter(
            "nullgate_gateway_parameters_mismatch",
            "1 while the vault pins a price list, OHTTP keys or state key this gateway does not serve (service stopped).",
            &self.parameters_mismatch,
            "gauge",
        );
        counter(
            "nullgate_gateway_watcher_lag_blocks",
            "Blocks between the newest one and the last one the watcher processed.",
            &self.watcher_lag,
            "gauge",
        );
        let name = "nullgate_gateway_verification_batch_size";
        out.push_str(&format!(
            "# HELP {name} Proofs per Groth16 check.\n# TYPE {name} histogram\n"
        ));
        let mut cumulative = 0;
        for (i, bucket) in self.batch_sizes.iter().enumerate() {
            cumulative += bucket.load(Ordering::Relaxed);
            let le = BATCH_BUCKETS
                .get(i)
                .map_or_else(|| "+Inf".to_owned(), |bound| bound.to_string());
            out.push_str(&format!("{name}_bucket{{le=\"{le}\"}} {cumulative}\n"));
        }
        out.push_str(&format!(
            "{name}_sum {}\n{name}_count {}\n",
            self.proofs_checked.load(Ordering::Relaxed),
            self.batches.load(Ordering::Relaxed)
        ));
        let name = "nullgate_gateway_stage_seconds";
        out.push_str(&format!(
            "# HELP {name} Time paid requests spend in each pipeline stage.\n# TYPE {name} histogram\n"
        ));
        for stage in Stage::ALL {
            let histogram = &self.stages[stage as usize];
            let label = stage.label();
            let mut cumulative = 0;
            for (i, bucket) in histogram.buckets.iter().enumerate() {
                cumulative += bucket.load(Ordering::Relaxed);
                let le = BUCKETS_SECONDS
                    .get(i)
                    .map_or_else(|| "+Inf".to_owned(), |bound| bound.to_string());
                out.push_str(&format!(
                    "{name}_bucket{{stage=\"{label}\",le=\"{le}\"}} {cumulative}\n"
                ));
            }
            let total = self.stage_total(stage);
            out.push_str(&format!(
                "{name}_sum{{stage=\"{label}\"}} {}\n{name}_count{{stage=\"{label}\"}} {}\n",
                total.sum.as_secs_f64(),
                total.count
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stage_histogram_renders_cumulative_buckets_sum_and_count() {
        let metrics = Metrics::default();
        metrics.observe(Stage::Verify, Duration::from_micros(800));
        metrics.observe(Stage::Verify, Duration::from_millis(3));
        metrics.observe(Stage::Verify, Duration::from_secs(2));
        let text = metrics.render();
        let line = |needle: &str| {
            text.lines()
                .find(|l| l.starts_with(needle))
                .unwrap_or_else(|| panic!("no line {needle} in\n{text}"))
                .rsplit(' ')
                .next()
                .unwrap()
                .to_owned()
        };
        let bucket = "nullgate_gateway_stage_seconds_bucket{stage=\"verify\"";
        assert_eq!(line(&format!("{bucket},le=\"0.0005\"}}")), "0");
        assert_eq!(line(&format!("{bucket},le=\"0.001\"}}")), "1");
        assert_eq!(line(&format!("{bucket},le=\"0.005\"}}")), "2");
        assert_eq!(line(&format!("{bucket},le=\"1\"}}")), "2");
        assert_eq!(line(&format!("{bucket},le=\"+Inf\"}}")), "3");
        assert_eq!(
            line("nullgate_gateway_stage_seconds_count{stage=\"verify\"}"),
            "3"
        );
        assert_eq!(
            line("nullgate_gateway_stage_seconds_sum{stage=\"verify\"}"),
            "2.0038"
        );
        assert_eq!(
            line("nullgate_gateway_stage_seconds_count{stage=\"reserve\"}"),
            "0"
        );
        let before = StageTotal::default();
        assert_eq!(
            metrics.stage_total(Stage::Verify).mean_since(&before),
            Duration::from_nanos(2_003_800_000 / 3)
        );
        assert_eq!(
            metrics.stage_total(Stage::Lookup).mean_since(&before),
            Duration::ZERO
        );
    }
}

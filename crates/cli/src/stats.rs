//! Small measuring helpers shared by the benchmarks.

use std::time::Duration;

use nullgate_gateway::metrics::{Metrics, Stage, StageTotal};

/// The `p`-th percentile (nearest rank) in milliseconds; NaN for no samples.
pub(crate) fn percentile_ms(samples: &[Duration], p: usize) -> f64 {
    let mut sorted: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
    sorted.sort_by(f64::total_cmp);
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (p * sorted.len()).div_ceil(100).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// The process's peak resident set (`VmHWM`), in MB.
pub(crate) fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// The gateway's per-stage counters at one moment: the exact totals (count and summed
/// duration, from [`Metrics::stage_total`]) and the histogram buckets of `/metrics`
/// (`nullgate_gateway_stage_seconds`), so a benchmark can report, for the requests between
/// two snapshots, each stage's mean (exact) and percentiles (estimated within a bucket).
#[derive(Clone, Debug)]
pub(crate) struct StageSnapshot {
    totals: [StageTotal; Stage::ALL.len()],
    /// Per stage in [`Stage::ALL`] order: (bucket upper bound in seconds, cumulative
    /// count), the `+Inf` bucket last with an infinite bound.
    buckets: Vec<Vec<(f64, u64)>>,
}

impl StageSnapshot {
    /// The counters of `metrics` now.
    pub(crate) fn take(metrics: &Metrics) -> Self {
        let text = metrics.render();
        Self {
            totals: Stage::ALL.map(|stage| metrics.stage_total(stage)),
            buckets: Stage::ALL
                .iter()
                .map(|stage| stage_buckets(&text, stage.label()))
                .collect(),
        }
    }

    /// Each stage's mean duration in ms over the requests since `before`, in pipeline
    /// order (zero for a stage that did not run).
    pub(crate) fn means_ms_since(&self, before: &Self) -> Vec<(&'static str, f64)> {
        Stage::ALL
            .iter()
            .zip(self.totals.iter().zip(&before.totals))
            .map(|(stage, (now, before))| {
                (stage.label(), now.mean_since(before).as_secs_f64() * 1e3)
            })
            .collect()
    }

    /// Each stage's `p`-th percentile in ms since `before`, estimated from the histogram
    /// as Prometheus' `histogram_quantile` does (linear within the bucket holding the
    /// rank; the largest finite bound if it falls in `+Inf`); NaN for a stage that did not
    /// run. The buckets are coarse (0.1, 0.25, 0.5, 1, 2.5, 5, 10 ms …): an estimate only.
    pub(crate) fn percentile_ms_since(&self, before: &Self, p: usize) -> Vec<(&'static str, f64)> {
        Stage::ALL
            .iter()
            .zip(self.buckets.iter().zip(&before.buckets))
            .map(|(stage, (now, before))| {
                let delta: Vec<(f64, u64)> = now
                    .iter()
                    .map(|&(bound, count)| {
                        let earlier = before
                            .iter()
                            .find(|(b, _)| *b == bound)
                            .map_or(0, |&(_, c)| c);
                        (bound, count.saturating_sub(earlier))
                    })
                    .collect();
                (stage.label(), histogram_percentile(&delta, p) * 1e3)
            })
            .collect()
    }
}

/// The cumulative buckets of `stage` in a `/metrics` text.
fn stage_buckets(text: &str, stage: &str) -> Vec<(f64, u64)> {
    let prefix = format!("nullgate_gateway_stage_seconds_bucket{{stage=\"{stage}\",le=\"");
    text.lines()
        .filter_map(|line| {
            let rest = line.strip_prefix(&prefix)?;
            let (bound, count) = rest.split_once("\"} ")?;
            let bound = if bound == "+Inf" {
                f64::INFINITY
            } else {
                bound.parse().ok()?
            };
            Some((bound, count.trim().parse().ok()?))
        })
        .collect()
}

/// The `p`-th percentile of a cumulative histogram `(upper bound, cumulative count)` in
/// bound order, in the bounds' unit; NaN when empty.
fn histogram_percentile(cumulative: &[(f64, u64)], p: usize) -> f64 {
    let Some(&(_, total)) = cumulative.last() else {
        return f64::NAN;
    };
    if total == 0 {
        return f64::NAN;
    }
    let rank = p as f64 / 100.0 * total as f64;
    let (mut lower, mut below) = (0.0, 0u64);
    for &(bound, count) in cumulative {
        if count as f64 >= rank && count > below {
            if bound.is_infinite() {
                return lower;
            }
            return lower + (bound - lower) * (rank - below as f64) / (count - below) as f64;
        }
        lower = bound;
        below = count;
    }
    lower
}

/// CPU time this process has used (user + system, all threads, also those that ended),
/// from `/proc/self/stat`, in clock ticks of 10 ms (Linux's fixed `USER_HZ` of 100).
pub(crate) fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may hold spaces) start at its closing bracket;
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after it.
    let after = stat.rsplit_once(')')?.1;
    let mut fields = after.split_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some((user + system) as f64 / 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles() {
        let samples: Vec<Duration> = (1..=10).map(Duration::from_millis).collect();
        assert_eq!(percentile_ms(&samples, 50), 5.0);
        assert_eq!(percentile_ms(&samples, 90), 9.0);
        assert!(percentile_ms(&[], 50).is_nan());
    }

    #[test]
    fn histogram_percentiles_interpolate_within_the_bucket() {
        // 10 observations: 4 at most 1 ms, 4 more at most 2 ms, 2 above 5 ms.
        let cumulative = [(0.001, 4), (0.002, 8), (0.005, 8), (f64::INFINITY, 10)];
        // Rank 5 is the first of the 4 in (1 ms, 2 ms]: a quarter of the way in.
        assert!((histogram_percentile(&cumulative, 50) - 0.00125).abs() < 1e-12);
        assert!((histogram_percentile(&cumulative, 40) - 0.001).abs() < 1e-12);
        // Rank 9.9 is in +Inf: the largest finite bound.
        assert_eq!(histogram_percentile(&cumulative, 99), 0.005);
        assert!(histogram_percentile(&[(0.001, 0), (f64::INFINITY, 0)], 50).is_nan());
    }

    #[test]
    fn stage_buckets_are_read_from_the_exposition() {
        let metrics = Metrics::default();
        metrics.observe(Stage::Verify, Duration::from_micros(800));
        metrics.observe(Stage::Verify, Duration::from_millis(3));
        let before = StageSnapshot::take(&Metrics::default());
        let now = StageSnapshot::take(&metrics);
        let verify = now.buckets[1].clone();
        assert_eq!(verify.last(), Some(&(f64::INFINITY, 2)));
        assert_eq!(verify.iter().find(|(b, _)| *b == 0.001), Some(&(0.001, 1)));
        let means = now.means_ms_since(&before);
        assert_eq!(means[1].0, "verify");
        assert!((means[1].1 - 1.9).abs() < 1e-9, "{means:?}");
        let p50 = now.percentile_ms_since(&before, 50);
        // Rank 1 of 2 is the one in (0.5 ms, 1 ms], at its upper bound.
        assert!((p50[1].1 - 1.0).abs() < 1e-9, "{p50:?}");
        assert!(p50[0].1.is_nan());
    }
}

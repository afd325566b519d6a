//! Small measuring helpers shared by the benchmarks.

use std::time::Duration;

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
}

//! `nullgate bench net --json` with small counts: every figure TARGETS.md and issue 4 name is
//! in the report, measured (finite and positive), beside its same-run reference. And
//! `nullgate bench client --json` likewise on the local stack, and `nullgate bench gateway`
//! on a small cached pool.

mod common;
use common::{json_of, nullgate};

#[test]
fn bench_net_reports_every_figure_with_its_reference() {
    let report = json_of(nullgate().args([
        "bench",
        "net",
        "--json",
        "--packets",
        "30",
        "--seals",
        "5",
        "--requests",
        "3",
        "--round-trips",
        "3",
        "--calls",
        "1",
    ]));
    for key in [
        "sphinx_create_us_p50",
        "sphinx_hop_us_p50",
        "sphinx_hop_reference_us_p50",
        "sphinx_hop_vs_reference",
        "x25519_us_p50",
        "node_packets_per_s",
        "node_packets_per_s_all_cores",
        "ohttp_round_trip_us_p50",
        "ohttp_loopback_ms_p50",
        "mixnet_rtt_ms_p50_zero_delay",
        "mixnet_added_ms_per_hop_p50_zero_delay",
        "mixnet_call_ms_p50_zero_delay",
        "mixnet_call_ms_p50_default_delay",
    ] {
        let value = report[key]
            .as_f64()
            .unwrap_or_else(|| panic!("{key} missing from {report}"));
        assert!(value.is_finite() && value > 0.0, "{key} = {value}");
    }
    // A Sphinx hop does two key exchanges, so it cannot be cheaper than one.
    assert!(report["sphinx_hop_us_p50"].as_f64() > report["x25519_us_p50"].as_f64());
}

#[test]
fn bench_net_refuses_zero_counts() {
    let out = nullgate()
        .args(["bench", "net", "--json", "--packets", "0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least 1"));
}

#[test]
fn bench_client_reports_every_figure() {
    let report = json_of(nullgate().args([
        "bench",
        "client",
        "--json",
        "--calls",
        "5",
        "--warmup",
        "1",
        "--sustained-notes",
        "1,2",
        "--sustained-seconds",
        "3",
    ]));
    for key in [
        "sign_us_p50",
        "journal_us_p50",
        "seal_us_p50",
        "critical_path_us_p50",
        "client_sign_journal_us_p50",
        "direct_ms_p50",
        "paid_ms_p50",
        "added_latency_ms_p50",
        "added_latency_pairs_ms_p50",
        "pregenerated_share",
    ] {
        let value = report[key]
            .as_f64()
            .unwrap_or_else(|| panic!("{key} missing from {report}"));
        assert!(value.is_finite() && value > 0.0, "{key} = {value}");
    }
    // Every part of the critical path is inside its total.
    let total = report["critical_path_us_p50"].as_f64().unwrap();
    for part in ["sign_us_p50", "journal_us_p50", "seal_us_p50"] {
        assert!(
            report[part].as_f64().unwrap() <= total,
            "{part} > total in {report}"
        );
    }
    // One wallet's sustained rate, per note count asked for, each run answered.
    let sustained = report["sustained"].as_array().unwrap();
    let notes: Vec<u64> = sustained
        .iter()
        .map(|r| r["notes"].as_u64().unwrap())
        .collect();
    assert_eq!(notes, [1, 2]);
    for run in sustained {
        assert!(run["answered"].as_u64().unwrap() > 0, "{run}");
        assert_eq!(run["failed"], 0, "{run}");
        assert!(run["requests_per_s"].as_f64().unwrap() > 0.0, "{run}");
        let ready = run["ready_share"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&ready), "{run}");
    }
}

#[test]
fn bench_gateway_measures_a_cached_pool_of_real_credentials() {
    let pools = tempfile::tempdir().unwrap();
    let run = || {
        json_of(nullgate().args([
            "bench",
            "gateway",
            "--json",
            "--pool",
            "8",
            "--store",
            "sqlite",
            "--pool-dir",
            pools.path().to_str().unwrap(),
        ]))
    };
    let first = run();
    assert_eq!(first["pool"]["size"], 8);
    assert_eq!(first["pool"]["proved_this_run"], 8);
    let store = &first["stores"][0];
    assert_eq!(store["store"], "sqlite");
    for (phase, key) in [
        ("peak", "paid_per_s"),
        ("peak", "latency_ms_p99"),
        ("half_load", "paid_ms_p99"),
        ("half_load", "direct_ms_p99"),
    ] {
        let value = store[phase][key]
            .as_f64()
            .unwrap_or_else(|| panic!("{phase}.{key} missing from {first}"));
        assert!(value.is_finite() && value > 0.0, "{phase}.{key} = {value}");
    }
    assert!(
        store["half_load"]["added_ms_p99"]
            .as_f64()
            .unwrap()
            .is_finite()
    );
    assert_eq!(store["peak"]["failures"], serde_json::json!({}));
    assert!(
        store["stages_half_load"]["mean_ms"]["verify"]
            .as_f64()
            .unwrap()
            > 0.0
    );
    // The second run proves nothing: the pool is read back and checked against the chain.
    let second = run();
    assert_eq!(second["pool"]["reused"], true, "{second}");
    assert!(second["pool"]["prove_seconds"].is_null(), "{second}");
    assert_eq!(
        second["stores"][0]["peak"]["failures"],
        serde_json::json!({})
    );
}

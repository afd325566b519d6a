#!/usr/bin/env bash
# nullgate-net: check the `tor` feature, then fuzz every network parser for a bounded time (cargo-fuzz from crates.io;
# libFuzzer's -Z flags on the stable toolchain through RUSTC_BOOTSTRAP).
set -euo pipefail
cd "$(dirname "$0")/../.."

# Embedded Tor compiles (not in the default build: arti is about 390 crates).
echo "-- cargo check -p nullgate-net --features tor"
cargo check -p nullgate-net --features tor --locked --quiet

if ! command -v cargo-fuzz >/dev/null 2>&1; then
    echo "-- installing cargo-fuzz from crates.io"
    cargo install cargo-fuzz --locked --quiet
fi

seconds="${NULLGATE_FUZZ_SECONDS:-20}"
log="$(mktemp)"
cd crates/net
for target in packet directory fragment ohttp exit; do
    echo "-- fuzz $target for ${seconds}s"
    if ! RUSTC_BOOTSTRAP=1 cargo fuzz run "$target" -- -max_total_time="$seconds" \
        -rss_limit_mb=2048 >"$log" 2>&1; then
        tail -40 "$log" >&2
        echo "fuzz target $target failed; the input is in crates/net/fuzz/artifacts/$target" >&2
        exit 1
    fi
    grep -E "^Done [0-9]+ runs" "$log" || tail -3 "$log"
done

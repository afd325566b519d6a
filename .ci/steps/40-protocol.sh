#!/usr/bin/env bash
# nullgate-protocol: fuzz every parser of what a gateway or client reads from its peer for a
# bounded time (cargo-fuzz as in 30-net.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."

if ! command -v cargo-fuzz >/dev/null 2>&1; then
    echo "-- installing cargo-fuzz from crates.io"
    cargo install cargo-fuzz --locked --quiet
fi

seconds="${NULLGATE_FUZZ_SECONDS:-20}"
log="$(mktemp)"
cd crates/protocol
for target in credential receipt documents; do
    echo "-- fuzz $target for ${seconds}s"
    if ! RUSTC_BOOTSTRAP=1 cargo fuzz run "$target" -- -max_total_time="$seconds" \
        -rss_limit_mb=2048 >"$log" 2>&1; then
        tail -40 "$log" >&2
        echo "fuzz target $target failed; the input is in crates/protocol/fuzz/artifacts/$target" >&2
        exit 1
    fi
    grep -E "^Done [0-9]+ runs" "$log" || tail -3 "$log"
done

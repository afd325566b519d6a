#!/usr/bin/env bash
# Fuzzes each named target of one crate's fuzz project for a bounded time:
#   bash .ci/lib/fuzz.sh <crate dir> <target>...
# cargo-fuzz from crates.io if missing; libFuzzer's -Z flags on the stable toolchain through
# RUSTC_BOOTSTRAP. Every fuzz project builds into one target directory, so the dependencies
# they share (arkworks, the protocol and net crates) are compiled once.
set -euo pipefail
cd "$(dirname "$0")/../.."

if ! command -v cargo-fuzz >/dev/null 2>&1; then
    echo "-- installing cargo-fuzz from crates.io"
    cargo install cargo-fuzz --locked --quiet
fi

crate="$1"
shift
seconds="${NULLGATE_FUZZ_SECONDS:-20}"
target_dir="${CARGO_TARGET_DIR:-$PWD/target}/fuzz"
log="$(mktemp)"
cd "$crate"
for target in "$@"; do
    echo "-- fuzz $crate $target for ${seconds}s"
    if ! RUSTC_BOOTSTRAP=1 cargo fuzz run --target-dir "$target_dir" "$target" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 >"$log" 2>&1; then
        tail -40 "$log" >&2
        echo "fuzz target $target failed; the input is in $crate/fuzz/artifacts/$target" >&2
        exit 1
    fi
    grep -E "^Done [0-9]+ runs" "$log" || tail -3 "$log"
done

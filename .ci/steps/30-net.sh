#!/usr/bin/env bash
# nullgate-net: lint the `tor` feature (with the proxy's use of it), then fuzz every network parser for a bounded time.
set -euo pipefail
cd "$(dirname "$0")/../.."

# Embedded Tor compiles, lint-clean, in the library and in the proxy's `kind = "tor"` (not in
# the default build: arti is about 390 crates).
echo "-- cargo clippy -p nullgate-cli --features tor"
cargo clippy -p nullgate-cli --features tor --all-targets --locked --quiet -- -D warnings

bash .ci/lib/fuzz.sh crates/net packet directory fragment ohttp exit

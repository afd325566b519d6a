#!/usr/bin/env bash
# nullgate-net: check the `tor` feature, then fuzz every network parser for a bounded time.
set -euo pipefail
cd "$(dirname "$0")/../.."

# Embedded Tor compiles (not in the default build: arti is about 390 crates).
echo "-- cargo check -p nullgate-net --features tor"
cargo check -p nullgate-net --features tor --locked --quiet

bash .ci/lib/fuzz.sh crates/net packet directory fragment ohttp exit

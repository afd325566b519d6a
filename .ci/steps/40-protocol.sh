#!/usr/bin/env bash
# nullgate-protocol: fuzz every parser of what a gateway or client reads from its peer for a
# bounded time.
set -euo pipefail
cd "$(dirname "$0")/../.."

bash .ci/lib/fuzz.sh crates/protocol credential receipt documents

#!/usr/bin/env bash
# Contracts: pinned toolchain from npm, generated Solidity and compiled artifacts reproducible,
# Foundry tests. Run from anywhere; needs node/npm and cargo.
set -euo pipefail
cd "$(dirname "$0")/../.."

echo "-- npm ci (solc, forge, anvil at the versions in contracts/package-lock.json)"
(cd contracts && npm ci --no-audit --no-fund)

echo "-- regenerate the Poseidon library, its vectors, and the exit verifier (DEV key) with its proof fixture"
cargo run --locked --quiet -p nullgate-solgen -- poseidon
cargo run --locked --quiet -p nullgate-solgen -- exit-verifier

cd contracts
export HOME="${HOME:-/tmp}"
echo "-- forge build (offline, solcjs) and export the artifacts"
node_modules/.bin/forge build --force
node tools/export-artifacts.mjs

echo "-- generated files and artifacts must match the committed ones"
generated=(src/generated test/generated artifacts)
if ! git diff --exit-code --stat -- "${generated[@]}" \
    || [ -n "$(git ls-files --others --exclude-standard -- "${generated[@]}")" ]; then
    echo "contracts: generated Solidity or artifacts differ from the committed ones." >&2
    echo "Regenerate (cargo run -p nullgate-solgen -- poseidon; ... -- exit-verifier; forge build --force; node tools/export-artifacts.mjs) and commit." >&2
    exit 1
fi

echo "-- forge test"
node_modules/.bin/forge test

#!/usr/bin/env bash
# Runs script/GasOnAnvil.s.sol against a fresh anvil (npm, 127.0.0.1, a free port) and
# prints each transaction's gasUsed from the receipts. Run from contracts/ after `npm ci`.
set -euo pipefail
cd "$(dirname "$0")/.."
port="${PORT:-$((20000 + RANDOM % 20000))}"
node_modules/.bin/anvil --host 127.0.0.1 --port "$port" --silent &
anvil_pid=$!
trap 'kill "$anvil_pid" 2>/dev/null || true' EXIT
for _ in $(seq 50); do
    curl -sf -H 'content-type: application/json' \
        -d '{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}' \
        "http://127.0.0.1:$port" >/dev/null && break
    sleep 0.2
done
node_modules/.bin/forge script script/GasOnAnvil.s.sol --rpc-url "http://127.0.0.1:$port" \
    --broadcast --slow --skip-simulation >/dev/null
node -e '
const run = require(process.argv[1]);
const labels = ["deploy GasMeasuringExitVerifier", "deploy NoteVault (ETH)", "deposit ETH, first note",
  "deposit ETH, steady state", "deposit ETH, third note", "initiateExit (real exit verifier on a real exit proof, via GasMeasuringExitVerifier)",
  "slash, credit from zero", "slash, credit non-zero", "deploy TestToken", "deploy NoteVault (ERC-20)",
  "mint", "approve", "deposit ERC-20, first note", "deposit ERC-20, steady state"];
run.receipts.forEach((r, i) => console.log(`${labels[i] ?? i}: ${parseInt(r.gasUsed, 16)}`));
' "$PWD/broadcast/GasOnAnvil.s.sol/31337/run-latest.json"

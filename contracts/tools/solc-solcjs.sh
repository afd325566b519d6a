#!/usr/bin/env bash
# Presents npm's solcjs (pinned in package.json) to forge as a native solc, so that forge
# never downloads a compiler. Forge calls `solc --version` and
# `solc --allow-paths ROOT --base-path ROOT --standard-json` (input on stdin).
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
SOLCJS="${SOLCJS:-$here/../node_modules/.bin/solcjs}"
args=()
skip=0
for a in "$@"; do
    if [ "$skip" = 1 ]; then skip=0; continue; fi
    case "$a" in
        --allow-paths) skip=1 ;; # solcjs does not know it
        --allow-paths=*) ;;
        *) args+=("$a") ;;
    esac
done
# Forge's stdin pipe can be non-blocking, and node's synchronous stdin read then fails with
# EAGAIN on large inputs: hand solcjs a regular file instead.
# Likewise node truncates its output at 128 KiB when stdout is a pipe and solcjs exits at
# once: write to a regular file too.
input="$(mktemp)"
output="$(mktemp)"
trap 'rm -f "$input" "$output"' EXIT
cat > "$input"
"$SOLCJS" "${args[@]}" < "$input" > "$output"
status=$?
# solcjs prints an SMT notice (">>> …") on stdout before the JSON: drop it.
grep -v '^>>> ' "$output"
exit "$status"

#!/usr/bin/env bash
# The official `openai` Python package, pinned, in a virtualenv outside the clone (from PyPI),
# for crates/cli/tests/openai_sdk.rs; and curl, which that test also drives. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/../.."

openai_version="3.57.0"
venv="${NULLGATE_VENV:-${HOME}/.cache/nullgate-venv}"

if ! command -v curl >/dev/null 2>&1; then
    echo "-- installing curl"
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq curl
fi

if [ ! -x "$venv/bin/python" ]; then
    echo "-- python3 -m venv $venv"
    mkdir -p "$(dirname "$venv")"
    python3 -m venv "$venv"
fi

installed="$("$venv/bin/python" -c 'import openai; print(openai.__version__)' 2>/dev/null || true)"
if [ "$installed" != "$openai_version" ]; then
    echo "-- pip install openai==$openai_version (PyPI)"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "openai==$openai_version"
fi
echo "-- openai $("$venv/bin/python" -c 'import openai; print(openai.__version__)') in $venv"

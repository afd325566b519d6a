#!/usr/bin/env bash
# The official `openai`, `anthropic` and `ollama` Python packages, pinned, in a virtualenv
# outside the clone (from PyPI), for crates/cli/tests/agent_sdks.rs; and curl, which that test
# also drives. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/../.."

openai_version="3.57.0"
anthropic_version="2.16.0"
ollama_version="0.6.3"
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

for pinned in "openai==$openai_version" "anthropic==$anthropic_version" "ollama==$ollama_version"; do
    package="${pinned%%==*}"
    wanted="${pinned##*==}"
    installed="$("$venv/bin/python" -c "import importlib.metadata as m; print(m.version('$package'))" 2>/dev/null || true)"
    if [ "$installed" != "$wanted" ]; then
        echo "-- pip install $pinned (PyPI)"
        "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$pinned"
    fi
    echo "-- $package $("$venv/bin/python" -c "import importlib.metadata as m; print(m.version('$package'))") in $venv"
done

#!/usr/bin/env bash
# Idempotent set-up: a virtual environment in .venv with speechreps (editable) and what it needs.
# A second run only checks that nothing changed. No torch present -> the pinned CPU-friendly
# torch==2.13.0 is installed first, so that pip does not pick a multi-GB build on its own; the
# package itself asks for a normal range (pyproject.toml).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    echo "setup: creating .venv with $($PYTHON --version)" >&2
    "$PYTHON" -m venv .venv
fi
# shellcheck disable=SC1091
. .venv/bin/activate
stamp=.venv/.speechreps-installed
want=$(cat pyproject.toml | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && python -c 'import speechreps, torch' 2>/dev/null; then
    exit 0
fi
export PIP_DISABLE_PIP_VERSION_CHECK=1
if ! python -c 'import torch' 2>/dev/null; then
    echo "setup: installing torch==2.13.0" >&2
    pip install -q torch==2.13.0
fi
echo "setup: installing speechreps and its dependencies" >&2
pip install -q -e '.[test,bench,encoders]'
echo "$want" > "$stamp"

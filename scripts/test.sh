#!/usr/bin/env bash
# Set up (idempotent), check the wheel as the container images install it (scripts/check_wheel.sh;
# SPEECHREPS_SKIP_WHEEL_CHECK=1 skips it), then run the test suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
wheel=0
if [ "${SPEECHREPS_SKIP_WHEEL_CHECK:-0}" != 1 ]; then
    bash scripts/check_wheel.sh || wheel=$?
fi
.venv/bin/python -m pytest "$@" || exit $?
[ "$wheel" = 0 ] || { echo "test.sh: scripts/check_wheel.sh failed (exit $wheel)" >&2; exit "$wheel"; }

#!/usr/bin/env bash
# Set up (idempotent) and run the main job on the built-in corpus: build it, prepare features,
# train every representation with the demo configs, evaluate, extract, and write the report.
# Extra arguments go to `speechreps run` (see `speechreps run --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/speechreps run "$@"

#!/usr/bin/env bash
# The GPU check for a lent device machine: one table (DTW wavefront, training with and without AMP,
# a one-process NCCL DDP step; --main-job adds the main job's training stage). The device image has
# torch, numba and scipy but not librosa / espeakng-loader, so the main job needs those carried as
# wheels. Runs from the repository root with the image's python3 and PYTHONPATH=src, no install.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH=src${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
exec "${PYTHON:-python3}" bench/gpu.py "$@"

#!/bin/sh
# Install speechreps from its wheel with the pinned versions the wheel check tested.
#
#   sh docker/install.sh WHEEL_DIR CONSTRAINTS [keep-torch]
#
# WHEEL_DIR holds speechreps-*.whl; CONSTRAINTS is docker/constraints.txt (every package the wheel
# check installed, at the version it installed; written by `scripts/check_wheel.sh --update-lock`).
# With "keep-torch" the torch already in the environment stays (the GPU image's base image brings a
# CUDA build with NCCL); otherwise torch is installed first at its pinned version. Run by both
# Dockerfiles and by scripts/check_wheel.sh, so that the check tests exactly what the images do.
# Package indexes come from pip's own settings (PIP_INDEX_URL, PIP_EXTRA_INDEX_URL, pip.conf).
set -eu
wheels=$1
constraints=$2
mode=${3:-}
pin=$(mktemp)
if [ "$mode" = keep-torch ]; then
    python -c 'import torch' || { echo "install.sh: keep-torch, but no torch is installed" >&2; exit 2; }
    grep -v '^torch==' "$constraints" > "$pin"
else
    cp "$constraints" "$pin"
    python -m pip install --no-cache-dir -q -c "$pin" torch
fi
set -- "$wheels"/speechreps-*.whl
[ -f "$1" ] || { echo "install.sh: no speechreps wheel in $wheels" >&2; exit 2; }
python -m pip install --no-cache-dir -q -c "$pin" "$1"
rm -f "$pin"

#!/usr/bin/env bash
# The container recipe without a container engine: build the wheel from the source files the
# Dockerfiles copy, install it into a fresh virtual environment (under the ignored build/) with
# docker/install.sh and the pinned versions of docker/constraints.txt, check that what got
# installed is exactly that lock, and run docker/smoke_test.sh from a folder where only the
# installed package imports. Pinned packages .venv holds at the pinned version are hard-linked
# from there (scripts/link_installed.py), so that the check needs little disk, not 1.6 GB.
# The Dockerfiles run the same two scripts. Lints the Dockerfiles with hadolint when installed
# (the `test` extra installs it).
#
#   bash scripts/check_wheel.sh                # the check (about 2 minutes on 2 cores)
#   bash scripts/check_wheel.sh --update-lock  # install without the lock (torch: $TORCH_VERSION,
#                                              # default 2.13.0), then write what got installed as the lock
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
lock="$repo/docker/constraints.txt"
update=0
[ "${1:-}" = "--update-lock" ] && update=1
PYTHON=${PYTHON:-python3}
# The work folder lies in the checkout's ignored build/ (not in $TMPDIR, which may be a small
# tmpfs), on the same file system as .venv, so that packages can be hard-linked from there.
mkdir -p "$repo/build"
work=$(mktemp -d "$repo/build/wheel-check.XXXXXX")
trap 'rm -rf "$work"' EXIT
export PIP_DISABLE_PIP_VERSION_CHECK=1
export PIP_NO_COMPILE=1  # no .pyc for all of torch: minutes on a busy machine; imports compile what they use
t0=$(date +%s)
say() { echo "check_wheel: $* ($(($(date +%s) - t0)) s)" >&2; }

if command -v hadolint >/dev/null 2>&1 || [ -x "$repo/.venv/bin/hadolint" ]; then
    lint=$(command -v hadolint || echo "$repo/.venv/bin/hadolint")
    "$lint" --config "$repo/docker/hadolint.yaml" "$repo"/docker/Dockerfile.*
    say "hadolint: Dockerfiles clean"
else
    say "hadolint not installed; Dockerfiles not linted (pip install -e '.[test]' installs it)"
fi

# 1. the wheel, built from what the Dockerfiles' build stage copies
mkdir "$work/src" "$work/dist"
tar -C "$repo" --exclude=__pycache__ --exclude='*.egg-info' -cf - pyproject.toml README.md src | tar -xf - -C "$work/src"
"$PYTHON" -m pip wheel -q --no-deps --wheel-dir "$work/dist" "$work/src" >/dev/null
say "built $(basename "$work"/dist/speechreps-*.whl)"

# 2. a fresh environment, installed as the images install it
"$PYTHON" -m venv "$work/venv"
# What .venv already holds at the pinned versions is hard-linked from there (1.6 GB as a second
# copy ran a CI machine out of disk); pip then finds it installed, as after installing those wheels.
if [ "$update" = 0 ] && [ -x "$repo/.venv/bin/python" ]; then
    "$repo/.venv/bin/python" "$repo/scripts/link_installed.py" "$lock" "$work/venv" || true
fi
export PATH="$work/venv/bin:$PATH"
if [ "$update" = 1 ]; then
    echo "torch==${TORCH_VERSION:-2.13.0}" > "$work/torch.txt"  # the rest at the newest versions pip finds
    sh "$repo/docker/install.sh" "$work/dist" "$work/torch.txt"
    python -m pip freeze --exclude speechreps | sed 's/+[A-Za-z0-9.]*$//' | sort -f > "$work/frozen.txt"
    { echo "# Every package scripts/check_wheel.sh installed with the speechreps wheel, at the version it"
      echo "# installed and tested (Python $(python -c 'import platform; print(platform.python_version())')). Rewrite with: bash scripts/check_wheel.sh --update-lock"
      cat "$work/frozen.txt"; } > "$lock"
    say "wrote $lock ($(wc -l < "$work/frozen.txt") packages)"
else
    sh "$repo/docker/install.sh" "$work/dist" "$lock"
    python -m pip freeze --exclude speechreps | sed 's/+[A-Za-z0-9.]*$//' | sort -f > "$work/frozen.txt"
    if ! diff <(grep -v '^#' "$lock") "$work/frozen.txt" > "$work/lock.diff"; then
        cat "$work/lock.diff" >&2
        echo "check_wheel: the installed packages differ from docker/constraints.txt ('<' lock, '>' installed);" \
             "run: bash scripts/check_wheel.sh --update-lock" >&2
        exit 1
    fi
    say "installed the wheel with the $(grep -vc '^#' "$lock") pinned packages of docker/constraints.txt"
fi
python -m pip check >&2

# 3. the smoke test, from a folder outside the checkout, where only the installed package imports
where=$(cd "$work" && python -c 'import speechreps, os; print(os.path.dirname(speechreps.__file__))')
case "$where" in "$work/venv/"*) ;; *) echo "check_wheel: speechreps imported from $where, not from the fresh environment" >&2; exit 1;; esac
sh "$repo/docker/smoke_test.sh" "$work/smoke"
say "passed"

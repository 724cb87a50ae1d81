"""The container recipe: both Dockerfiles and scripts/check_wheel.sh run the same install and smoke
scripts with the same lock, which pins every dependency; the test command runs the wheel check.
(The check itself, a fresh venv and a tiny end-to-end job, runs in scripts/test.sh: minutes, not a unit test.)"""

from __future__ import annotations

import importlib.metadata as metadata
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILES = [ROOT / "docker" / "Dockerfile.cpu", ROOT / "docker" / "Dockerfile.gpu"]
HADOLINT = shutil.which("hadolint") or shutil.which("hadolint", path=str(Path(sys.executable).parent))


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _lock() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "docker" / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version and re.fullmatch(r"[0-9][0-9A-Za-z.]*", version), f"not an exact pin: {line}"
            pins[_norm(name)] = version
    return pins


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_dockerfiles_install_the_wheel_and_run_the_smoke_test(dockerfile):
    text = dockerfile.read_text()
    assert "pip wheel --no-cache-dir --no-deps --wheel-dir /wheels ." in text
    assert re.search(r"sh /opt/speechreps/install\.sh /opt/speechreps/wheels /opt/speechreps/constraints\.txt", text)
    assert "sh /opt/speechreps/smoke_test.sh" in text
    assert 'VOLUME ["/data", "/checkpoints", "/runs"]' in text
    assert text.rstrip().endswith('CMD ["speechreps", "--help"]')
    for line in text.splitlines():
        if line.startswith("FROM "):  # base images pinned to a version, never latest
            assert re.match(r"FROM \$\{[A-Z_]+\}", line), line
    base = re.search(r"ARG (?:PYTHON|BASE)_IMAGE=(\S+)", text).group(1)
    assert re.search(r":\d+\.\d+\.\d+-", base), base
    if dockerfile.name.endswith("gpu"):  # the base image's CUDA torch stays, and it must have NCCL
        assert "keep-torch" in text and "is_nccl_available()" in text
        assert base.startswith(f"pytorch/pytorch:{_lock()['torch']}-cuda")


def test_the_wheel_check_runs_the_same_scripts_and_the_test_command_runs_it():
    check = (ROOT / "scripts" / "check_wheel.sh").read_text()
    assert 'sh "$repo/docker/install.sh" "$work/dist" "$lock"' in check
    assert 'sh "$repo/docker/smoke_test.sh"' in check
    assert "bash scripts/check_wheel.sh" in (ROOT / "scripts" / "test.sh").read_text()
    smoke = (ROOT / "docker" / "smoke_test.sh").read_text()
    for step in ("speechreps --help", "learn_speech_reps --help", "speechreps synth", "speechreps prepare",
                 "learn_speech_reps apc all", "speechreps samediff"):
        assert step in smoke


def test_the_lock_pins_every_dependency():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lock = _lock()
    for req in meta["dependencies"]:
        name = _norm(re.match(r"[A-Za-z0-9_.-]+", req).group(0))
        assert name in lock, f"{name} (pyproject.toml) is not pinned in docker/constraints.txt"
    assert "speechreps" not in lock


@pytest.mark.skipif(HADOLINT is None, reason="hadolint not installed (the test extra installs it)")
def test_hadolint_passes():
    res = subprocess.run([HADOLINT, "--config", str(ROOT / "docker" / "hadolint.yaml"), *map(str, DOCKERFILES)],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


def test_the_wheel_check_links_pinned_packages_instead_of_copying_them():
    """scripts/link_installed.py (run by check_wheel.sh so that a second 1.6 GB environment does not
    fill a small disk): a package installed here at its pinned version is hard-linked file by file,
    its console script rewritten to the new environment's python; one pinned at another version is
    left for pip to install."""
    tqdm = metadata.distribution("tqdm")
    numpy = metadata.distribution("numpy")
    (ROOT / "build").mkdir(exist_ok=True)  # the check's own place: on .venv's file system
    work = Path(tempfile.mkdtemp(dir=ROOT / "build", prefix="link-test."))
    try:
        venv = work / "venv"
        site = venv / Path(sysconfig.get_paths()["purelib"]).relative_to(sys.prefix)
        site.mkdir(parents=True)
        (work / "lock.txt").write_text(f"# a lock\ntqdm=={tqdm.version}\nnumpy==0.0.1\n")
        run = subprocess.run([sys.executable, str(ROOT / "scripts" / "link_installed.py"),
                              str(work / "lock.txt"), str(venv)], capture_output=True, text=True)
        if run.returncode == 3 and "different file systems" in run.stderr:
            pytest.skip(run.stderr.strip())
        assert run.returncode == 0, run.stderr
        assert "1 pinned packages" in run.stderr
        init = Path(tqdm.locate_file("tqdm/__init__.py"))
        assert os.stat(site / "tqdm" / "__init__.py").st_ino == os.stat(init).st_ino
        assert (site / f"tqdm-{tqdm.version}.dist-info" / "RECORD").is_file()
        script = (venv / "bin" / "tqdm").read_text()
        assert script.splitlines()[0] == f"#!{venv.resolve() / 'bin' / 'python'}"
        assert not (site / "numpy").exists() and numpy.version != "0.0.1"
    finally:
        shutil.rmtree(work)

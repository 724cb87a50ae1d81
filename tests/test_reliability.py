"""What a kill, a second writer or a resumed run leaves: real processes stopped at chosen points.

The child processes kill themselves with SIGKILL at a named point (``SPEECHREPS_KILL_AT``, see
:mod:`speechreps.crash`), so each test hits the exact moment that matters, every time.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from speechreps.cli import main
from speechreps.data.archive import load_archive
from speechreps.data.prepare import PrepareOptions, prepare_corpus
from speechreps.data.registry import load_dataset, read_data_paths
from speechreps.errors import DataWarning, UserError
from speechreps.train import checkpoint as ckpt

from conftest import write_tone_corpus
from test_datasets import make_toy_dataset, write_config

SMALL = PrepareOptions(min_frames=20, min_chars=5, pair_min_frames=20, pair_min_chars=5)


def _speechreps(argv: list[str], kill_at: str | None = None, timeout: float = 180) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("SPEECHREPS_KILL_AT", None)
    if kill_at:
        env["SPEECHREPS_KILL_AT"] = kill_at
    return subprocess.run([sys.executable, "-m", "speechreps", *argv], env=env, capture_output=True, text=True,
                          timeout=timeout)


def _killed(proc: subprocess.CompletedProcess) -> None:
    assert proc.returncode == -signal.SIGKILL, (proc.returncode, proc.stderr[-3000:])


def _dims(out: Path, name: str) -> set[int]:
    return {a.shape[1] for p in sorted((out / name).glob("*.npz")) for a in load_archive(p).values()}


# ---------------------------------------------------------------------------------------------
# Datasets: whole or absent


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_tone_corpus(tmp_path_factory.mktemp("rel") / "corpus", n_speakers=3, n_utts=3)


def _prepare_argv(corpus: Path, out: Path, *extra) -> list[str]:
    return ["prepare", str(corpus), str(out), "--name", "tones", "--jobs", "1", "--min-frames", "20",
            "--pair-min-frames", "20", *extra]


@pytest.mark.parametrize("point", ["prepare-after-archive@2", "prepare-mid-swap"])
def test_killed_prepare_leaves_one_whole_dataset(corpus, tmp_path, point):
    out = tmp_path / "out"
    prepare_corpus(corpus, out, "tones", SMALL, jobs=1, progress=False)  # MFCC, 39-d
    _killed(_speechreps(_prepare_argv(corpus, out, "--features", "fbank", "--force"), kill_at=point))
    dims = _dims(out, "tones")
    if point == "prepare-mid-swap":
        assert not (out / "tones").exists()  # the one instant with neither: absent, not half
    elif point == "prepare-before-register":
        assert dims == {72} and json.loads((out / "tones" / "prepare.json").read_text())["feature_dim"] == 72
    else:
        assert dims == {39} and json.loads((out / "tones" / "prepare.json").read_text())["feature_dim"] == 39
    # the next run of the killed command cleans up and ends with the new dataset, registered
    summary = prepare_corpus(corpus, out, "tones", PrepareOptions(**{**SMALL.__dict__, "features": _fbank()}),
                             jobs=1, progress=False)
    assert summary["feature_dim"] == 72 and _dims(out, "tones") == {72}
    assert bool(summary.get("reused")) == (point == "prepare-before-register")
    assert not [p.name for p in out.iterdir() if p.name.startswith(".tones.") and not p.name.endswith(
        (".lock", ".holder"))]
    ds = load_dataset(out / "data_paths.json", "tones")
    assert load_archive(ds.utterances("train")) and ds.train_pairs.is_file()


def _fbank():
    from speechreps.data.features import FeatureConfig

    return FeatureConfig(kind="fbank")


def test_reuse_checks_the_files_and_the_registration(corpus, tmp_path):
    out = tmp_path / "out"
    prepare_corpus(corpus, out, "tones", SMALL, jobs=1, progress=False)
    (out / "data_paths.json").write_text("{}")  # the registration is lost
    again = prepare_corpus(corpus, out, "tones", SMALL, jobs=1, progress=False)
    assert again["reused"] and again["reregistered"]
    assert load_dataset(out / "data_paths.json", "tones").utterances("train").is_file()
    with open(out / "tones" / "test_words.npz", "ab") as fh:  # a file changed behind our back
        fh.write(b"\0")
    rebuilt = prepare_corpus(corpus, out, "tones", SMALL, jobs=1, progress=False)
    assert not rebuilt.get("reused")
    manifest = json.loads((out / "tones" / "prepare.json").read_text())
    assert manifest["files"]["test_words.npz"]["size"] == (out / "tones" / "test_words.npz").stat().st_size


def test_prepare_workers_die_with_their_parent(tmp_path):
    corpus = write_tone_corpus(tmp_path / "c9", n_speakers=3, n_utts=4)
    out = tmp_path / "unique-out-9f3e"
    argv = _prepare_argv(corpus, out)
    argv[argv.index("--jobs") + 1] = "2"
    _killed(_speechreps(argv, kill_at="prepare-pool-running"))
    deadline = time.time() + 10
    while time.time() < deadline and _processes_naming(str(out)):
        time.sleep(0.2)
    assert not _processes_naming(str(out))


def _processes_naming(token: str) -> list[int]:
    found = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                state = Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0]
            except OSError:
                continue
            if token in cmd and state != "Z":
                found.append(int(pid))
    return found


def test_duplicates_and_missing_speaker_lists_are_reported(tmp_path):
    corpus = write_tone_corpus(tmp_path / "c", n_speakers=3, n_utts=2)
    lines = (corpus / "words.wrd").read_text().splitlines()
    (corpus / "words.wrd").write_text("\n".join(lines + lines) + "\n")  # every line twice
    with pytest.warns(DataWarning, match=f"skipped {len(lines)} alignment line.*listed more than once"):
        prepare_corpus(corpus, tmp_path / "o", "tones", SMALL, jobs=1, progress=False)
    from speechreps.data.alignments import read_term_pairs

    pairs = read_term_pairs(tmp_path / "o" / "tones" / "train_pairs.txt")
    assert pairs and all((p.utt1, p.start1, p.end1) != (p.utt2, p.start2, p.end2) for p in pairs)
    (corpus / "speakers" / "test.txt").unlink()
    with pytest.warns(DataWarning, match=r"speakers.*\(no test.txt\); their utterances are left out: sp02"):
        prepare_corpus(corpus, tmp_path / "o", "tones", SMALL, jobs=1, progress=False)


def test_no_progress_bar_when_stderr_is_not_a_terminal(corpus, tmp_path, capfd):
    prepare_corpus(corpus, tmp_path / "o", "tones", SMALL, jobs=1, progress=True)
    assert "features" not in capfd.readouterr().err


# ---------------------------------------------------------------------------------------------
# Checkpoints: the last epoch is never lost


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("relproj")
    make_toy_dataset(root)
    write_config(root / "config.json", apc={"num_epochs": 4, "checkpoint_interval": 1, "validate_every": 1})
    straight = root / "straight"
    assert main(_train_argv(root, straight)) == 0
    return root, straight


def _train_argv(root: Path, ckpt_dir: Path, *extra) -> list[str]:
    return ["train", "apc", str(root / "config.json"), str(ckpt_dir), "--language", "toy", "--data-paths",
            str(root / "data_paths.json"), "--val-tokens", "0", "--jobs", "1", "--no-progress", *extra]


@pytest.mark.parametrize("point", ["train-after-epoch-file@3", "train-after-metrics@3"])
def test_killed_training_resumes_to_the_uninterrupted_result(project, tmp_path, point):
    root, straight = project
    d = tmp_path / "ck"
    _killed(_speechreps(_train_argv(root, d), kill_at=point))
    newest = epoch = ckpt.saved_epochs(d)[-1]
    if point.startswith("train-after-metrics"):
        assert epoch == 2 and '"epoch": 3' in (d / "metrics.jsonl").read_text()  # a row without its checkpoint
    else:
        last = d / "last.pt"
        assert not last.exists() or not os.path.samefile(last, ckpt.epoch_path(d, newest))  # last.pt lags behind
        assert ckpt.find_checkpoint(d, prefer="last") == ckpt.epoch_path(d, newest)  # readers see the newest
    (d / ".epoch_9.pt.abcd1234.tmp.pt").write_bytes(b"junk")  # litter of a killed save
    assert main(_train_argv(root, d, "--resume")) == 0
    assert not (d / ".epoch_9.pt.abcd1234.tmp.pt").exists()
    assert os.path.samefile(d / "last.pt", d / "epoch_4.pt")
    a, b = ckpt.load(straight / "last.pt"), ckpt.load(d / "last.pt")
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    assert a["best"] == b["best"]
    best = a["best"]["epoch"]
    assert ckpt.load(d / "best.pt")["epoch"] == best == ckpt.load(straight / "best.pt")["epoch"]
    rows = [json.loads(x) for x in (d / "metrics.jsonl").read_text().splitlines()]
    rows_a = [json.loads(x) for x in (straight / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4]
    assert [(r["loss"], r["val_ap"]) for r in rows] == [(r["loss"], r["val_ap"]) for r in rows_a]


def test_resume_applies_a_changed_learning_rate(project, tmp_path, capsys):
    root, straight = project
    d = tmp_path / "ck"
    write_config(tmp_path / "two.json", apc={"num_epochs": 2, "validate_every": 0})
    write_config(tmp_path / "slow.json", apc={"num_epochs": 3, "validate_every": 0, "learning_rate": 0.0005})
    argv = _train_argv(root, d)
    argv[2] = str(tmp_path / "two.json")
    assert main(argv) == 0
    argv[2] = str(tmp_path / "slow.json")
    assert main(argv + ["--resume"]) == 0
    assert "learning_rate 0.003 -> 0.0005" in capsys.readouterr().out
    rows = [json.loads(x) for x in (d / "metrics.jsonl").read_text().splitlines()]
    assert [r["lr"] for r in rows] == [0.003, 0.003, 0.0005]
    assert json.loads((d / "config.json").read_text())["apc"]["learning_rate"] == 0.0005


# ---------------------------------------------------------------------------------------------
# Locks


_HOLDER = """
import sys, time
from speechreps.locks import exclusive
with exclusive(sys.argv[1], "test"):
    print("held", flush=True)
    time.sleep(120)
"""


def _hold(lock_file: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", _HOLDER, str(lock_file)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


@pytest.mark.parametrize("what", ["train", "prepare"])
def test_a_second_writer_gets_one_line_naming_the_holder(project, corpus, tmp_path, capsys, what):
    root, _ = project
    if what == "train":
        target, argv = tmp_path / "ck" / ".lock", _train_argv(root, tmp_path / "ck")
    else:
        target, argv = tmp_path / "out" / ".tones.lock", _prepare_argv(corpus, tmp_path / "out")
    holder = _hold(target)
    try:
        capsys.readouterr()
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and f"is in use by pid {holder.pid}" in err[0], err
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    if what == "prepare":  # the kernel dropped the dead holder's lock: the next run goes ahead
        assert main(argv) == 0


def _register_many(data_paths: str, tag: str) -> None:
    from speechreps.data.registry import register_dataset

    for i in range(15):
        register_dataset(data_paths, f"{tag}{i}", {"train_data": f"{tag}{i}.npz"})


def test_concurrent_registrations_are_all_kept(tmp_path):
    import multiprocessing as mp

    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_register_many, args=(str(tmp_path / "data_paths.json"), t)) for t in "abcd"]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert all(p.exitcode == 0 for p in procs)
    raw = read_data_paths(tmp_path / "data_paths.json")
    assert len(raw) == 60


def test_registering_a_dataset_keeps_another_whose_name_begins_with_it(tmp_path):
    """`prepare` re-registering synth_en after `run --discover` must not drop the twin synth_en_zr (its
    keys begin with "synth_en_"); a twin's pair source round-trips, and a bad one is named."""
    from speechreps.data.registry import register_dataset

    path = tmp_path / "data_paths.json"
    register_dataset(path, "en_zr", {"train_data": "u.npz", "train_pairs": "p.txt", "train_pairs_source": "discovered"})
    register_dataset(path, "en", {"train_data": "u.npz", "speaker_rule": "buckeye"})
    register_dataset(path, "en", {"train_data": "v.npz"})  # replaces all of en's own keys, and only those
    raw = read_data_paths(path)
    assert raw == {"en_train_data": "v.npz", "en_zr_train_data": "u.npz", "en_zr_train_pairs": "p.txt",
                   "en_zr_train_pairs_source": "discovered"}
    assert load_dataset(path, "en_zr").train_pairs_source == "discovered"
    assert load_dataset(path, "en").train_pairs_source == "given"
    register_dataset(path, "en", {"train_data": "v.npz", "train_pairs_source": "found"})
    with pytest.raises(UserError, match="en_train_pairs_source must be one of given, discovered, got 'found'"):
        load_dataset(path, "en")


# ---------------------------------------------------------------------------------------------
# Small ones


def test_outputs_honour_the_umask(tmp_path):
    from speechreps.fileio import write_json

    old = os.umask(0o027)
    try:
        write_json(tmp_path / "a.json", {})
        ckpt.save({"model": {}}, tmp_path / "e.pt")
    finally:
        os.umask(old)
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == 0o640
    assert (tmp_path / "e.pt").stat().st_mode & 0o777 == 0o640


def test_train_warnings_do_not_mention_strict(project, tmp_path, capsys):
    root, _ = project
    pairs = (root / "toy" / "train_pairs.txt").read_text().splitlines()
    (tmp_path / "pairs.txt").write_text("\n".join(pairs[:20] + ["w ghost_000 0 10 ghost_001 0 10"]) + "\n")
    write_config(tmp_path / "c.json", capc={"num_epochs": 1, "validate_every": 0})
    argv = ["train", "capc", str(tmp_path / "c.json"), str(tmp_path / "ck"), "--language", "toy", "--data-paths",
            str(root / "data_paths.json"), "--pairs", str(tmp_path / "pairs.txt"), "--jobs", "1", "--no-progress"]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "ghost_000" in err and "--strict" not in err


@pytest.mark.parametrize("initializer", ["die_with_parent", "watch_parent"])
def test_pool_workers_end_with_their_parent(tmp_path, initializer):
    script = f"""
import os, signal, sys, time
from concurrent.futures import ProcessPoolExecutor
from speechreps.crash import {initializer}
pool = ProcessPoolExecutor(2, initializer={initializer}, initargs=(os.getpid(),))
list(pool.map(abs, [1, 2]))
print(" ".join(str(p) for p in pool._processes), flush=True)
pool.submit(time.sleep, 60)
os.kill(os.getpid(), signal.SIGKILL)
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    pids = [int(p) for p in proc.stdout.split()]
    assert len(pids) == 2
    deadline = time.time() + 10
    while time.time() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.1)
    assert not any(_alive(p) for p in pids)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0]
    except OSError:
        return False
    return state != "Z"


def test_repair_relinks_best_when_the_newest_epoch_was_the_best(tmp_path):
    for epoch in (1, 2):
        state = {"model": {"w": torch.full((2,), float(epoch))}, "epoch": epoch, "best": {"val_ap": 0.1 * epoch,
                                                                                          "epoch": epoch}}
        path = ckpt.save(state, ckpt.epoch_path(tmp_path, epoch))
        if epoch == 1:  # epoch 2's links were never made: killed right after its file
            ckpt.link_or_copy(path, tmp_path / "best.pt")
            ckpt.link_or_copy(path, tmp_path / "last.pt")
    assert ckpt.find_checkpoint(tmp_path) == ckpt.epoch_path(tmp_path, 2)  # a reader already takes epoch 2
    assert sorted(ckpt.repair(tmp_path)) == ["best.pt", "last.pt"]
    assert ckpt.load(tmp_path / "best.pt")["epoch"] == ckpt.load(tmp_path / "last.pt")["epoch"] == 2
    assert ckpt.repair(tmp_path) == []


def test_stale_temporaries_are_recognised_by_name(tmp_path):
    from speechreps.crash import remove_stale_temporaries
    from speechreps.fileio import atomic_path

    with atomic_path(tmp_path / "sub" / "x.npz", suffix=".npz") as tmp:  # the names atomic_path really makes
        left = tmp.with_name(tmp.name.replace(".x.npz.", ".y.npz."))
        left.write_bytes(b"half")
        tmp.write_bytes(b"whole")
    (tmp_path / "sub" / ".hidden_but_mine.txt").write_text("keep")
    assert remove_stale_temporaries(tmp_path, recursive=True) == [left]
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == [".hidden_but_mine.txt", "x.npz"]

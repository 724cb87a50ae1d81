"""A battery of bad inputs: each must end in exit status 2 and exactly one line on stderr naming the culprit.

Every case runs the real command line in this process (``speechreps.cli.main``); file-system failures
that a root user or this machine cannot produce for real (a read-only file system, a full disk) are
simulated by making the write raise the OSError the kernel would give.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import numpy as np
import pytest

from speechreps.cli import main
from speechreps.data.archive import format_key, save_archive
from speechreps.data.registry import register_dataset

from conftest import write_tone_corpus
from test_datasets import make_toy_dataset, write_config


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A toy dataset (13-d), a 20-d one, a config, an APC trained one epoch, a small audio corpus."""
    root = tmp_path_factory.mktemp("bad_inputs")
    make_toy_dataset(root)
    make_toy_dataset(root, dim=20, name="wide")
    write_config(root / "config.json", apc={"num_epochs": 1, "validate_every": 0})
    assert main(["train", "apc", str(root / "config.json"), str(root / "CKPT"), "--language", "toy",
                 "--data-paths", str(root / "data_paths.json"), "--no-progress"]) == 0
    write_tone_corpus(root / "corpus", n_speakers=3, n_utts=1)
    return root


def _dataset(root: Path, name: str, arrays: dict, words: dict | None = None) -> Path:
    """A data_paths.json in ``root`` registering ``name`` with these train (and validation word) arrays."""
    entries = {"train_data": save_archive(root / f"{name}_train.npz", arrays), "speaker_rule": "buckeye"}
    if words is not None:
        entries["validation_words"] = save_archive(root / f"{name}_val_words.npz", words)
    register_dataset(root / "data_paths.json", name, entries)
    return root / "data_paths.json"


def _utts(dim: int = 13, n: int = 6, bad=None) -> dict:
    rng = np.random.default_rng(0)
    out = {}
    for i in range(n):
        x = rng.standard_normal((30, dim)).astype(np.float32)
        out[format_key(f"sp{i % 3}_{i:03d}", 0, 30)] = x
    if bad is not None:
        key = next(iter(out))
        out[key][5, 2] = bad
    return out


def _train(w: Path, cfg: Path, data_paths: Path, language: str, ckpt: Path | None = None, *extra) -> list[str]:
    return ["train", "apc", str(cfg), str(ckpt or w / "ck_new"), "--language", language, "--data-paths",
            str(data_paths), "--no-progress", *extra]


def _raise(err: int, filename: str | None = None):
    def fail(*args, **kwargs):
        raise OSError(err, os.strerror(err), filename)

    return fail


# Each case: (tmp, world, monkeypatch) -> (argv, text the one line must contain)


def prepare_args(w: Path, out: Path, *extra) -> list[str]:
    return ["prepare", str(w / "corpus"), str(out), "--name", "tones", "--jobs", "1", "--min-frames", "20",
            "--pair-min-frames", "20", *extra]


def _corpus_copy(w: Path, t: Path) -> Path:
    import shutil

    dst = t / "corpus"
    shutil.copytree(w / "corpus", dst)
    return dst


def _prep(t, w, mp, *extra, corpus=None):
    argv = prepare_args(w, t / "out", *extra)
    if corpus is not None:
        argv[1] = str(corpus)
    return argv


def case_prepare_no_corpus(t, w, mp):
    return ["prepare", str(t / "nope"), str(t / "out"), "--name", "x"], "nope does not exist"


def case_prepare_no_audio(t, w, mp):
    (t / "empty").mkdir()
    return ["prepare", str(t / "empty"), str(t / "out"), "--name", "x"], "no .wav or .flac"


def case_prepare_wrd_names_no_audio(t, w, mp):
    """A corpus without alignments is fine (utterances only); alignments that match no audio are not."""
    c = _corpus_copy(w, t)
    (c / "words.wrd").write_text("nobody_000 0.10 0.70 alpha\nnobody_000 0.80 1.40 bravo\n")
    return _prep(t, w, mp, corpus=c), "no usable word alignments"


def case_prepare_alignments_missing(t, w, mp):
    return _prep(t, w, mp, "--alignments", str(t / "gone.wrd")), "gone.wrd does not exist"


def case_prepare_jobs_zero(t, w, mp):
    argv = _prep(t, w, mp)
    argv[argv.index("--jobs") + 1] = "0"
    return argv, "--jobs must be >= 1"


def case_prepare_negative_min_frames(t, w, mp):
    return _prep(t, w, mp, "--min-chars", "-3"), "--min-chars must be >= 0"


def case_prepare_bad_speaker_regex(t, w, mp):
    return _prep(t, w, mp, "--speaker-rule", "(unclosed"), "(unclosed"


def case_prepare_bad_name(t, w, mp):
    argv = _prep(t, w, mp)
    argv[argv.index("--name") + 1] = "no/slash"
    return argv, "'no/slash' is not usable"


def case_prepare_speaker_in_two_lists(t, w, mp):
    c = _corpus_copy(w, t)
    (c / "speakers" / "test.txt").write_text("sp00\n")
    return _prep(t, w, mp, corpus=c), "'sp00' is listed in both"


def case_prepare_nan_time_strict(t, w, mp):
    c = _corpus_copy(w, t)
    with open(c / "words.wrd", "a") as fh:
        fh.write("sp00_000 nan 0.5 alpha\n")
    return _prep(t, w, mp, "--strict", corpus=c), "words.wrd:10: start/end 'nan' '0.5' are not finite"


def case_prepare_duplicate_line_strict(t, w, mp):
    c = _corpus_copy(w, t)
    first = (c / "words.wrd").read_text().splitlines()[0]
    with open(c / "words.wrd", "a") as fh:
        fh.write(first + "\n")
    return _prep(t, w, mp, "--strict", corpus=c), "is listed more than once"


def case_prepare_missing_speaker_list_strict(t, w, mp):
    c = _corpus_copy(w, t)
    (c / "speakers" / "validation.txt").unlink()
    return _prep(t, w, mp, "--strict", corpus=c), "no validation.txt"


def _replace_audio(t, w, signal: np.ndarray, sr: int = 16000) -> Path:
    import soundfile as sf

    c = _corpus_copy(w, t)
    sf.write(c / "audio" / "sp01_000.wav", signal, sr, subtype="PCM_16")
    return c


def case_prepare_silent_audio(t, w, mp):
    c = _replace_audio(t, w, np.zeros(16000 * 2, dtype=np.float32))
    return _prep(t, w, mp, corpus=c), "sp01_000.wav is silent"


def case_prepare_antiphase_stereo(t, w, mp):
    x = 0.3 * np.sin(np.linspace(0, 2000, 16000 * 2)).astype(np.float32)
    c = _replace_audio(t, w, np.stack([x, -x], axis=1))
    return _prep(t, w, mp, corpus=c), "sp01_000.wav: its 2 channels cancel out"


def case_prepare_garbage_audio(t, w, mp):
    c = _corpus_copy(w, t)
    (c / "audio" / "sp01_000.wav").write_bytes(os.urandom(4000))
    return _prep(t, w, mp, corpus=c), "sp01_000.wav cannot be read"


def case_prepare_out_parent_is_file(t, w, mp):
    (t / "afile").write_text("x")
    argv = _prep(t, w, mp)
    argv[2] = str(t / "afile" / "out")
    return argv, "afile"


def case_prepare_disk_full(t, w, mp):
    mp.setattr(np.lib.format, "write_array", _raise(errno.ENOSPC))
    return _prep(t, w, mp), "00000000.npy: No space left on device"


def case_prepare_read_only(t, w, mp):
    import tempfile

    mp.setattr(tempfile, "mkdtemp", _raise(errno.EROFS, str(t / "out")))
    return _prep(t, w, mp), "Read-only file system"


def case_train_unknown_type(t, w, mp):
    return ["train", "lstm", str(w / "config.json"), str(t / "ck")], "unknown representation type 'lstm'"


def case_train_config_missing(t, w, mp):
    return ["train", "apc", str(t / "none.json"), str(t / "ck")], "none.json does not exist"


def case_train_config_not_json(t, w, mp):
    (t / "c.json").write_text("{apc: ")
    return _train(w, t / "c.json", w / "data_paths.json", "toy"), "c.json"


def case_train_input_dim_mismatch(t, w, mp):
    return _train(w, w / "config.json", w / "data_paths.json", "wide", t / "ck"), "holds 20-dimensional features"


def case_train_nan_in_data(t, w, mp):
    dp = _dataset(t, "nan", _utts(bad=np.nan))
    return _train(w, w / "config.json", dp, "nan", t / "ck"), "key 'sp0_000_000000-000030' holds 1 NaN"


def case_train_inf_in_data(t, w, mp):
    dp = _dataset(t, "inf", _utts(bad=np.inf))
    return _train(w, w / "config.json", dp, "inf", t / "ck"), "inf_train.npz"


def case_train_mixed_dims_mapped(t, w, mp):
    arrays = _utts()
    arrays[format_key("sp9_999", 0, 30)] = np.zeros((30, 7), np.float32)
    dp = _dataset(t, "mixed", arrays)
    return _train(w, w / "config.json", dp, "mixed", t / "ck"), "mixed_train.npz mixes feature dimensions"


def case_train_absurd_size(t, w, mp):
    cfg = write_config(t / "huge.json", apc={"hidden_dim": 10**9, "num_epochs": 1})
    return _train(w, cfg, w / "data_paths.json", "toy", t / "ck"), "huge.json [apc]: the apc model of this config cannot be built"


def case_train_jobs_zero(t, w, mp):
    return _train(w, w / "config.json", w / "data_paths.json", "toy", t / "ck", "--jobs", "0"), "--jobs must be >= 1"


def case_train_workers_negative(t, w, mp):
    return _train(w, w / "config.json", w / "data_paths.json", "toy", t / "ck", "--workers", "-1"), "--workers"


def case_train_val_tokens_negative(t, w, mp):
    return _train(w, w / "config.json", w / "data_paths.json", "toy", t / "ck", "--val-tokens", "-2"), "--val-tokens"


def case_train_missing_epoch(t, w, mp):
    return _train(w, w / "config.json", w / "data_paths.json", "toy", w / "CKPT", "--load-from-epoch", "7"), \
        "epoch_7.pt does not exist"


def case_train_unknown_language(t, w, mp):
    return _train(w, w / "config.json", w / "data_paths.json", "klingon", t / "ck"), "dataset 'klingon' is not in"


def case_train_data_paths_missing(t, w, mp):
    return _train(w, w / "config.json", t / "nowhere.json", "toy", t / "ck"), "nowhere.json does not exist"


def case_train_data_paths_not_json(t, w, mp):
    (t / "dp.json").write_text("[1, 2")
    return _train(w, w / "config.json", t / "dp.json", "toy", t / "ck"), "dp.json is not valid JSON"


def case_train_ckpt_parent_is_file(t, w, mp):
    (t / "plain").write_text("x")
    return _train(w, w / "config.json", w / "data_paths.json", "toy", t / "plain" / "ck"), "plain"


def case_train_disk_full(t, w, mp):
    import torch

    mp.setattr(torch, "save", _raise(errno.ENOSPC))
    return _train(w, w / "config.json", w / "data_paths.json", "toy", t / "ck"), "epoch_1.pt: No space left on device"


def case_train_bad_device(t, w, mp):
    return _train(w, w / "config.json", w / "data_paths.json", "toy", t / "ck", "--device", "toaster"), \
        "--device 'toaster'"


def case_train_config_bad_value(t, w, mp):
    cfg = write_config(t / "neg.json", apc={"learning_rate": -1})
    return _train(w, cfg, w / "data_paths.json", "toy", t / "ck"), "learning_rate"


def _eval(w, action, *extra, language="toy", ckpt=None):
    return [action, "apc", str(w / "config.json"), str(ckpt or w / "CKPT"), "--language", language, "--data-paths",
            str(w / "data_paths.json"), "--no-progress", *extra]


def case_evaluate_input_dim_mismatch(t, w, mp):
    return _eval(w, "evaluate", "--extract-language", "wide"), "holds 20-dimensional features"


def case_extract_input_dim_mismatch(t, w, mp):
    return _eval(w, "extract", "--extract-language", "wide", "--save_path", str(t / "o")), \
        "holds 20-dimensional features"


def case_extract_save_path_is_file(t, w, mp):
    (t / "f").write_text("x")
    return _eval(w, "extract", "--save_path", str(t / "f")), "a file is in the way"


def case_extract_disk_full(t, w, mp):
    mp.setattr(np, "savez", _raise(errno.ENOSPC))
    return _eval(w, "extract", "--save_path", str(t / "o")), "toy_train_apc_gru2.npz: No space left on device"


def case_extract_read_only(t, w, mp):
    import tempfile

    mp.setattr(tempfile, "mkstemp", _raise(errno.EROFS))
    return _eval(w, "extract", "--save_path", str(t / "o")), "toy_train_apc_gru2.npz: Read-only file system"


def case_extract_no_save_path(t, w, mp):
    return _eval(w, "extract"), "needs --save_path"


def case_evaluate_corrupt_checkpoint(t, w, mp):
    (t / "ck").mkdir()
    (t / "ck" / "best.pt").write_bytes(os.urandom(300))
    return _eval(w, "evaluate", ckpt=t / "ck"), "best.pt cannot be read"


def case_evaluate_no_checkpoint(t, w, mp):
    (t / "ck").mkdir()
    return _eval(w, "evaluate", ckpt=t / "ck"), "no checkpoint in"


def case_evaluate_bad_layer(t, w, mp):
    return _eval(w, "evaluate", "--layer", "nope"), "--layer 'nope'"


def case_samediff_missing(t, w, mp):
    return ["samediff", str(t / "none.npz")], "none.npz does not exist"


def case_samediff_random_bytes(t, w, mp):
    (t / "r.npz").write_bytes(os.urandom(500))
    return ["samediff", str(t / "r.npz")], "r.npz is not an .npz file"


def case_samediff_utterance_archive(t, w, mp):
    return ["samediff", str(w / "toy" / "validation_utterances.npz")], "holds utterances"


def case_samediff_bad_key(t, w, mp):
    save_archive(t / "k.npz", {"justaword": np.zeros((5, 3), np.float32), "other": np.zeros((5, 3), np.float32)})
    return ["samediff", str(t / "k.npz")], "'justaword' does not parse"


def case_samediff_mixed_dims(t, w, mp):
    save_archive(t / "m.npz", {format_key("u_1", 3, 8, "ab"): np.zeros((5, 3), np.float32),
                               format_key("u_1", 9, 14, "ab"): np.zeros((5, 4), np.float32)})
    return ["samediff", str(t / "m.npz")], "m.npz mixes feature dimensions"


def case_samediff_too_few_tokens(t, w, mp):
    return ["samediff", str(w / "toy" / "validation_words.npz"), "--min-frames", "100000"], "need at least 2"


def case_samediff_json_unwritable(t, w, mp):
    (t / "f").write_text("x")
    return ["samediff", str(w / "toy" / "validation_words.npz"), "--distance", "downsample", "--json",
            str(t / "f" / "r.json")], "cannot write " + str(t / "f")


def case_pack_mixed_dims(t, w, mp):
    save_archive(t / "m.npz", {format_key("u_1", 0, 5): np.zeros((5, 3), np.float32),
                               format_key("u_2", 0, 5): np.zeros((5, 4), np.float32)})
    return ["pack", str(t / "m.npz")], "m.npz mixes feature dimensions"


def case_pack_random_bytes(t, w, mp):
    (t / "r.npz").write_bytes(b"\x00" * 100)
    return ["pack", str(t / "r.npz")], "r.npz is not an .npz file"


CASES = {name[5:]: fn for name, fn in sorted(globals().items()) if name.startswith("case_")}


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_is_one_line_exit_2(name, world, tmp_path, monkeypatch, capsys):
    argv, expected = CASES[name](tmp_path, world, monkeypatch)
    capsys.readouterr()
    rc = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1, (rc, err)
    assert err[0].startswith("speechreps: error: ") and expected in err[0], err[0]


def test_the_battery_is_big_enough():
    assert len(CASES) >= 40

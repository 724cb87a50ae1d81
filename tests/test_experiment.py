"""The main job end to end on a tiny built-in corpus: every report file, real APs, resumable stages."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from speechreps.experiment import MainJobOptions, default_config, run_main_job

TINY_SIZES = {"hidden_dim": 16, "enc_dim": 32, "z_dim": 16, "c_dim": 16, "bottleneck_dim": 8}


def tiny_config(path: Path, epochs: int = 1) -> Path:
    cfg = json.loads(default_config().read_text())
    for section in cfg.values():
        if isinstance(section, dict):
            section.pop("num_steps", None), section.pop("steps_per_epoch", None)  # epochs here, not steps
            section.update(num_epochs=epochs, checkpoint_interval=1)
            if "validate_every" in section:
                section["validate_every"] = 1
            for key, value in TINY_SIZES.items():
                if key in section:
                    section[key] = value
    path.write_text(json.dumps(cfg))
    return path


@pytest.fixture(scope="module")
def main_job(tmp_path_factory):
    root = tmp_path_factory.mktemp("mainjob")
    log: list[str] = []
    opts = MainJobOptions(
        run_dir=root / "run", data_dir=root / "data", config=tiny_config(root / "tiny.json"),
        corpus_minutes=2.0, corpus_speakers=8, progress=False, log=log.append,
    )
    report = run_main_job(opts)
    return opts, report, log


def test_every_report_file_is_written(main_job):
    opts, report, _ = main_job
    for name in ("report.md", "table.md", "results.json", "training_curves.png", "precision_recall.png", "token_map.png"):
        assert (opts.run_dir / name).stat().st_size > 0, name
    text = report.read_text()
    assert "![token map](token_map.png)" in text and "## Stages" in text


def test_table_holds_real_aps_for_every_model_and_the_cross_lingual_rows(main_job):
    opts, _, _ = main_job
    rows = [ln for ln in (opts.run_dir / "table.md").read_text().splitlines() if ln.startswith("| ") and "---" not in ln][1:]
    settings = {tuple(c.strip() for c in row.strip("|").split("|")[:4]) for row in rows}
    trained = {(rep, on, evaluated) for rep, _, on, evaluated in settings}
    for rep in ("apc", "cpc", "capc", "frame_ae", "frame_cae"):
        assert (rep, "synth_en", "synth_en") in trained
        assert (rep, "synth_en", "synth_tn") in trained  # cross-lingual
        assert (rep, "synth_tn", "synth_tn") in trained
    assert ("mfcc", "-", "-", "synth_en") in settings and ("mfcc", "-", "-", "synth_tn") in settings
    assert ("cpc", "c", "synth_en", "synth_en") in settings  # each model's default layer
    numbers = [float(x) for row in rows for x in re.findall(r"\d+\.\d+", row)]
    assert len(numbers) >= len(rows) * 4
    assert all(0.0 <= x <= 1.0 for x in numbers)
    results = json.loads((opts.run_dir / "results.json").read_text())
    assert all(0.0 <= r["ap"] <= 1.0 for r in results["rows"])
    assert {r["distance"] for r in results["rows"]} == {"downsample", "dtw"}


def _section(text: str, title: str) -> str:
    return text.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


def _table_rows(text: str) -> list[list[str]]:
    return [[c.strip() for c in ln.strip("|").split("|")] for ln in text.splitlines()
            if ln.startswith("| ") and "---" not in ln][1:]


def test_report_has_layers_validation_curves_prb_corpus_and_machine(main_job):
    opts, report, _ = main_job
    text = report.read_text()
    results = json.loads((opts.run_dir / "results.json").read_text())
    # every layer of every model, on its own dataset, the default one marked
    layers = _table_rows(_section(text, "Every layer"))
    got = {(r[0], r[1], r[2]) for r in layers}
    assert ("apc", "synth_en", "gru1") in got and ("apc", "synth_en", "gru2 (default)") in got
    assert ("cpc", "synth_tn", "z") in got and ("cpc", "synth_tn", "c (default)") in got
    assert ("frame_ae", "synth_en", "enc1") in got and ("frame_cae", "synth_en", "bottleneck (default)") in got
    assert len(layers) == 2 * (2 + 2 + 2 + 5 + 5)  # apc, cpc, capc: 2 layers; frame AE / CAE: 4 + bottleneck
    for r in layers:
        assert all(0.0 <= float(x) <= 1.0 for x in r[4:] if x != "-")
    # the default layer's downsampled test AP is the main table's figure for the same model
    main = {(r["features"], r["trained_on"], r["evaluated_on"]): r["ap"] for r in results["rows"]
            if r["split"] == "test" and r["distance"] == "downsample" and r["features"] != "mfcc"}
    for r in results["layers"]:
        if r["default"] and r["split"] == "test" and r["distance"] == "downsample":
            assert r["ap"] == pytest.approx(main[(r["features"], r["trained_on"], r["evaluated_on"])], abs=1e-6)
    # the default layer's DTW AP on the validation subset is the best validation AP training logged
    # (the checkpoint scored is best.pt)
    for t in results["training"].values():
        row = next(r for r in results["layers"] if r["default"] and r["split"] == "validation"
                   and r["distance"] == "dtw" and (r["features"], r["trained_on"]) == (t["rep"], t["dataset"]))
        assert row["ap"] == pytest.approx(t["best_ap"], abs=1e-6)
    # PRB beside AP
    assert "| val DTW AP | val DTW PRB |" in text
    # validation AP against epoch and minutes, and what the training table's AP is computed on
    training = _section(text, "Training")
    assert re.search(r"\| cpc \| synth_en \| 0 \| 1: \d\.\d{3} \(\d+\.\d min\) \|", training)
    assert "fixed random subset of at most 300" in training and "![validation curves](validation_curves.png)" in training
    assert (opts.run_dir / "validation_curves.png").stat().st_size > 0
    # corpus statistics equal the prepared archives' counts
    corpus = {(r[0], r[1]): r for r in _table_rows(_section(text, "Corpus"))}
    from speechreps.data.archive import Archive
    from speechreps.data.registry import load_dataset

    ds = load_dataset(opts.data_dir / "data_paths.json", "synth_en")
    with Archive(ds.word_tokens("test")) as arc:
        assert int(corpus[("synth_en", "test")][6]) == len(arc)
    with Archive(ds.utterances("train")) as arc:
        assert int(corpus[("synth_en", "train")][4]) == len(arc)
    # code commit, threads, load
    assert re.search(r"commit ([0-9a-f]{12}|unknown)", text)
    assert re.search(r"\d+ CPUs, \d+ torch threads", text) and "load average (1/5/15 minutes)" in text


def test_a_no_op_rerun_keeps_the_real_stage_times(main_job):
    opts, report, _ = main_job
    first = report.read_text()
    work = re.search(r"The work took \*\*(\d+\.\d) minutes\*\*", first).group(1)
    stages = {r[0]: r for r in _table_rows(_section(first, "Stages"))}
    opts.log = lambda msg: None
    again = run_main_job(opts).read_text()
    assert f"The work took **{work} minutes**" in again
    assert re.search(r"it ran 0 stages and reused \d+ from earlier runs", again)
    rerun = {r[0]: r for r in _table_rows(_section(again, "Stages"))}
    assert rerun.keys() == stages.keys()
    for name, row in rerun.items():
        assert row[1:4] == stages[name][1:4] and row[4] == "reused"  # seconds, finished, load as recorded
    assert float(stages["train:cpc:synth_en:s0"][1]) > 0


def test_rerun_skips_everything_and_a_changed_config_reruns_only_its_model(main_job, tmp_path):
    opts, _, _ = main_job
    log: list[str] = []
    opts.log = log.append
    run_main_job(opts)
    assert not any(line.endswith("running") for line in log), log

    cfg = json.loads(opts.config.read_text())
    cfg["cpc"]["learning_rate"] = cfg["cpc"]["learning_rate"] / 2
    changed = tmp_path / "tiny.json"
    changed.write_text(json.dumps(cfg))
    opts.config = changed
    log.clear()
    run_main_job(opts)
    ran = [line.split("]")[0].strip("[") for line in log if line.endswith("running")]
    assert ran and all(name.split(":")[1] == "cpc" for name in ran), ran

    # a type's inputs are its own section and its initialiser's: [frame_ae] retrains frame_ae and frame_cae only
    cfg["frame_ae"]["learning_rate"] = cfg["frame_ae"]["learning_rate"] / 2
    changed.write_text(json.dumps(cfg))
    log.clear()
    run_main_job(opts)
    ran = [line.split("]")[0].strip("[") for line in log if line.endswith("running")]
    assert {name.split(":")[1] for name in ran if name.startswith("train:")} == {"frame_ae", "frame_cae"}, ran


def test_a_copied_run_folder_reuses_every_stage(main_job, tmp_path):
    """No stage's fingerprint holds the run folder's path (the frame CAE's initialiser is named by its
    stage's fingerprint), so a run folder copied elsewhere is up to date."""
    import dataclasses
    import shutil

    opts, _, _ = main_job
    run_main_job(dataclasses.replace(opts, log=lambda m: None))  # after the tests above changed the config
    copy = tmp_path / "copied_run"
    shutil.copytree(opts.run_dir, copy)
    log: list[str] = []
    run_main_job(dataclasses.replace(opts, run_dir=copy, log=log.append))
    assert not any(line.endswith("running") for line in log), [x for x in log if x.endswith("running")]
    # and it reads its own checkpoints, not the original folder's
    training = json.loads((copy / "results.json").read_text())["training"]
    assert training and all(Path(t["ckpt_dir"]).is_relative_to(copy) for t in training.values())


def test_awe_flag_adds_the_cae_rnn_comparison_to_the_report(main_job, tmp_path):
    opts, _, _ = main_job
    log: list[str] = []
    awe_opts = MainJobOptions(
        run_dir=tmp_path / "run", data_dir=opts.data_dir, config=tiny_config(tmp_path / "tiny.json"),
        corpus_minutes=2.0, corpus_speakers=8, only=["frame_ae", "frame_cae"], awe=True, progress=False,
        log=log.append,
    )
    report = run_main_job(awe_opts).read_text()
    assert "## Acoustic word embeddings" in report
    table = (awe_opts.run_dir / "awe" / "awe_compare.md").read_text()
    rows = [ln.strip("|").split("|") for ln in table.splitlines() if ln.startswith("| ") and "---" not in ln][1:]
    got = {(r[0].strip(), r[1].strip(), r[2].strip()) for r in rows}
    # the frame AE is not an AWE input (it only initialises the frame CAE)
    assert got == {("mfcc", "-", "synth_en"), ("mfcc", "-", "synth_tn"), ("frame_cae", "synth_en", "synth_en"),
                   ("frame_cae", "synth_tn", "synth_tn"), ("frame_cae", "synth_en", "synth_tn"),
                   # the English AWE models applied to Setswana as they are
                   ("mfcc", "-", "synth_en -> synth_tn"), ("frame_cae", "synth_en", "synth_en -> synth_tn")}
    for r in rows:
        assert r[3].strip() == "gold"  # the training pairs: no --discover, no discovered rows
        down, cae = float(r[5]), float(r[6])  # downsampled and CAE-RNN test AP
        assert 0.0 <= down <= 1.0 and 0.0 <= cae <= 1.0

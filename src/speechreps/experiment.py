"""The main job (``speechreps run``): the paper's comparison, end to end, resumable stage by stage.

Stages (each skipped when its recorded inputs are unchanged, see :mod:`speechreps.stages`):

1. ``corpus:<lang>``   build the built-in eSpeak NG corpus (its own cache also applies);
2. ``prepare:<lang>``  features, same-different sets and word pairs -> ``data/data_paths.json``;
3. ``baseline:<ds>``   same-different AP of the input features (MFCC) on validation and test words;
4. ``train:<type>:<ds>:s<seed>``  train each representation type with the (demo) config;
5. ``evaluate:<type>:<trained ds>:<eval ds>:s<seed>``  extract the default layer's features of the
   validation and test words (in context) into the run folder and score them, downsampled and
   DTW, all and cross-speaker positives; the cross-lingual rows use a model trained on the first
   dataset and the words of the others;
   ``layers:<type>:<ds>:s<seed>``  every layer's AP on the model's own dataset (:mod:`speechreps.layerwise`);
6. ``awe`` (``--awe``)  the acoustic-word-embedding comparison of :mod:`speechreps.awe.compare`: a
   CAE-RNN (the config's ``awe`` section) on MFCC and on the features of each trained APC, CPC, CAPC
   and frame CAE of the first seed, per dataset and cross-lingual, beside downsampling; its rows are
   cached per job in ``RUN/awe/`` like the stages;
   ``encoder:<name>:<ds>`` (``--encoder PATH``)  a pretrained HuBERT / wav2vec 2.0 / WavLM scored layer by
   layer, its best layer as extra rows (:mod:`speechreps.encoders.job`);
7. ``discover``, ``zr-train``, ``zr-evaluate`` (``--discover``)  the zero-resource track of
   :mod:`speechreps.zero_resource`: pairs discovered in the training audio, CAPC / frame CAE trained on
   them with label-free model selection, scored beside the gold-pair models;
8. ``report``          ``report.md`` + figures, and the table printed at the end.

A user's own datasets (``--dataset NAME`` with ``--data-paths``) replace stages 1-2; a user's own audio
corpora (``--corpus PATH``, optionally ``--zero-resource``) replace stage 1 and are prepared like
``speechreps prepare`` does, into ``--data-dir``, under the corpus folder's name.
"""

from __future__ import annotations

import json
import platform
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from . import __version__, runinfo
from .errors import UserError
from .fileio import write_json
from .layerwise import layer_rows
from .pipeline import VAL_MAX_TOKENS
from .runinfo import training_curves
from .stages import StageCache, fingerprint

REPRESENTATION_TYPES = ("apc", "cpc", "capc", "frame_ae", "frame_cae")
BUILTIN_LANGUAGES = ("en", "tn")
#: Frame-level features compared as AWE inputs (``--awe``), beside MFCC: the paper's set. The frame AE
#: is left out (it is the frame CAE's initialisation, and each row costs minutes of CAE-RNN training).
AWE_INPUT_TYPES = ("apc", "cpc", "capc", "frame_cae")
PR_POINTS = 200


@dataclass
class MainJobOptions:
    run_dir: Path = Path("runs/main")
    data_dir: Path = Path("data")
    config: Path | None = None  # default: the packaged demo.json
    languages: tuple[str, ...] = BUILTIN_LANGUAGES
    datasets: list[str] | None = None  # the user's own, from data_paths; replaces languages
    data_paths: Path | None = None
    corpora: list[Path] | None = None  # the user's own audio corpora, prepared into data_dir; replace languages
    zero_resource: bool = False  # corpora: prepare the one split "all" (train and evaluate on all the audio)
    only: list[str] | None = None
    seeds: int = 1
    base_seed: int = 0
    corpus_seed: int = 0
    corpus_minutes: float | None = None
    corpus_speakers: int | None = None
    force: set[str] | bool = False
    jobs: int | None = None
    device: str | None = None
    cross_lingual: bool = True
    awe: bool = False
    encoders: list[Path] = field(default_factory=list)  # pretrained model folders (--encoder), extra rows
    discover: bool = False  # the zero-resource track (speechreps.zero_resource): discovered pairs
    progress: bool = True
    log: Callable[[str], None] = field(default=print, repr=False)

    def types(self) -> list[str]:
        types = list(self.only or REPRESENTATION_TYPES)
        unknown = [t for t in types if t not in REPRESENTATION_TYPES]
        if unknown:
            raise UserError(f"--only: unknown representation type(s) {', '.join(unknown)} "
                            f"(choose from {', '.join(REPRESENTATION_TYPES)})")
        return [t for t in REPRESENTATION_TYPES if t in types]  # training order: frame_ae before frame_cae


def default_config() -> Path:
    return Path(__file__).parent / "configs" / "demo.json"


# ---------------------------------------------------------------------------------------------
# Data


def _builtin_datasets(opts: MainJobOptions, cache: StageCache) -> tuple[Path, list[str], dict[str, str]]:
    """Build and prepare the built-in corpora; returns (data_paths, dataset names, prepare fingerprints)."""
    from .corpus.synth import SYNTH_VERSION, build_corpus
    from .data.prepare import prepare_corpus

    data_paths = opts.data_dir / "data_paths.json"
    names, fps = [], {}
    for lang in opts.languages:
        corpus_dir = opts.data_dir / "corpora" / f"synth_{lang}"
        kw: dict[str, Any] = {"seed": opts.corpus_seed}
        if opts.corpus_minutes is not None:
            kw["minutes"] = opts.corpus_minutes
        if opts.corpus_speakers is not None:
            kw["n_speakers"] = opts.corpus_speakers
        fp_corpus = fingerprint("corpus", lang, kw, SYNTH_VERSION)
        cache.run(f"corpus:{lang}", fp_corpus, lambda: str(build_corpus(
            lang, corpus_dir, jobs=opts.jobs, progress=opts.progress, **kw)))
        name = f"synth_{lang}"
        summary = cache.run(f"prepare:{lang}", fingerprint("prepare", fp_corpus), lambda: prepare_corpus(
            corpus_dir, opts.data_dir, name, jobs=opts.jobs, progress=opts.progress))
        names.append(name)
        fps[name] = summary["fingerprint"]
    return data_paths, names, fps


def _corpus_datasets(opts: MainJobOptions) -> tuple[Path, list[str], dict[str, str]]:
    """Prepare each ``--corpus`` folder into ``data_dir`` (prepare's own cache skips unchanged ones)."""
    import re

    from .data.prepare import PrepareOptions, prepare_corpus

    names, fps = [], {}
    for corpus in opts.corpora or []:
        name = re.sub(r"[^A-Za-z0-9_.-]", "-", Path(corpus).resolve().name) or "corpus"
        if name in names:
            raise UserError(f"--corpus {corpus}: a second corpus named {name!r}")
        summary = prepare_corpus(corpus, opts.data_dir, name, PrepareOptions(zero_resource=opts.zero_resource),
                                 jobs=opts.jobs, progress=opts.progress, log=opts.log)
        if not any(s.get("word_tokens") for s in summary["splits"].values()):
            raise UserError(f"--corpus {corpus}: no word tokens to evaluate on (the main job needs word alignments; "
                            f"train single models on it with speechreps train)")
        names.append(name)
        fps[name] = summary["fingerprint"]
    return opts.data_dir / "data_paths.json", names, fps


def _user_datasets(opts: MainJobOptions) -> tuple[Path, list[str], dict[str, str]]:
    from .data.registry import load_dataset
    from .pipeline import resolve_data_paths

    data_paths = resolve_data_paths(opts.data_paths)
    fps = {}
    for name in opts.datasets or []:
        ds = load_dataset(data_paths, name)
        stamp = []
        for p in [*ds.data.values(), *ds.words.values(), ds.train_pairs]:
            if p is not None and p.is_file():
                st = p.stat()
                stamp.append((str(p), st.st_size, int(st.st_mtime)))
        fps[name] = fingerprint("user-dataset", stamp)
    return data_paths, list(opts.datasets or []), fps


def _word_set(data_paths: Path, name: str, split: str):
    """(keys, segments, labels, speakers, words, utterances) of a dataset split's same-different set."""
    from .data.archive import load_archive
    from .data.registry import load_dataset
    from .evaluate.samediff import word_tokens

    ds = load_dataset(data_paths, name)
    words_path = ds.word_tokens(split)
    words = load_archive(words_path)
    segments, labels, speakers, keys = word_tokens(words, ds.speaker_rule(words_path))
    utt_path = ds.data.get(split)
    utterances = load_archive(utt_path) if utt_path is not None and utt_path.is_file() and utt_path != words_path else None
    return keys, segments, labels, speakers, {k: words[k] for k in keys}, utterances


# ---------------------------------------------------------------------------------------------
# Scoring


def _pr_points(result) -> dict[str, list[float]]:
    """The precision-recall curve of a result, thinned to about PR_POINTS points."""
    from .evaluate.samediff import precision_recall_curve

    precision, recall = precision_recall_curve(result.distances, result.matches)
    idx = np.unique(np.linspace(0, len(precision) - 1, PR_POINTS * 5).astype(int))
    idx = idx[np.searchsorted(recall[idx], np.linspace(0, 1, PR_POINTS), side="left").clip(0, len(idx) - 1)]
    idx = np.unique(idx)
    return {"precision": [round(float(x), 5) for x in precision[idx]], "recall": [round(float(x), 5) for x in recall[idx]]}


def _score(segments, labels, speakers, jobs, device, base: dict, with_pr: bool) -> list[dict]:
    from .evaluate.samediff import samediff

    rows = []
    for distance in ("downsample", "dtw"):
        res = samediff(segments, labels, speakers, distance=distance, n_jobs=jobs,
                       device=device if distance == "dtw" else None)
        row = {**base, "distance": distance, "ap": res.ap, "ap_cross_speaker": res.ap_cross_speaker,
               "prb": res.prb, "n_tokens": res.n_tokens, "n_types": res.n_types, "seconds": round(res.seconds, 2)}
        if with_pr and distance == "dtw":
            row["pr_curve"] = _pr_points(res)
        rows.append(row)
    return rows


def _eval_splits(data_paths: Path, name: str) -> list[str]:
    """validation and test; ``all`` for a zero-resource dataset (see DatasetPaths.evaluation_splits)."""
    from .data.registry import load_dataset

    return load_dataset(data_paths, name).evaluation_splits()


def _baseline(data_paths: Path, name: str, opts: MainJobOptions) -> list[dict]:
    rows = []
    splits = _eval_splits(data_paths, name)
    for split in splits:
        keys, segments, labels, speakers, _, _ = _word_set(data_paths, name, split)
        base = {"features": "mfcc", "layer": None, "trained_on": None, "evaluated_on": name, "split": split,
                "seed": None, "dim": int(segments[0].shape[1])}
        rows += _score(segments, labels, speakers, opts.jobs, opts.device, base, with_pr=split == splits[-1])
    return rows


# ---------------------------------------------------------------------------------------------
# Training and evaluation of one model


def _seed_config(opts: MainJobOptions, config: dict, seed: int, ae_dirs: dict[str, Path], trained_on: str) -> Path:
    """The config with every section's seed set (and frame_cae starting from this run's frame AE)."""
    cfg = json.loads(json.dumps(config))
    for section, values in cfg.items():
        if isinstance(values, dict):
            values["seed"] = seed
    if "frame_cae" in cfg and trained_on in ae_dirs:
        cfg["frame_cae"]["ae_checkpoint"] = str(ae_dirs[trained_on].resolve())
    path = opts.run_dir / "configs" / f"{opts_config_name(opts)}_seed{seed}.json"
    write_json(path, cfg)
    return path


def opts_config_name(opts: MainJobOptions) -> str:
    return Path(opts.config or default_config()).stem


def _train(rep: str, config_path: Path, ckpt_dir: Path, data_paths: Path, name: str, opts: MainJobOptions,
           reference: str | None = None) -> dict:
    from .pipeline import RunOptions, train

    if ckpt_dir.exists():
        shutil.rmtree(ckpt_dir)  # inputs changed (or forced): start clean, never mix two runs
    t0 = time.time()
    result = train(RunOptions(representation_type=rep, config=config_path, ckpt_dir=ckpt_dir, language=name,
                              data_paths=data_paths, device=opts.device, jobs=opts.jobs, progress=opts.progress,
                              reference_language=reference), log=opts.log)
    curve, val_curve = training_curves(ckpt_dir)
    return {"ckpt_dir": str(ckpt_dir), "seconds": round(time.time() - t0, 1), "curve": curve, "val_curve": val_curve,
            "best_ap": getattr(result, "best_ap", None), "best_epoch": getattr(result, "best_epoch", None),
            "frames_per_second": round(float(getattr(result, "frames_per_second", 0.0)), 1)}


def _evaluate_model(rep: str, ckpt_dir: Path, config_path: Path, data_paths: Path, trained_on: str, name: str,
                    seed: int, opts: MainJobOptions) -> list[dict]:
    from .data.archive import save_archive
    from .extract import word_features
    from .pipeline import RunOptions, _setup, load_trained_model

    run = RunOptions(representation_type=rep, config=config_path, ckpt_dir=ckpt_dir, language=trained_on,
                     data_paths=data_paths, device=opts.device, jobs=opts.jobs)
    device = _setup(run)
    model, _, _ = load_trained_model(run, device)
    layer = model.default_layer
    rows = []
    splits = _eval_splits(data_paths, name)
    for split in splits:
        keys, _, labels, speakers, words, utterances = _word_set(data_paths, name, split)
        feats, _ = word_features(model, words, utterances, [layer], device=device)
        save_archive(opts.run_dir / "features" / f"s{seed}" / f"{trained_on}" / f"{name}_{split}_{rep}_{layer}.npz",
                     feats[layer])
        segments = [feats[layer][k] for k in keys]
        base = {"features": rep, "layer": layer, "trained_on": trained_on, "evaluated_on": name, "split": split,
                "seed": seed, "dim": int(segments[0].shape[1])}
        rows += _score(segments, labels, speakers, opts.jobs, opts.device, base, with_pr=split == splits[-1])
    return rows


# ---------------------------------------------------------------------------------------------
# The job


def run_main_job(opts: MainJobOptions) -> Path:
    """Run every stage (skipping those up to date); returns the path of ``report.md``."""
    t_start = time.time()
    types = opts.types()
    if opts.seeds < 1:
        raise UserError(f"--seeds must be >= 1, got {opts.seeds}")
    config_file = Path(opts.config or default_config())
    if not config_file.is_file():
        raise UserError(f"config file {config_file} does not exist")
    from .config import load_config

    config = json.loads(config_file.read_text())
    for rep in types:
        load_config(config_file, rep)  # validate every section used before hours of work
    if "frame_cae" in types and "frame_ae" not in types:
        load_config(config_file, "frame_ae")
    if opts.awe:
        from .awe.config import load_awe_config

        load_awe_config(config_file)
    if opts.encoders:
        from .encoders.job import check_encoders

        check_encoders(opts.encoders)
    from .crash import remove_stale_temporaries
    from .locks import exclusive

    with exclusive(opts.run_dir / ".lock", f"run folder {opts.run_dir}"):
        # temporaries of a killed job in what it writes itself (its checkpoint folders: train does that)
        for sub in ("", "stages", "configs", "features", "awe"):
            remove_stale_temporaries(opts.run_dir / sub, recursive=sub in ("features", "awe"))
        return _run_stages(opts, types, config_file, config, t_start)


def _run_stages(opts: MainJobOptions, types: list[str], config_file: Path, config: dict, t_start: float) -> Path:
    """The stages of :func:`run_main_job`, with the run folder locked."""
    machine_start = runinfo.machine(opts.jobs)
    cache = StageCache(opts.run_dir, opts.force, log=opts.log)

    if opts.corpora:
        data_paths, names, data_fps = _corpus_datasets(opts)
    elif opts.datasets:
        data_paths, names, data_fps = _user_datasets(opts)
    else:
        data_paths, names, data_fps = _builtin_datasets(opts, cache)

    rows: list[dict] = []
    layer_table: list[dict] = []
    for name in names:
        rows += cache.run(f"baseline:{name}", fingerprint("baseline", data_fps[name]),
                          lambda: _baseline(data_paths, name, opts))

    training: dict[str, dict] = {}
    seeds = [opts.base_seed + k for k in range(opts.seeds)]
    for seed in seeds:
        ae_dirs: dict[str, Path] = {}
        for rep in types:
            for name in names:
                config_path = _seed_config(opts, config, seed, ae_dirs, name)
                section = json.loads(config_path.read_text())
                deps = {s: section.get(s) for s in (rep, "frame_ae") if s in section}
                ckpt_dir = opts.run_dir / "models" / f"s{seed}" / name / rep
                fp_train = fingerprint("train", rep, deps, data_fps[name], seed,
                                       training.get(f"frame_ae:{name}:s{seed}", {}).get("fingerprint"))
                res = cache.run(f"train:{rep}:{name}:s{seed}", fp_train,
                                lambda: _train(rep, config_path, ckpt_dir, data_paths, name, opts))
                if "val_curve" not in res:  # recorded by an older version
                    res = dict(zip(("curve", "val_curve"), training_curves(ckpt_dir)), **{
                        k: v for k, v in res.items() if k not in ("curve", "val_curve")})
                training[f"{rep}:{name}:s{seed}"] = {**res, "fingerprint": fp_train, "rep": rep, "dataset": name,
                                                     "seed": seed}
                layer_table += cache.run(
                    f"layers:{rep}:{name}:s{seed}", fingerprint("layers", fp_train, data_fps[name], VAL_MAX_TOKENS),
                    lambda: layer_rows(rep, ckpt_dir, config_path, data_paths, name, seed, opts.jobs, opts.device))
                if rep == "frame_ae":
                    ae_dirs[name] = ckpt_dir
                targets = [name] + ([n for n in names if n != name] if opts.cross_lingual and name == names[0] else [])
                for target in targets:
                    rows += cache.run(
                        f"evaluate:{rep}:{name}:{target}:s{seed}",
                        fingerprint("evaluate", fp_train, data_fps[target]),
                        lambda: _evaluate_model(rep, ckpt_dir, config_path, data_paths, name, target, seed, opts))

    encoder_section = None
    if opts.encoders:
        from .encoders.job import encoder_stages

        encoder_rows, encoder_section = encoder_stages(opts, data_paths, names, data_fps, cache)
        rows += encoder_rows

    zr_track = None
    if opts.discover:
        from .zero_resource import markdown, run_track

        zr_track = run_track(config, data_paths, names, data_fps, training, types, seeds[0], opts, cache)
        zr_track["markdown"] = markdown(zr_track, rows, seeds[0])
    awe_table = _awe_comparison(config_file, data_paths, names, training, seeds[0], opts, cache) if opts.awe else None

    from .report import write_report

    meta = {
        "speechreps_version": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "torch": _version("torch"),
        "numpy": np.__version__,
        "config_file": str(config_file),
        "config": {t: config.get(t) for t in types},
        "seeds": seeds,
        "datasets": names,
        "data_paths": str(data_paths),
        "stage_seconds": cache.timings,
        "stage_details": cache.details,
        "stages_skipped": cache.skipped,
        "wall_seconds": round(time.time() - t_start, 1),
        "work_seconds": round(sum(cache.timings.values()), 1),
        "commit": runinfo.code_commit(),
        "machine": {**{k: v for k, v in machine_start.items() if k != "load"}, "load_at_start": machine_start["load"],
                    "load_at_end": runinfo.load_average()},
        "corpus": {name: runinfo.corpus_stats(data_paths, name) for name in names},
        "val_tokens": VAL_MAX_TOKENS,
        "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    results = {"meta": meta, "rows": rows, "training": training, "layers": layer_table}
    if awe_table:
        results["awe"] = awe_table
    if encoder_section:
        results["encoders"] = encoder_section
    if zr_track:
        results["zero_resource"] = zr_track
    write_json(opts.run_dir / "results.json", results)
    report = write_report(opts.run_dir, results, data_paths)
    return report


def _awe_comparison(config_file: Path, data_paths: Path, names: list[str], training: dict[str, dict], seed: int,
                    opts: MainJobOptions, cache: StageCache) -> str:
    """Run (or reuse) the AWE comparison on the trained models of ``seed``; returns its markdown tables."""
    from .awe.compare import compare, format_table
    from .awe.config import load_awe_config

    cfg = load_awe_config(config_file)
    feature_sets: dict[str, dict[str, Path]] = {}
    for entry in training.values():
        if entry["seed"] == seed and entry["rep"] in AWE_INPUT_TYPES:
            feature_sets.setdefault(entry["rep"], {})[entry["dataset"]] = Path(entry["ckpt_dir"])
    t0 = time.time()
    rows = compare(data_paths, names, feature_sets, cfg, opts.run_dir / "awe", seed=seed, log=opts.log,
                   cross_lingual=opts.cross_lingual, device=opts.device, progress=opts.progress)
    cache.timings["awe"] = round(time.time() - t0, 1)
    from .awe.compare import MODEL_NAMES

    return (f"{MODEL_NAMES.get(cfg.model, cfg.model)} (config section `awe`, seed {seed}) on each input feature type, beside downsampling "
            f"({cfg.downsample_n} frames, {cfg.downsample_method}); same-different AP of the embeddings, cosine "
            f"distance. Test words:\n\n{format_table(rows, 'test')}\n\nValidation words:\n\n"
            f"{format_table(rows, 'validation')}")


def _version(module: str) -> str:
    try:
        return __import__(module).__version__
    except Exception:  # pragma: no cover
        return "?"

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
6. ``awe`` (``--awe``)  the acoustic-word-embedding comparison of :mod:`speechreps.awe.compare`: an
   AWE model (the config's ``awe`` section: a ContrastiveRNN or CAE-RNN) on MFCC and on the features of each trained APC, CPC, CAPC
   and frame CAE of the first seed, per dataset and cross-lingual, beside downsampling; its rows are
   cached per job in ``RUN/awe/`` like the stages; with ``--discover`` also on each dataset's
   discovered pairs (stages ``awe-discovered:*``: MFCC and the label-free inputs);
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

import dataclasses
import json
import platform
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from . import __version__, model_types, runinfo
from .config import TrainingConfig, config_to_dict, load_config
from .errors import UserError
from .fileio import write_json
from .job_data import builtin_datasets, corpus_datasets, user_datasets
from .layerwise import layer_rows
from .run_options import VAL_MAX_TOKENS
from .runinfo import training_curves
from .stages import StageCache, fingerprint

BUILTIN_LANGUAGES = ("en", "tn")
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
    discover_on: str | None = None  # --discover-on: a second discovery round on this label-free type's features
    encoders: list[Path] = field(default_factory=list)  # pretrained model folders (--encoder), extra rows
    discover: bool = False  # the zero-resource track (speechreps.zero_resource): discovered pairs
    progress: bool = True
    log: Callable[[str], None] = field(default=print, repr=False)

    def types(self) -> list[str]:
        """The types to train, in the registry's order (a type's ``init_from`` before it)."""
        return model_types.training_order(self.only or model_types.names())


def default_config() -> Path:
    return Path(__file__).parent / "configs" / "demo.json"


# ---------------------------------------------------------------------------------------------
# Data


def _word_set(data_paths: Path, name: str, split: str):
    """The :class:`~speechreps.data.words.WordSet` of a dataset split."""
    from .data.registry import load_dataset
    from .data.words import WordSet

    return WordSet.load(load_dataset(data_paths, name), split)


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


def _score(features, words, jobs, device, base: dict, with_pr: bool) -> list[dict]:
    from .evaluate.scoring import score

    rows = []
    for distance in ("downsample", "dtw"):
        res = score(features, words, distance, jobs, device)
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
        words = _word_set(data_paths, name, split)
        base = {"features": "mfcc", "layer": None, "trained_on": None, "evaluated_on": name, "split": split,
                "seed": None, "dim": int(words.segments[0].shape[1])}
        rows += _score(words.words, words, opts.jobs, opts.device, base, with_pr=split == splits[-1])
    return rows


# ---------------------------------------------------------------------------------------------
# Training and evaluation of one model


def _seed_config(config_file: Path, rep: str, seed: int, trained: dict[str, Path]) -> TrainingConfig:
    """The config of ``rep`` for ``seed``, starting from this run's trained ``init_from`` model when there is one."""
    entry = model_types.get(rep)
    cfg = dataclasses.replace(load_config(config_file, rep), seed=seed)
    if entry.init_key and entry.init_from in trained:
        cfg = dataclasses.replace(cfg, **{entry.init_key: str(trained[entry.init_from].resolve())})
    return cfg


def stage_config(rep: str, cfg: TrainingConfig, run_init: bool) -> dict:
    """``cfg`` as a stage fingerprint holds it. With ``run_init`` (it starts from this run's ``init_from``
    model) the initialiser's path is left out: the stage's fingerprint holds that model's fingerprint
    instead, so that a copied or moved run folder reuses the stage."""
    out = config_to_dict(cfg)
    init_key = model_types.get(rep).init_key
    if run_init and init_key:
        out[init_key] = f"this run's {model_types.get(rep).init_from}"
    return out


def _train(rep: str, cfg: TrainingConfig, config_file: Path, ckpt_dir: Path, data_paths: Path, name: str,
           opts: MainJobOptions, reference: str | None = None) -> dict:
    from .pipeline import RunOptions, train

    if ckpt_dir.exists():
        shutil.rmtree(ckpt_dir)  # inputs changed (or forced): start clean, never mix two runs
    t0 = time.time()
    result = train(RunOptions(representation_type=rep, config=config_file, ckpt_dir=ckpt_dir, language=name,
                              data_paths=data_paths, device=opts.device, jobs=opts.jobs, progress=opts.progress,
                              reference_language=reference, seed=cfg.seed), log=opts.log, cfg=cfg)
    curve, val_curve = training_curves(ckpt_dir)
    return {"ckpt_dir": str(ckpt_dir), "seconds": round(time.time() - t0, 1), "curve": curve, "val_curve": val_curve,
            "best_ap": getattr(result, "best_ap", None), "best_epoch": getattr(result, "best_epoch", None),
            "frames_per_second": round(float(getattr(result, "frames_per_second", 0.0)), 1)}


def _evaluate_model(rep: str, ckpt_dir: Path, data_paths: Path, trained_on: str, name: str, seed: int,
                    opts: MainJobOptions) -> list[dict]:
    from .data.archive import save_archive
    from .extract import word_features
    from .trained import load_trained_model, setup_device

    device = setup_device(opts.device, opts.jobs)
    model, _, _ = load_trained_model(ckpt_dir, rep, device=device)
    layer = model.default_layer
    rows = []
    splits = _eval_splits(data_paths, name)
    for split in splits:
        words = _word_set(data_paths, name, split)
        feats, _ = word_features(model, words.words, words.utterances, [layer], device=device)
        save_archive(opts.run_dir / "features" / f"s{seed}" / f"{trained_on}" / f"{name}_{split}_{rep}_{layer}.npz",
                     feats[layer])
        base = {"features": rep, "layer": layer, "trained_on": trained_on, "evaluated_on": name, "split": split,
                "seed": seed, "dim": int(feats[layer][words.keys[0]].shape[1])}
        rows += _score(feats[layer], words, opts.jobs, opts.device, base, with_pr=split == splits[-1])
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
    config = json.loads(config_file.read_text())
    for rep in types:
        for section in model_types.get(rep).sections():
            load_config(config_file, section)  # validate every section used before hours of work
    if opts.awe:
        from .awe.config import load_awe_config

        load_awe_config(config_file)
    if opts.discover:
        from .zero_resource import check_discover_on

        check_discover_on(opts.discover_on, types)
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
        data_paths, names, data_fps = corpus_datasets(opts)
    elif opts.datasets:
        data_paths, names, data_fps = user_datasets(opts)
    else:
        data_paths, names, data_fps = builtin_datasets(opts, cache)

    types, pairless = _pair_sources(opts, types, data_paths, names)
    rows: list[dict] = []
    for name in names:
        rows += cache.run(f"baseline:{name}", fingerprint("baseline", data_fps[name]),
                          lambda: _baseline(data_paths, name, opts))

    seeds = [opts.base_seed + k for k in range(opts.seeds)]
    model_rows, layer_table, training = _model_stages(opts, types, config_file, data_paths, names, data_fps, seeds, cache,
                                                      pairless)
    rows += model_rows

    encoder_section = None
    if opts.encoders:
        from .encoders.job import encoder_stages

        encoder_rows, encoder_section = encoder_stages(opts, data_paths, names, data_fps, cache)
        rows += encoder_rows

    zr_track = None
    if opts.discover:
        from .zero_resource import markdown, run_track

        zr_track = run_track(config_file, data_paths, names, data_fps, training, types, seeds[0], opts, cache)
        zr_track["markdown"] = markdown(zr_track, rows, seeds[0])
    awe_table = (_awe_comparison(config_file, data_paths, names, training, seeds[0], opts, cache, zr_track)
                 if opts.awe else None)

    from .report import write_report

    meta = _meta(types, config_file, config, seeds, names, data_paths, cache, machine_start, t_start)
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


def _pair_sources(opts: MainJobOptions, types: list[str], data_paths: Path, names: list[str]) -> tuple[list[str], set[str]]:
    """The types to train and the datasets without gold word pairs (``pairless``: zero-resource ones,
    whose word tokens are the evaluation words, or ones without alignments).

    Types that train on pairs (CAPC, frame CAE) are trained on a pairless dataset only in the
    zero-resource track (``--discover``: on discovered pairs). Where no dataset has pairs and there is
    no ``--discover``, they are dropped with a notice, or refused when ``--only`` names them; ``--awe``
    is refused there (its models train on pairs too)."""
    from .data.registry import load_dataset

    pairless = {n for n in names if not load_dataset(data_paths, n).has_training_pairs()}
    pair_types = [t for t in types if model_types.get(t).uses_pairs]
    if not pairless or opts.discover:
        if pairless and pair_types:
            opts.log(f"{', '.join(pair_types)}: {', '.join(sorted(pairless))} has no gold word pairs (zero-resource), "
                     "so there they train on discovered pairs only")
        return types, pairless
    where = ", ".join(sorted(pairless))
    if opts.awe and pairless == set(names):
        raise UserError(f"--awe: {where} has no gold word pairs (a zero-resource dataset: its word tokens are the "
                        "evaluation words); add --discover to train the AWE models on pairs discovered in the audio")
    if not pair_types:
        return types, pairless
    if pairless != set(names):
        opts.log(f"{', '.join(pair_types)}: not trained on {where}, which has no gold word pairs (add --discover to "
                 "train them on discovered pairs)")
        return types, pairless
    asked = [t for t in pair_types if t in (opts.only or [])]
    if asked:
        raise UserError(f"--only {','.join(asked)}: {', '.join(asked)} trains on word pairs and {where} has none (a "
                        "zero-resource dataset: its word tokens are the evaluation words); add --discover to train "
                        "on pairs discovered in the audio")
    opts.log(f"{', '.join(pair_types)} skipped: {where} has no gold word pairs (zero-resource); add --discover to "
             "train them on pairs discovered in the audio")
    return [t for t in types if t not in pair_types], pairless


def _model_stages(opts: MainJobOptions, types: list[str], config_file: Path, data_paths: Path, names: list[str],
                  data_fps: dict[str, str], seeds: list[int], cache: StageCache,
                  pairless: set[str] = frozenset()) -> tuple[list[dict], list[dict], dict]:
    """Train, per-layer-score and evaluate every type on every dataset for every seed (stages 4-5);
    returns the table rows, the per-layer rows and the training records. A type that trains on pairs
    is not trained here on a ``pairless`` dataset (see :func:`_pair_sources`)."""
    rows: list[dict] = []
    layer_table: list[dict] = []
    training: dict[str, dict] = {}
    for seed in seeds:
        trained_dirs: dict[str, dict[str, Path]] = {name: {} for name in names}  # dataset -> type -> ckpt_dir
        for rep in types:
            init_from = model_types.get(rep).init_from
            for name in names:
                if name in pairless and model_types.get(rep).uses_pairs:
                    continue
                cfg = _seed_config(config_file, rep, seed, trained_dirs[name])
                deps = {s: config_to_dict(cfg if s == rep else _seed_config(config_file, s, seed, trained_dirs[name]))
                        for s in model_types.get(rep).sections()}
                deps[rep] = stage_config(rep, cfg, init_from in trained_dirs[name])
                ckpt_dir = opts.run_dir / "models" / f"s{seed}" / name / rep
                fp_train = fingerprint("train", rep, deps, data_fps[name], seed,
                                       training.get(f"{init_from}:{name}:s{seed}", {}).get("fingerprint"))
                res = cache.run(f"train:{rep}:{name}:s{seed}", fp_train,
                                lambda: _train(rep, cfg, config_file, ckpt_dir, data_paths, name, opts))
                if "val_curve" not in res:  # recorded by an older version
                    res = dict(zip(("curve", "val_curve"), training_curves(ckpt_dir)), **{
                        k: v for k, v in res.items() if k not in ("curve", "val_curve")})
                # the checkpoints are in this run folder's layout, whichever folder recorded the stage (a copy)
                training[f"{rep}:{name}:s{seed}"] = {**res, "ckpt_dir": str(ckpt_dir), "fingerprint": fp_train,
                                                     "rep": rep, "dataset": name, "seed": seed}
                layer_table += cache.run(
                    f"layers:{rep}:{name}:s{seed}", fingerprint("layers", fp_train, data_fps[name], VAL_MAX_TOKENS),
                    lambda: layer_rows(rep, ckpt_dir, data_paths, name, seed, opts.jobs, opts.device))
                trained_dirs[name][rep] = ckpt_dir
                targets = [name] + ([n for n in names if n != name] if opts.cross_lingual and name == names[0] else [])
                for target in targets:
                    rows += cache.run(
                        f"evaluate:{rep}:{name}:{target}:s{seed}",
                        fingerprint("evaluate", fp_train, data_fps[target]),
                        lambda: _evaluate_model(rep, ckpt_dir, data_paths, name, target, seed, opts))

    return rows, layer_table, training


def _meta(types: list[str], config_file: Path, config: dict, seeds: list[int], names: list[str],
          data_paths: Path, cache: StageCache, machine_start: dict, t_start: float) -> dict:
    """The run facts recorded in results.json and the report: versions, config, stage times, machine, corpus."""
    return {
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


def _awe_comparison(config_file: Path, data_paths: Path, names: list[str], training: dict[str, dict], seed: int,
                    opts: MainJobOptions, cache: StageCache, zr_track: dict | None = None) -> str:
    """Run (or reuse) the AWE comparison on the trained models of ``seed``; returns its markdown tables.

    With the zero-resource track (``zr_track``, ``--discover``) the comparison also trains on each
    dataset's discovered pairs: MFCC, the label-free frame models (types that train without pairs)
    and the track's discovered-pair models.
    """
    from .awe.compare import compare, format_table, label_free_inputs, scored_splits
    from .awe.config import load_awe_config

    cfg = load_awe_config(config_file)
    feature_sets: dict[str, dict[str, Path]] = {}
    for entry in training.values():
        if entry["seed"] == seed and model_types.get(entry["rep"]).awe_input:
            feature_sets.setdefault(entry["rep"], {})[entry["dataset"]] = Path(entry["ckpt_dir"])
    discovered = dict(zr_track.get("datasets") or {}) if zr_track else None
    label_free = label_free_inputs(feature_sets, (zr_track or {}).get("models") or {})
    t0 = time.time()
    rows = compare(data_paths, names, feature_sets, cfg, opts.run_dir / "awe", seed=seed, log=opts.log,
                   cross_lingual=opts.cross_lingual, device=opts.device, progress=opts.progress,
                   discovered=discovered, discovered_features=label_free)
    cache.timings["awe"] = round(time.time() - t0, 1)
    from .awe.compare import model_title

    pairs = ("" if not discovered else
             " Training pairs: \"gold\", the dataset's ground-truth word pairs (an upper bound); \"discovered\", "
             "the pairs of the zero-resource track's term discovery (`<dataset>_zr`), the AWE model read at its "
             "last.pt (the AP on the terms discovered in the validation audio, cluster ids as labels, is logged but "
             "picked worse epochs): no word label used in training or selection. Their inputs "
             "are label-free too: MFCC, models trained without pairs (read at their last.pt, "
             "marked \"(last.pt)\", as gold validation AP picked their best.pt), and the track's models trained on "
             "discovered pairs (frame model trained on `<dataset>_zr`, or on `<dataset>_zr_<type>`, the pairs of "
             "`--discover-on`'s second round; the AWE model itself always trains on `<dataset>_zr`'s). Every row is "
             "scored on the dataset's gold words.")
    head = (f"{model_title(cfg.model)} (config section `awe`, seed {seed}) on each input feature type, beside downsampling "
            f"({cfg.downsample_n} frames, {cfg.downsample_method}); same-different AP of the embeddings, cosine "
            f"distance.{pairs}")
    titles = {"test": "Test words", "validation": "Validation words",
              "all": "All words of a zero-resource dataset (no gold-pair rows: its words are the evaluation words)"}
    parts = [f"{titles[split]}:\n\n{format_table([r for r in rows if f'{split}_{cfg.model}_ap' in r], split)}"
             for split in scored_splits(rows, cfg.model)]
    return head + " " + "\n\n".join(parts)


def _version(module: str) -> str:
    try:
        return __import__(module).__version__
    except Exception:  # pragma: no cover
        return "?"

"""The comparison the AWE step exists for: which frame-level features make the best AWE inputs.

For every input feature type (MFCC, and each trained frame-level model: APC, CPC, CAPC, frame AE /
CAE), :func:`compare` trains the config's AWE model (a CAE-RNN or a ContrastiveRNN, the ``model``
key) with the same config and seed on the training pairs of a dataset in those features, and scores
on the test words (and validation words) the downsampled AWEs of the same features (no training) and
the model's embeddings, by same-different AP with the cosine distance. Rows: input features x
dataset; plus two kinds of cross-lingual rows: a frame-level model trained on the first dataset
(English in the built-in corpus) as the input of an AWE model trained and evaluated on each other
dataset (Setswana), and each AWE model of the first dataset applied as it is to the other datasets'
words (``English -> Setswana`` in the table: nothing trained on the target language).

**Pair sources.** Every row above trains on the dataset's *gold* pairs (ground truth: an upper
bound). With a zero-resource twin ``<dataset>_zr`` (registered by ``speechreps run --discover``:
the discovered pairs as ``train_pairs``, the terms discovered in the validation audio as
``validation_words``), :func:`plan_discovered` adds *discovered* rows: the same AWE model trained
on the twin (its pairs), read at ``last.pt`` (:func:`~speechreps.awe.train.scored_checkpoint`: the
AP on the twin's pseudo-labelled validation terms picks the wrong epoch there), and scored on the
dataset's gold validation and test words, for MFCC and for label-free inputs only (frame models
trained without pairs, and models trained on the twin's discovered pairs, shown as trained on
``<dataset>_zr``). The table's ``training pairs`` column says which source a row used.

Each job is a stage of :class:`speechreps.stages.StageCache` (the main job's): its row is recorded in
``OUT/stages/awe__<features>__<trained_on>__<dataset>__s<seed>.json`` (discovered pairs:
``awe-discovered__<features>__<trained_on>__<dataset>_zr__s<seed>.json``) and reused while its inputs
(config, seed, frame model checkpoint, discovered pair and validation files) are unchanged, so an
interrupted comparison resumes where it stopped; the AWE model's checkpoints are in ``OUT/<features>/<trained_on>/<dataset>/s<seed>/``
(discovered pairs: ``<dataset>_zr`` in place of ``<dataset>``). The table is written to
``OUT/awe_compare.md`` and the rows to ``OUT/awe_compare.json``.

From the main job: ``speechreps awe compare --run-dir runs/main`` reads ``runs/main/results.json``
(its ``training`` entries: ``rep``, ``dataset``, ``seed``, ``ckpt_dir``; ``meta.data_paths`` and
``meta.datasets``), see :func:`plan_from_results`; a run with ``--discover`` also gives the
discovered-pair rows (:func:`discovered_from_results`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from .. import model_types
from ..errors import UserError
from ..fileio import write_json, write_text
from ..zero_resource import is_twin
from .config import AWEConfig, awe_config_to_dict, for_discovered_pairs

# Row order of the table: input features.
FEATURE_ORDER = ("mfcc", *model_types.names())


def model_title(model: str) -> str:
    """An AWE model type's name in tables (the registry's ``title``)."""
    entry = model_types.AWE_MODEL_TYPES.get(model)
    return entry.title if entry else "AWE model"


def _feature_order(feature_sets: dict) -> list[str]:
    """Feature types in table order: MFCC, then the registry's order, then any others by name."""
    return sorted(feature_sets, key=lambda f: (FEATURE_ORDER.index(f) if f in FEATURE_ORDER else len(FEATURE_ORDER), f))


def label_free_inputs(feature_sets: dict[str, dict[str, str | Path]], track_models: dict[str, dict[str, str | Path]]
                      ) -> dict[str, dict[str, Path]]:
    """The inputs a discovered-pair job may read: the entries of ``feature_sets`` whose type trains
    without pairs (no gold pair in its training), plus the zero-resource track's models
    (``{type: {<dataset>_zr: checkpoint folder}}``) of types the AWE comparison takes as inputs."""
    out = {rep: {k: Path(v) for k, v in sets.items()} for rep, sets in feature_sets.items()
           if rep in model_types.MODEL_TYPES and not model_types.get(rep).uses_pairs}
    for rep, dirs in track_models.items():
        if rep in model_types.MODEL_TYPES and model_types.get(rep).awe_input:
            for zr, ckpt_dir in dirs.items():
                out.setdefault(rep, {})[zr] = Path(ckpt_dir)
    return out


@dataclass
class CompareJob:
    """One AWE model to train: ``features`` of a frame model trained on ``trained_on`` (``None``: MFCC), on ``dataset``.

    ``pairs_from``: the dataset whose training pairs train the model and whose validation words pick
    its ``best.pt`` (``None``: ``dataset`` itself, its gold pairs); a zero-resource dataset
    ``<dataset>_zr`` of ``speechreps run --discover`` gives the discovered pairs and the pseudo-labelled
    validation terms (logged; the row reads ``last.pt``). Scores are always on ``dataset``'s (gold)
    validation and test words.
    """

    features: str
    dataset: str
    trained_on: str | None = None
    frame_model: Path | None = None
    pairs_from: str | None = None
    frame_checkpoint: str = "best"  # the frame model's best.pt or last.pt

    @property
    def pairs(self) -> str:
        """The pair source, as the table names it: ``gold`` or ``discovered``."""
        return "gold" if self.pairs_from is None else "discovered"

    def stage(self, seed: int) -> str:
        """Its stage name in the :class:`~speechreps.stages.StageCache` (the gold jobs' names predate pair sources)."""
        if self.pairs_from is None:
            return f"awe:{self.features}:{self.trained_on or '-'}:{self.dataset}:s{seed}"
        return f"awe-discovered:{self.features}:{self.trained_on or '-'}:{self.pairs_from}:s{seed}"


def plan(datasets: list[str], feature_sets: dict[str, dict[str, str | Path]], cross_lingual: bool = True) -> list[CompareJob]:
    """The jobs: MFCC and every feature set per dataset, then the cross-lingual ones.

    ``feature_sets``: ``{features: {trained_on dataset: frame-model checkpoint folder}}``.
    Cross-lingual: a model trained on ``datasets[0]`` as the input for each other dataset.
    """
    order = _feature_order(feature_sets)
    jobs = []
    for name in datasets:
        jobs.append(CompareJob("mfcc", name))
        for feat in order:
            if name in feature_sets[feat]:
                jobs.append(CompareJob(feat, name, name, Path(feature_sets[feat][name])))
    if cross_lingual and len(datasets) > 1:
        first = datasets[0]
        for name in datasets[1:]:
            for feat in order:
                if first in feature_sets[feat]:
                    jobs.append(CompareJob(feat, name, first, Path(feature_sets[feat][first])))
    return jobs


def plan_discovered(datasets: list[str], pair_sources: dict[str, str],
                    feature_sets: dict[str, dict[str, str | Path]]) -> list[CompareJob]:
    """The discovered-pair jobs: per dataset with a zero-resource twin (``pair_sources``: ``{dataset: <dataset>_zr}``,
    whose pairs train every job), MFCC and each feature set of a frame model trained on that dataset
    or on one of its twins (:func:`~speechreps.zero_resource.is_twin`: also ``<dataset>_zr_<type>``,
    the pairs of ``run --discover-on TYPE``'s second round).

    Only label-free inputs belong in ``feature_sets`` here: models trained without pairs (APC, CPC)
    on the dataset, and the zero-resource track's models trained on the twin's discovered pairs
    (``trained_on`` ``<dataset>_zr`` in the table); a model trained on gold pairs is not. A model
    trained on the dataset is read at its ``last.pt``: its ``best.pt`` was picked by the AP on the
    dataset's gold validation words.
    """
    order = _feature_order(feature_sets)
    jobs = []
    for name in datasets:
        zr = pair_sources.get(name)
        if zr is None:
            continue
        jobs.append(CompareJob("mfcc", name, pairs_from=zr))
        for feat in order:
            # the dataset's own model, then those of the track's rounds (<ds>_zr, <ds>_zr_<type>)
            for trained_on in (name, *sorted(k for k in feature_sets[feat] if is_twin(k, name))):
                if trained_on in feature_sets[feat]:
                    # a model trained on the dataset itself validated on its gold words, which picked its
                    # best.pt: its last.pt is the label-free choice; one of the twin picked on pseudo labels
                    jobs.append(CompareJob(feat, name, trained_on, Path(feature_sets[feat][trained_on]), pairs_from=zr,
                                           frame_checkpoint="last" if trained_on == name else "best"))
    return jobs


def _fingerprint(job: CompareJob, cfg: AWEConfig, seed: int, data_paths: Path, apply_to: list[str]) -> str:
    """What decides a job's row: its config and seed, the files of every dataset it reads (scored on,
    trained on, applied to; :meth:`~speechreps.data.registry.DatasetPaths.stamp`: names, sizes and
    times, no folders) and its frame model's checkpoint (file name, size, time). No absolute path, so
    that a run folder moved or copied with its data (``cp -a``) reuses its AWE jobs."""
    from ..data.registry import load_dataset

    stamp: list[Any] = [job.features, job.dataset, job.trained_on, seed, awe_config_to_dict(cfg)]
    for name in [job.dataset, *([job.pairs_from] if job.pairs_from else []), *apply_to]:
        stamp.append([name, load_dataset(data_paths, name).stamp()])
    if apply_to:
        stamp.append(apply_to)
    if job.pairs_from is not None:  # scored at last.pt since 2026-12-03 (best.pt before): rows of before are stale
        stamp.append({"scored_checkpoint": "last"})
    if job.frame_model is not None:
        from ..train import checkpoint as ckpt

        p = ckpt.find_checkpoint(job.frame_model, prefer=job.frame_checkpoint)
        st = p.stat()
        stamp += [p.name, st.st_size, int(st.st_mtime)]
    return hashlib.sha256(json.dumps(stamp, sort_keys=True, default=str).encode()).hexdigest()[:16]


def run_job(job: CompareJob, data_paths: Path, cfg: AWEConfig, out_dir: Path, seed: int, device: Any = None,
            log: Callable[[str], None] = print, progress: bool = False, apply_to: list[str] | None = None,
            fingerprint: str | None = None) -> dict:
    """Train and score one AWE model; returns the row (:func:`compare` reuses it while its inputs are unchanged).

    ``apply_to``: other datasets on which the trained model is scored as it is (the AWE model's own
    cross-lingual transfer), in the same input features; their rows are in ``row["transfer"]``.
    """
    apply_to = list(apply_to or [])
    from ..data.registry import load_dataset
    from .data import MFCCInput, ModelInput
    from .train import InputSpec, evaluate_awe, load_awe, scored_checkpoint, train_awe

    cfg = dataclasses.replace(cfg, seed=seed)
    if job.pairs_from is not None:
        cfg = for_discovered_pairs(cfg)
    job_dir = Path(out_dir) / job.features / (job.trained_on or "-") / (job.pairs_from or job.dataset) / f"s{seed}"
    ckpt_dir = job_dir / cfg.model
    if ckpt_dir.exists():
        import shutil

        shutil.rmtree(ckpt_dir)  # inputs changed: never mix two runs
    ds = load_dataset(data_paths, job.dataset)  # scored on its (gold) validation and test words
    train_ds = ds if job.pairs_from is None else load_dataset(data_paths, job.pairs_from)
    if job.frame_model is None:
        inputs, spec = MFCCInput(), InputSpec(kind="mfcc", name="mfcc")
    else:
        t0 = time.perf_counter()
        inputs = ModelInput(job.frame_model, device=device or "cpu", checkpoint=job.frame_checkpoint)
        spec = InputSpec(kind="model", frame_model=str(Path(job.frame_model).resolve()), layer=inputs.layer, name=job.features,
                         checkpoint=job.frame_checkpoint)
        log(f"awe compare: {job.features} features from {inputs.describe()} (loaded in {time.perf_counter() - t0:.1f} s)")
    log(f"awe compare: training a {model_title(cfg.model)} on {job.features} features of {job.dataset}"
        + (f" (frame model trained on {job.trained_on})" if job.trained_on and job.trained_on != job.dataset else "")
        + (f", on the discovered pairs of {job.pairs_from}" if job.pairs_from else ""))
    res = train_awe(cfg, train_ds, inputs, ckpt_dir, device=device, spec=spec, log=log, progress=progress,
                    pairs=job.pairs)
    scored = scored_checkpoint(ckpt_dir)  # discovered pairs: last.pt (their pseudo-labelled validation misleads)
    model, model_path = load_awe(ckpt_dir, checkpoint=scored, device=device or "cpu")
    t0 = time.perf_counter()
    scores = evaluate_awe(ds, inputs, model, cfg, device=device or "cpu")
    row: dict[str, Any] = {
        "features": job.features, "trained_on": job.trained_on, "dataset": job.dataset, "seed": seed,
        "frame_model": str(job.frame_model) if job.frame_model else None,
        "frame_checkpoint": job.frame_checkpoint if job.frame_model else None,
        "frame_checkpoint_path": str(inputs.path) if job.frame_model else None,
        "layer": getattr(inputs, "layer", None), "dim": int(model.cfg.input_dim), "n_pairs": res.n_pairs,
        "train_seconds": res.seconds, "prepare_seconds": res.prepare_seconds,
        "eval_seconds": round(time.perf_counter() - t0, 2), "best_epoch": res.best_epoch,
        "checkpoint": model_path.name,
        "ckpt_dir": str(ckpt_dir), "fingerprint": fingerprint,
        # where the training pairs and the validation words that picked best.pt came from (discovered
        # pairs: logged only, the row is of last.pt, "checkpoint")
        "pairs": job.pairs, "pairs_from": train_ds.name, "pair_file": str(train_ds.train_pairs) if train_ds.train_pairs else None,
        "selection_words": str(train_ds.words.get("validation")) if train_ds.words.get("validation") else None,
        "selection_val_ap": res.best_ap,
    }
    row["model"] = cfg.model
    _add_scores(row, scores, cfg.model)
    row["transfer"] = []
    for other in apply_to:
        log(f"awe compare: the {job.features} {cfg.model} of {job.dataset} applied to {other}")
        transfer = {**row, "dataset": other, "awe_trained_on": job.dataset, "train_seconds": 0.0, "prepare_seconds": 0.0}
        del transfer["transfer"]
        _add_scores(transfer, evaluate_awe(load_dataset(data_paths, other), inputs, model, cfg, device=device or "cpu"), cfg.model)
        row["transfer"].append(transfer)
    return row


def _add_scores(row: dict, scores: dict, model: str) -> None:
    for split, entry in scores.items():
        for kind in ("downsample", model):
            row[f"{split}_{kind}_ap"] = entry[kind]["ap"]
            row[f"{split}_{kind}_ap_cross_speaker"] = entry[kind]["ap_cross_speaker"]


def compare(data_paths: str | Path, datasets: list[str], feature_sets: dict[str, dict[str, str | Path]], config: AWEConfig,
            out_dir: str | Path, seed: int = 0, log: Callable[[str], None] = print, cross_lingual: bool = True,
            device: Any = None, progress: bool = False, force: bool = False,
            discovered: dict[str, str] | None = None,
            discovered_features: dict[str, dict[str, str | Path]] | None = None,
            workers: int | None = None) -> list[dict]:
    """Train an AWE model per input feature type (see the module docstring); returns the rows, writes the table.

    ``feature_sets``: ``{features: {trained_on dataset: frame-model checkpoint folder}}`` (MFCC is
    always included). Rows hold ``test_downsample_ap``, ``test_<model>_ap`` (and ``_cross_speaker``,
    and the same for ``validation``), ``train_seconds`` (AWE training, AE pre-training and
    validation included), ``prepare_seconds`` (encoding the training data with the frame model) and
    ``pairs`` (``gold`` or ``discovered``).

    ``discovered``: ``{dataset: its zero-resource twin}`` (``<dataset>_zr`` of ``speechreps run
    --discover``): the same jobs once more on the twin's discovered pairs, read at last.pt (their
    pseudo-labelled validation terms are logged, and picked worse epochs), scored on the dataset's
    gold words (:func:`plan_discovered`), for MFCC and the label-free ``discovered_features`` (same layout as ``feature_sets``). No cross-lingual
    rows for them.

    ``workers``: jobs trained at once, each in its own process on one thread (default
    :func:`default_workers`: one per CPU thread for a small model on the CPU, else 1, in this process).
    Every job seeds itself, so the rows do not depend on it.
    """
    from ..stages import StageCache

    out_dir = Path(out_dir)
    datasets = list(datasets)
    jobs = plan(datasets, feature_sets, cross_lingual)
    from ..data.registry import load_dataset

    # no gold-pair job on a dataset without gold pairs (zero-resource: its words are the evaluation words)
    pairless = {n for n in datasets if not load_dataset(data_paths, n).has_training_pairs()}
    jobs = [j for j in jobs if j.dataset not in pairless]
    if discovered:
        jobs += plan_discovered(datasets, discovered, discovered_features or {})
    cache = StageCache(out_dir, force, log=log)  # the main job's stage records: out_dir/stages/<job>.json
    done: dict[int, dict] = {}
    todo: list[tuple[int, CompareJob, list[str], str]] = []
    for i, job in enumerate(jobs):
        others = datasets[1:] if cross_lingual and job.dataset == datasets[0] and job.pairs_from is None else []
        fp = _fingerprint(job, dataclasses.replace(config, seed=seed), seed, Path(data_paths), others)
        hit, row = cache.cached(job.stage(seed), fp)
        if hit:
            done[i] = row
        else:
            todo.append((i, job, others, fp))

    def finished(i: int, row: dict) -> None:  # rows so far, in job order, so an interrupted run leaves a table
        done[i] = row
        rows = [done[k] for k in sorted(done)]
        write_json(out_dir / "awe_compare.json", {"config": awe_config_to_dict(config), "seed": seed,
                                                  "rows": _flatten(rows)})

    n_workers = min(len(todo), workers if workers is not None else default_workers(config, device))
    if n_workers <= 1:
        for n, (i, job, others, fp) in enumerate(todo, 1):
            log(f"awe compare: job {n}/{len(todo)} to train ({len(jobs)} in all)")
            finished(i, cache.run(job.stage(seed), fp, lambda: run_job(
                job, Path(data_paths), config, out_dir, seed, device, log, progress, apply_to=others, fingerprint=fp)))
    else:
        _run_in_workers(todo, n_workers, cache, finished, Path(data_paths), config, out_dir, seed, device, log)
    rows = _flatten([done[k] for k in sorted(done)])
    write_text(out_dir / "awe_compare.md", format_table(rows, (scored_splits(rows, config.model) or ["test"])[0]) + "\n")
    return rows


def _flatten(rows: list[dict]) -> list[dict]:
    """The jobs' rows, then their models' rows on the other datasets (``transfer``)."""
    return ([{k: v for k, v in r.items() if k != "transfer"} for r in rows]
            + [t for r in rows for t in r.get("transfer", [])])


# At most this many AWE jobs at once: each worker holds its own copy of the dataset and frame model
# (about 1 GB each on the built-in corpus), so a many-core machine should not start one per core.
MAX_WORKERS = 8


def default_workers(config: AWEConfig, device: Any) -> int:
    """How many AWE jobs to train at once: one per allowed CPU thread (at most :data:`MAX_WORKERS`)
    when the model trains on one thread anyway (:func:`speechreps.threads.small_awe_config`: the demo
    ContrastiveRNN), else 1."""
    import torch

    from ..threads import small_awe_config

    requested = device if device is not None else ("cuda" if torch.cuda.is_available() else "cpu")
    on_cpu = torch.device(requested).type == "cpu"
    return max(1, min(torch.get_num_threads(), MAX_WORKERS)) if on_cpu and small_awe_config(config) else 1


def _worker_init(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def _worker_job(job: CompareJob, data_paths: Path, config: AWEConfig, out_dir: Path, seed: int, others: list[str],
                fp: str, device: str) -> tuple[dict, float, list]:
    """One job in a worker process: its row, wall seconds and load average before and after."""
    from ..stages import load_average

    t0, load0 = time.time(), load_average()
    name = job.stage(seed)
    row = run_job(job, data_paths, config, out_dir, seed, device, lambda m: print(f"[{name}] {m}", flush=True),
                  False, apply_to=others, fingerprint=fp)
    return row, round(time.time() - t0, 2), [load0, load_average()]


def _run_in_workers(todo, n_workers: int, cache, finished: Callable[[int, dict], None], data_paths: Path,
                    config: AWEConfig, out_dir: Path, seed: int, device: Any, log: Callable[[str], None]) -> None:
    """The jobs of ``todo`` in ``n_workers`` processes of one torch thread each (small AWE models gain
    nothing from a second thread, see threads.py, so N at once train N times as fast); each result is
    recorded by ``cache`` in this process as it arrives. A failed job stops the rest and raises."""
    import concurrent.futures as cf
    import multiprocessing as mp

    log(f"awe compare: {len(todo)} jobs to train, {n_workers} at a time (one thread each)")
    # spawn, not fork: the parent's torch / OpenMP threads do not survive a fork
    with cf.ProcessPoolExecutor(n_workers, mp_context=mp.get_context("spawn"), initializer=_worker_init,
                                initargs=(1,)) as pool:
        futures = {}
        for i, job, others, fp in todo:
            futures[pool.submit(_worker_job, job, data_paths, config, out_dir, seed, others, fp,
                                str(device or "cpu"))] = (i, job, fp)
            log(f"[{job.stage(seed)}] queued")
        try:
            for fut in cf.as_completed(futures):
                i, job, fp = futures[fut]
                row, seconds, load = fut.result()
                cache.record(job.stage(seed), fp, row, seconds, load)
                finished(i, row)
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise


def scored_splits(rows: list[dict], model: str) -> list[str]:
    """The splits the rows hold AWE scores of, in table order: test, validation, then ``all`` (a
    zero-resource dataset's one split)."""
    return [s for s in ("test", "validation", "all") if any(f"{s}_{model}_ap" in r for r in rows)]


def format_table(rows: list[dict], split: str = "test") -> str:
    """A markdown table: features x (downsampled AP, AWE model AP), cross-speaker APs, training seconds."""
    def f(x):
        return "-" if x is None else f"{x:.3f}"

    models = {r.get("model", "cae_rnn") for r in rows}
    name = model_title(models.pop()) if len(models) == 1 else "AWE model"
    lines = [
        f"| input features | frame model trained on | AWEs trained and evaluated on | training pairs | dim | "
        f"downsampled AP ({split}) | {name} AP ({split}) | downsampled AP x-spk | {name} AP x-spk | {name} train s | encode s |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        m = r.get("model", "cae_rnn")
        # a model applied to another dataset as it is: "trained on -> evaluated on"
        where = f"{r['awe_trained_on']} -> {r['dataset']}" if r.get("awe_trained_on") else r["dataset"]
        # gold: the dataset's ground-truth pairs (the upper bound); discovered: term discovery's, no label used
        pairs = "discovered" if r.get("pairs") == "discovered" else "gold"
        frame = r["trained_on"] or "-"
        if r.get("frame_checkpoint") == "last":
            frame += " (last.pt)"
        lines.append(
            f"| {r['features']} | {frame} | {where} | {pairs} | {r.get('dim', '-')} | "
            f"{f(r.get(f'{split}_downsample_ap'))} | {f(r.get(f'{split}_{m}_ap'))} | "
            f"{f(r.get(f'{split}_downsample_ap_cross_speaker'))} | {f(r.get(f'{split}_{m}_ap_cross_speaker'))} | "
            f"{r.get('train_seconds', 0):.0f} | {r.get('prepare_seconds', 0):.0f} |"
        )
    return "\n".join(lines)


def _resolve(path: str, run_dir: Path) -> Path:
    p = Path(path)
    if p.is_absolute() or p.exists():
        return p
    for base in (run_dir, run_dir.parent, run_dir.parent.parent):
        if (base / p).exists():
            return base / p
    return p


def plan_from_results(run_dir: str | Path, seed: int | None = None) -> tuple[Path, list[str], dict[str, dict[str, Path]], int]:
    """``(data_paths, datasets, feature_sets, seed)`` of a main-job run folder's ``results.json``.

    ``feature_sets`` holds every trained model of ``seed`` (default: the run's first seed).
    Models are looked up in the run folder's own layout (``models/s<seed>/<dataset>/<type>``), else
    by their recorded path, tried against the current folder, then the run folder and its parents.
    """
    run_dir = Path(run_dir)
    path = run_dir / "results.json"
    if not path.is_file():
        raise UserError(f"{path} does not exist: run the main job first (speechreps run --out {run_dir})")
    try:
        results = json.loads(path.read_text())
        meta, training = results["meta"], results["training"]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise UserError(f"{path} is not a main-job results file ({exc})") from None
    seeds = meta.get("seeds") or sorted({int(t["seed"]) for t in training.values()})
    seed = int(seeds[0]) if seed is None else int(seed)
    data_paths = _resolve(str(meta["data_paths"]), run_dir)
    feature_sets: dict[str, dict[str, Path]] = {}
    for entry in training.values():
        if int(entry.get("seed", -1)) != seed:
            continue
        # the run folder's own layout first: a relative ckpt_dir may also exist under the current
        # folder, belonging to another run
        ck = run_dir / "models" / f"s{seed}" / entry["dataset"] / entry["rep"]
        if not ck.is_dir():
            ck = _resolve(entry["ckpt_dir"], run_dir)
        feature_sets.setdefault(entry["rep"], {})[entry["dataset"]] = ck
    if not feature_sets:
        raise UserError(f"{path}: no trained models of seed {seed}")
    return data_paths, list(meta.get("datasets") or []), feature_sets, seed


def discovered_from_results(run_dir: str | Path, feature_sets: dict[str, dict[str, Path]], seed: int
                            ) -> tuple[dict[str, str], dict[str, dict[str, Path]]]:
    """``(discovered, label_free)`` for :func:`compare` from a main-job run with ``--discover`` (``({}, {})`` without).

    ``discovered``: ``{dataset: <dataset>_zr}``; ``label_free``: the entries of ``feature_sets`` whose
    type trains without pairs, plus the zero-resource track's models of ``seed`` trained on
    ``<dataset>_zr`` or ``<dataset>_zr_<type>`` (found in the run folder's ``models/s<seed>/<twin>/<type>``).
    """
    run_dir = Path(run_dir)
    results = json.loads((run_dir / "results.json").read_text())
    track = results.get("zero_resource") or {}
    discovered = dict(track.get("datasets") or {})
    if not discovered:  # a run recorded before the track listed its datasets: the registered twins
        discovered = {name: f"{name}_zr" for name in track.get("discovery") or {}}
    # the track's models of the types compared, found in the run folder (both rounds' twins)
    models = run_dir / "models" / f"s{seed}"
    twins = sorted(d.name for d in models.iterdir() if any(is_twin(d.name, n) for n in discovered)) if models.is_dir() else []
    track_models = {rep: {zr: models / zr / rep for zr in twins if (models / zr / rep).is_dir()} for rep in feature_sets}
    label_free = label_free_inputs(feature_sets, track_models)
    return discovered, label_free

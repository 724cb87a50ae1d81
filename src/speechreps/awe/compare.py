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

Each job is a stage of :class:`speechreps.stages.StageCache` (the main job's): its row is recorded in
``OUT/stages/awe__<features>__<trained_on>__<dataset>__s<seed>.json`` and reused while its inputs
(config, seed, frame model checkpoint) are unchanged, so an interrupted comparison resumes where it
stopped; the AWE model's checkpoints are in ``OUT/<features>/<trained_on>/<dataset>/s<seed>/``. The table is written to
``OUT/awe_compare.md`` and the rows to ``OUT/awe_compare.json``.

From the main job: ``speechreps awe compare --run-dir runs/main`` reads ``runs/main/results.json``
(its ``training`` entries: ``rep``, ``dataset``, ``seed``, ``ckpt_dir``; ``meta.data_paths`` and
``meta.datasets``), see :func:`plan_from_results`.
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
from .config import AWEConfig, awe_config_to_dict

# Row order of the table: input features.
FEATURE_ORDER = ("mfcc", *model_types.names())


def model_title(model: str) -> str:
    """An AWE model type's name in tables (the registry's ``title``)."""
    entry = model_types.AWE_MODEL_TYPES.get(model)
    return entry.title if entry else "AWE model"


@dataclass
class CompareJob:
    """One CAE-RNN to train: ``features`` of a frame model trained on ``trained_on`` (``None``: MFCC), on ``dataset``."""

    features: str
    dataset: str
    trained_on: str | None = None
    frame_model: Path | None = None


def plan(datasets: list[str], feature_sets: dict[str, dict[str, str | Path]], cross_lingual: bool = True) -> list[CompareJob]:
    """The jobs: MFCC and every feature set per dataset, then the cross-lingual ones.

    ``feature_sets``: ``{features: {trained_on dataset: frame-model checkpoint folder}}``.
    Cross-lingual: a model trained on ``datasets[0]`` as the input for each other dataset.
    """
    order = sorted(feature_sets, key=lambda f: (FEATURE_ORDER.index(f) if f in FEATURE_ORDER else len(FEATURE_ORDER), f))
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


def _fingerprint(job: CompareJob, cfg: AWEConfig, seed: int, data_paths: Path, apply_to: list[str]) -> str:
    stamp: list[Any] = [job.features, job.dataset, job.trained_on, seed, awe_config_to_dict(cfg), str(Path(data_paths).resolve())]
    if apply_to:
        stamp.append(apply_to)
    if job.frame_model is not None:
        from ..train import checkpoint as ckpt

        p = ckpt.find_checkpoint(job.frame_model)
        st = p.stat()
        stamp += [str(p.resolve()), st.st_size, int(st.st_mtime)]
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
    from .train import InputSpec, evaluate_awe, load_awe, train_awe

    cfg = dataclasses.replace(cfg, seed=seed)
    job_dir = Path(out_dir) / job.features / (job.trained_on or "-") / job.dataset / f"s{seed}"
    ckpt_dir = job_dir / cfg.model
    if ckpt_dir.exists():
        import shutil

        shutil.rmtree(ckpt_dir)  # inputs changed: never mix two runs
    ds = load_dataset(data_paths, job.dataset)
    if job.frame_model is None:
        inputs, spec = MFCCInput(), InputSpec(kind="mfcc", name="mfcc")
    else:
        t0 = time.perf_counter()
        inputs = ModelInput(job.frame_model, device=device or "cpu")
        spec = InputSpec(kind="model", frame_model=str(Path(job.frame_model).resolve()), layer=inputs.layer, name=job.features)
        log(f"awe compare: {job.features} features from {inputs.describe()} (loaded in {time.perf_counter() - t0:.1f} s)")
    log(f"awe compare: training a CAE-RNN on {job.features} features of {job.dataset}"
        + (f" (frame model trained on {job.trained_on})" if job.trained_on and job.trained_on != job.dataset else ""))
    res = train_awe(cfg, ds, inputs, ckpt_dir, device=device, spec=spec, log=log, progress=progress)
    model, _ = load_awe(ckpt_dir, device=device or "cpu")
    t0 = time.perf_counter()
    scores = evaluate_awe(ds, inputs, model, cfg, device=device or "cpu")
    row: dict[str, Any] = {
        "features": job.features, "trained_on": job.trained_on, "dataset": job.dataset, "seed": seed,
        "frame_model": str(job.frame_model) if job.frame_model else None,
        "layer": getattr(inputs, "layer", None), "dim": int(model.cfg.input_dim), "n_pairs": res.n_pairs,
        "train_seconds": res.seconds, "prepare_seconds": res.prepare_seconds,
        "eval_seconds": round(time.perf_counter() - t0, 2), "best_epoch": res.best_epoch,
        "ckpt_dir": str(ckpt_dir), "fingerprint": fingerprint,
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
            device: Any = None, progress: bool = False, force: bool = False) -> list[dict]:
    """Train a CAE-RNN per input feature type (see the module docstring); returns the rows, writes the table.

    ``feature_sets``: ``{features: {trained_on dataset: frame-model checkpoint folder}}`` (MFCC is
    always included). Rows hold ``test_downsample_ap``, ``test_cae_rnn_ap`` (and ``_cross_speaker``,
    and the same for ``validation``), ``train_seconds`` (CAE-RNN training, AE pre-training and
    validation included) and ``prepare_seconds`` (encoding the training data with the frame model).
    """
    from ..stages import StageCache

    out_dir = Path(out_dir)
    datasets = list(datasets)
    jobs = plan(datasets, feature_sets, cross_lingual)
    cache = StageCache(out_dir, force, log=log)  # the main job's stage records: out_dir/stages/<job>.json
    rows, transfer = [], []
    for i, job in enumerate(jobs, 1):
        log(f"awe compare: job {i}/{len(jobs)}")
        others = datasets[1:] if cross_lingual and job.dataset == datasets[0] else []
        fp = _fingerprint(job, dataclasses.replace(config, seed=seed), seed, Path(data_paths), others)
        row = cache.run(f"awe:{job.features}:{job.trained_on or '-'}:{job.dataset}:s{seed}", fp, lambda: run_job(
            job, Path(data_paths), config, out_dir, seed, device, log, progress, apply_to=others, fingerprint=fp))
        rows.append({k: v for k, v in row.items() if k != "transfer"})
        transfer += row.get("transfer", [])
        write_json(out_dir / "awe_compare.json", {"config": awe_config_to_dict(config), "seed": seed, "rows": rows + transfer})
    rows += transfer
    write_text(out_dir / "awe_compare.md", format_table(rows) + "\n")
    return rows


def format_table(rows: list[dict], split: str = "test") -> str:
    """A markdown table: features x (downsampled AP, AWE model AP), cross-speaker APs, training seconds."""
    def f(x):
        return "-" if x is None else f"{x:.3f}"

    models = {r.get("model", "cae_rnn") for r in rows}
    name = model_title(models.pop()) if len(models) == 1 else "AWE model"
    lines = [
        f"| input features | frame model trained on | AWEs trained and evaluated on | dim | downsampled AP ({split}) | "
        f"{name} AP ({split}) | downsampled AP x-spk | {name} AP x-spk | {name} train s | encode s |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        m = r.get("model", "cae_rnn")
        # a model applied to another dataset as it is: "trained on -> evaluated on"
        where = f"{r['awe_trained_on']} -> {r['dataset']}" if r.get("awe_trained_on") else r["dataset"]
        lines.append(
            f"| {r['features']} | {r['trained_on'] or '-'} | {where} | {r.get('dim', '-')} | "
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

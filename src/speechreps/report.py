"""The main job's report: ``report.md``, its PNG figures, and the table printed at the end.

Everything here formats numbers computed elsewhere in the same run; nothing is computed twice or
typed in. Rows of same-different results are plain dicts::

    {"features": "cpc", "layer": "c", "trained_on": "synth_en", "evaluated_on": "synth_en",
     "split": "validation", "distance": "dtw", "seed": 0, "ap": 0.52, "ap_cross_speaker": 0.41, "prb": 0.5}

(``features`` is ``mfcc`` for the baseline, whose ``layer`` and ``trained_on`` are ``None``.)
Several seeds of one setting are shown as mean +- standard deviation.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from .report_figures import plot_pr_curves, plot_token_maps, plot_training_curves, plot_validation_curves
from .report_tables import corpus_table, layer_table, mean_std, stage_table, training_table, validation_table

SPLITS = ("validation", "test")
ALL_SPLITS = ("validation", "test", "all")  # "all": a zero-resource dataset's one split
DISTANCES = ("downsample", "dtw")


def _setting(row: dict) -> tuple:
    return (row["features"], row.get("layer") or "", row.get("trained_on") or "", row["evaluated_on"])


def samediff_table(rows: Iterable[dict[str, Any]], splits=None, distances=DISTANCES,
                   metrics: tuple[str, ...] = ("ap", "ap_cross_speaker")) -> str:
    """A markdown table: one line per (features, layer, trained on, evaluated on), columns per
    split x distance x metric (default: AP over all positives and over cross-speaker positives);
    splits: those the rows have."""
    rows = list(rows)
    splits = splits or [s for s in ALL_SPLITS if any(r["split"] == s for r in rows)] or SPLITS
    cells: dict[tuple, dict[tuple, list[float]]] = defaultdict(lambda: defaultdict(list))
    order: list[tuple] = []
    for r in rows:
        key = _setting(r)
        if key not in cells:
            order.append(key)
        for which in metrics:
            if r.get(which) is not None:
                cells[key][(r["split"], r["distance"], which)].append(float(r[which]))
    head = ["features", "layer", "trained on", "evaluated on"]
    cols = [(s, d, w) for s in splits for d in distances for w in metrics]
    short = {"downsample": "down", "dtw": "DTW", "ap": "AP", "ap_cross_speaker": "xspk AP", "prb": "PRB",
             "validation": "val", "test": "test", "all": "all"}
    head += [f"{short[s]} {short[d]} {short[w]}" for s, d, w in cols]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for key in order:
        feats, layer, trained, evaluated = key
        vals = [mean_std(cells[key].get(c, [])) for c in cols]
        lines.append("| " + " | ".join([feats, layer or "-", trained or "-", evaluated, *vals]) + " |")
    return "\n".join(lines)


def _best_model(rows: list[dict]) -> tuple[str, str, str] | None:
    """(features, layer, dataset) of the learned features with the highest validation DTW AP on
    their own training language."""
    best = None
    for r in rows:
        if r["features"] == "mfcc" or r["split"] != "validation" or r["distance"] != "dtw":
            continue
        if r["trained_on"] != r["evaluated_on"]:
            continue
        if best is None or r["ap"] > best["ap"]:
            best = r
    return None if best is None else (best["features"], best["layer"], best["evaluated_on"])


def _token_maps(run_dir: Path, rows: list[dict], data_paths: Path, n_words: int = 8, per_word: int = 30):
    """Downsampled test tokens of the most frequent words: MFCC and the best learned features."""
    from .data.archive import load_archive, parse_word_key
    from .data.registry import load_dataset
    from .evaluate.downsample import downsample

    best = _best_model(rows)
    if best is None:
        return {}, None
    rep, layer, name = best
    seed = min(r["seed"] for r in rows if r["features"] == rep and r["evaluated_on"] == name)
    feats_path = run_dir / "features" / f"s{seed}" / name / f"{name}_test_{rep}_{layer}.npz"
    ds = load_dataset(data_paths, name)
    mfcc = load_archive(ds.word_tokens("test"))
    learned = load_archive(feats_path) if feats_path.is_file() else {}
    counts: dict[str, list[str]] = defaultdict(list)
    for key in mfcc:
        counts[parse_word_key(key).label].append(key)
    words = sorted(counts, key=lambda w: (-len(counts[w]), w))[:n_words]
    keys = [k for w in words for k in counts[w][:per_word]]
    labels = [parse_word_key(k).label for k in keys]
    maps = {"MFCC": (np.stack([downsample(mfcc[k]).reshape(-1) for k in keys]), labels)}
    if learned:
        maps[f"{rep} ({layer})"] = (np.stack([downsample(learned[k]).reshape(-1) for k in keys]), labels)
    return maps, best


def _header(meta: dict) -> list[str]:
    """What was run, how long the work took (the stage times recorded when each stage ran, also
    for stages this invocation reused), on what code and machine."""
    m = meta.get("machine") or {}
    ran = len(meta["stage_seconds"]) - len(meta["stages_skipped"])
    load = lambda x: "/".join(f"{v:.1f}" for v in x) if x else "unknown"  # noqa: E731
    work = meta.get("work_seconds", sum(meta["stage_seconds"].values()))
    return [
        "# speechreps main job",
        "",
        f"The work took **{work / 60:.1f} minutes**: the sum of the stage times under *Stages*, each recorded "
        f"by the run that did the stage. This invocation finished {meta['finished']} after "
        f"{meta['wall_seconds'] / 60:.1f} minutes; it ran {ran} stages and reused {len(meta['stages_skipped'])} "
        "from earlier runs.",
        "",
        f"Code: speechreps {meta['speechreps_version']}, commit {meta.get('commit', 'unknown')}; Python "
        f"{meta['python']}, torch {meta['torch']}, numpy {meta['numpy']}, {meta['platform']}.",
        f"Machine: {m.get('cpus', '?')} CPUs, {m.get('torch_threads', '?')} torch threads "
        f"(--jobs {m.get('jobs_option') or 'not given'}){', GPU ' + m['cuda'] if m.get('cuda') else ''}; "
        f"load average (1/5/15 minutes) {load(m.get('load_at_start'))} at the start and "
        f"{load(m.get('load_at_end'))} at the end of this invocation (each stage's load is under *Stages*).",
        f"Datasets: {', '.join(meta['datasets'])}; seeds: {', '.join(map(str, meta['seeds']))}; "
        f"config: `{meta['config_file']}`.",
        "",
    ]


def _figures(run_dir: Path, rows: list[dict], meta: dict, training: dict, data_paths: Path) -> dict:
    figures: dict[str, Any] = {}
    curves = {f"{t['rep']} {t['dataset']} s{t['seed']}": [tuple(p) for p in t["curve"]] for t in training.values()}
    figures["training"] = plot_training_curves(curves, run_dir / "training_curves.png")
    val = {f"{t['rep']} {t['dataset']} s{t['seed']}": t.get("val_curve") or [] for t in training.values()}
    figures["validation"] = plot_validation_curves(val, run_dir / "validation_curves.png")
    first = meta["datasets"][0] if meta["datasets"] else None
    pr = {}
    for r in rows:
        if r.get("pr_curve") and r["evaluated_on"] == first and (r["trained_on"] in (None, first)) and r["seed"] in (None, meta["seeds"][0]):
            label = "MFCC" if r["features"] == "mfcc" else f"{r['features']} ({r['layer']})"
            pr[label] = (r["pr_curve"]["precision"], r["pr_curve"]["recall"])
    figures["first"] = first
    figures["pr"] = plot_pr_curves(pr, run_dir / "precision_recall.png", f"test words, {first}, DTW")
    maps, figures["best"] = _token_maps(run_dir, rows, data_paths)
    figures["tsne"] = plot_token_maps(maps, run_dir / "token_map.png")
    return figures


def write_report(run_dir: Path, results: dict, data_paths: Path) -> Path:
    """Write ``report.md`` and its figures into ``run_dir``; returns the report's path."""
    from .fileio import write_text

    run_dir = Path(run_dir)
    rows, meta, training = results["rows"], results["meta"], results["training"]
    fig = _figures(run_dir, rows, meta, training, data_paths)
    table = samediff_table(rows)
    several = " With several seeds: mean±standard deviation." if len(meta["seeds"]) > 1 else ""
    lines = _header(meta) + [
        "## Same-different average precision",
        "",
        "AP over all same-word pairs and over cross-speaker pairs only (xspk), on all validation and test words, "
        "with downsampled (10 frames, cosine) and DTW (cosine, cost / (n + m)) distances. Learned features "
        "are each model's default layer, encoded in context. *trained on* differing from *evaluated on* is "
        "the cross-lingual setting." + several,
        "",
        table,
        "",
        "Precision-recall breakeven (PRB) beside AP, all same-word pairs:",
        "",
        samediff_table(rows, metrics=("ap", "prb")),
        "",
    ]
    if results.get("layers"):
        lines += ["## Every layer", "",
                  "Each model's layers on its own dataset: DTW AP on the validation subset that training "
                  "validates on (see *Training*), downsampled AP on all validation and test tokens. "
                  "*(default)* marks the layer extracted and shown in the main table." + several, "",
                  *layer_table(results["layers"]), ""]
    lines += ["## Training", "", *training_table(training, meta.get("val_tokens", 300)), ""]
    val_lines = validation_table(training)
    if val_lines:
        lines += ["Validation AP against epoch and minutes of training:", "", *val_lines, ""]
    if fig["validation"]:
        lines += ["![validation curves](validation_curves.png)", ""]
    if meta.get("corpus"):
        lines += ["## Corpus", "", "Read from the prepared archives (minutes: frames of the utterance segments "
                  "/ 6000; same-different tokens: the word tokens scored).", "", *corpus_table(meta["corpus"]), ""]
    lines += ["## Figures", ""]
    if fig["training"]:
        lines += ["Training loss per epoch:", "", "![training curves](training_curves.png)", ""]
    if fig["pr"]:
        lines += [f"Precision-recall on the test words of {fig['first']} (DTW):", "", "![precision-recall](precision_recall.png)", ""]
    if fig["tsne"]:
        best = fig["best"]
        lines += [f"t-SNE of downsampled test tokens of the most frequent words of {best[2]}: MFCC and the best "
                  f"learned features by validation DTW AP ({best[0]}, layer {best[1]}):", "", "![token map](token_map.png)", ""]
    if results.get("awe"):
        lines += ["## Acoustic word embeddings", "", results["awe"], ""]
    if results.get("encoders"):
        lines += ["## Pretrained encoders, layer by layer", "", results["encoders"], ""]
    if results.get("zero_resource"):
        lines += ["## Zero-resource track: discovered pairs", "", results["zero_resource"]["markdown"], ""]
    lines += ["## Stages", "", *stage_table(meta.get("stage_details") or {}, meta["stage_seconds"]), ""]
    lines += ["## Config", "", "```json", json.dumps(meta["config"], indent=2), "```", ""]
    path = run_dir / "report.md"
    write_text(path, "\n".join(lines))
    write_text(run_dir / "table.md", table + "\n")
    return path

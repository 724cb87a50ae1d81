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
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterable

import numpy as np

SPLITS = ("validation", "test")
ALL_SPLITS = ("validation", "test", "all")  # "all": a zero-resource dataset's one split
DISTANCES = ("downsample", "dtw")


def _mean_std(values: list[float]) -> str:
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f}±{statistics.stdev(values):.3f}"


def _setting(row: dict) -> tuple:
    return (row["features"], row.get("layer") or "", row.get("trained_on") or "", row["evaluated_on"])


def samediff_table(rows: Iterable[dict[str, Any]], splits=None, distances=DISTANCES) -> str:
    """A markdown table: one line per (features, layer, trained on, evaluated on), columns per
    split x distance x (all positives, cross-speaker positives); splits: those the rows have."""
    rows = list(rows)
    splits = splits or [s for s in ALL_SPLITS if any(r["split"] == s for r in rows)] or SPLITS
    cells: dict[tuple, dict[tuple, list[float]]] = defaultdict(lambda: defaultdict(list))
    order: list[tuple] = []
    for r in rows:
        key = _setting(r)
        if key not in cells:
            order.append(key)
        for which in ("ap", "ap_cross_speaker"):
            if r.get(which) is not None:
                cells[key][(r["split"], r["distance"], which)].append(float(r[which]))
    head = ["features", "layer", "trained on", "evaluated on"]
    cols = [(s, d, w) for s in splits for d in distances for w in ("ap", "ap_cross_speaker")]
    short = {"downsample": "down", "dtw": "DTW", "ap": "AP", "ap_cross_speaker": "xspk AP", "validation": "val", "test": "test", "all": "all"}
    head += [f"{short[s]} {short[d]} {short[w]}" for s, d, w in cols]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for key in order:
        feats, layer, trained, evaluated = key
        vals = [_mean_std(cells[key].get(c, [])) for c in cols]
        lines.append("| " + " | ".join([feats, layer or "-", trained or "-", evaluated, *vals]) + " |")
    return "\n".join(lines)


def plot_training_curves(curves: dict[str, list[tuple[int, float]]], path: Path) -> Path | None:
    """Loss per epoch, one line per model (each normalised by its first epoch's loss, since the
    models' losses have different units)."""
    if not curves:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for label, pts in sorted(curves.items()):
        if not pts:
            continue
        ep, loss = zip(*pts)
        axes[0].plot(ep, loss, marker=".", label=label)
        axes[1].plot(ep, np.asarray(loss) / (loss[0] or 1.0), marker=".", label=label)
    axes[0].set(xlabel="epoch", ylabel="training loss", yscale="log", title="training loss")
    axes[1].set(xlabel="epoch", ylabel="loss / first-epoch loss", title="relative training loss")
    for ax in axes:
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_pr_curves(curves: dict[str, tuple[list[float], list[float]]], path: Path, title: str) -> Path | None:
    """Precision against recall, one line per feature type."""
    if not curves:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    for label, (precision, recall) in curves.items():
        ax.plot(recall, precision, label=label)
    ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02), title=title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_token_maps(maps: dict[str, tuple[np.ndarray, list[str]]], path: Path, seed: int = 0) -> Path | None:
    """t-SNE of fixed-size (downsampled) token vectors, one panel per feature type, coloured by word."""
    if not maps:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.manifold import TSNE

    fig, axes = plt.subplots(1, len(maps), figsize=(5.2 * len(maps), 4.6), squeeze=False)
    for ax, (name, (vectors, labels)) in zip(axes[0], maps.items()):
        perplexity = max(2.0, min(30.0, (len(vectors) - 1) / 3))
        xy = TSNE(n_components=2, perplexity=perplexity, random_state=seed, init="pca").fit_transform(vectors)
        words = sorted(set(labels))
        cmap = plt.get_cmap("tab10" if len(words) <= 10 else "tab20")
        for i, w in enumerate(words):
            sel = np.array([lab == w for lab in labels])
            ax.scatter(xy[sel, 0], xy[sel, 1], s=12, color=cmap(i % cmap.N), label=w)
        ax.set(title=name, xticks=[], yticks=[])
    axes[0][-1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1, 0.5))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


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


def write_report(run_dir: Path, results: dict, data_paths: Path) -> Path:
    """Write ``report.md`` and its figures into ``run_dir``; returns the report's path."""
    from .fileio import write_text

    run_dir = Path(run_dir)
    rows, meta, training = results["rows"], results["meta"], results["training"]
    figures = {}
    curves = {f"{t['rep']} {t['dataset']} s{t['seed']}": [tuple(p) for p in t["curve"]] for t in training.values()}
    figures["training"] = plot_training_curves(curves, run_dir / "training_curves.png")
    first = meta["datasets"][0] if meta["datasets"] else None
    pr = {}
    for r in rows:
        if r.get("pr_curve") and r["evaluated_on"] == first and (r["trained_on"] in (None, first)) and r["seed"] in (None, meta["seeds"][0]):
            label = "MFCC" if r["features"] == "mfcc" else f"{r['features']} ({r['layer']})"
            pr[label] = (r["pr_curve"]["precision"], r["pr_curve"]["recall"])
    figures["pr"] = plot_pr_curves(pr, run_dir / "precision_recall.png", f"test words, {first}, DTW")
    maps, best = _token_maps(run_dir, rows, data_paths)
    figures["tsne"] = plot_token_maps(maps, run_dir / "token_map.png")

    table = samediff_table(rows)
    lines = [
        "# speechreps main job",
        "",
        f"Finished {meta['finished']} in {meta['wall_seconds'] / 60:.1f} minutes "
        f"({len(meta['stages_skipped'])} stages reused from an earlier run). speechreps {meta['speechreps_version']}, "
        f"Python {meta['python']}, torch {meta['torch']}, numpy {meta['numpy']}, {meta['platform']}.",
        f"Datasets: {', '.join(meta['datasets'])}; seeds: {', '.join(map(str, meta['seeds']))}; "
        f"config: `{meta['config_file']}`.",
        "",
        "## Same-different average precision",
        "",
        "AP over all same-word pairs and over cross-speaker pairs only (xspk), on validation and test words, "
        "with downsampled (10 frames, cosine) and DTW (cosine, cost / (n + m)) distances. Learned features "
        "are each model's default layer, encoded in context. *trained on* differing from *evaluated on* is "
        "the cross-lingual setting." + (" With several seeds: mean±standard deviation." if len(meta["seeds"]) > 1 else ""),
        "",
        table,
        "",
        "## Training",
        "",
        "| model | dataset | seed | minutes | frames/s | best validation AP (epoch) |",
        "|---|---|---|---|---|---|",
    ]
    for t in training.values():
        best_ap = "-" if t.get("best_ap") is None else f"{t['best_ap']:.3f} ({t.get('best_epoch')})"
        lines.append(f"| {t['rep']} | {t['dataset']} | {t['seed']} | {t['seconds'] / 60:.1f} | "
                     f"{t.get('frames_per_second', 0):.0f} | {best_ap} |")
    lines += ["", "## Figures", ""]
    if figures["training"]:
        lines += ["Training loss per epoch:", "", "![training curves](training_curves.png)", ""]
    if figures["pr"]:
        lines += [f"Precision-recall on the test words of {first} (DTW):", "", "![precision-recall](precision_recall.png)", ""]
    if figures["tsne"]:
        lines += [f"t-SNE of downsampled test tokens of the most frequent words of {best[2]}: MFCC and the best "
                  f"learned features by validation DTW AP ({best[0]}, layer {best[1]}):", "", "![token map](token_map.png)", ""]
    if results.get("awe"):
        lines += ["## Acoustic word embeddings", "", results["awe"], ""]
    if results.get("encoders"):
        lines += ["## Pretrained encoders, layer by layer", "", results["encoders"], ""]
    if results.get("zero_resource"):
        lines += ["## Zero-resource track: discovered pairs", "", results["zero_resource"]["markdown"], ""]
    lines += ["## Stages", "", "| stage | seconds |", "|---|---|"]
    lines += [f"| {k} | {v:.1f} |" for k, v in meta["stage_seconds"].items()]
    lines += ["", "## Config", "", "```json", json.dumps(meta["config"], indent=2), "```", ""]
    path = run_dir / "report.md"
    write_text(path, "\n".join(lines))
    write_text(run_dir / "table.md", table + "\n")
    return path

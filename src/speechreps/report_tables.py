"""Markdown tables of the main job's report beside the same-different table: training, validation
AP against epoch, per-layer AP, corpus statistics and stage times. Each formats numbers the run
recorded; nothing is computed here."""

from __future__ import annotations

import statistics
from collections import defaultdict
from typing import Any, Iterable


def mean_std(values: list[float]) -> str:
    """``0.512`` for one value, ``0.505±0.018`` (mean ± sample standard deviation) for several."""
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f}±{statistics.stdev(values):.3f}"


def _table(head: list[str], lines: Iterable[list[Any]]) -> list[str]:
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(str(c) for c in line) + " |" for line in lines]
    return out


def training_table(training: dict[str, dict], val_tokens: int) -> list[str]:
    """One line per trained model, and what its validation AP is computed on."""
    lines = []
    for t in training.values():
        val = t.get("val_curve") or []
        best = "-" if t.get("best_ap") is None else f"{t['best_ap']:.3f} ({t.get('best_epoch')})"
        last = f"{val[-1]['val_ap']:.3f} ({val[-1]['epoch']})" if val else "-"
        epochs = max((e for e, _ in t.get("curve") or []), default="-")
        lines.append([t["rep"], t["dataset"], t["seed"], epochs, f"{t['seconds'] / 60:.1f}",
                      f"{t.get('frames_per_second', 0):,.0f}", best, last])
    head = ["model", "dataset", "seed", "epochs", "minutes", "frames/s", "best validation AP (epoch)",
            "last validation AP (epoch)"]
    return _table(head, lines) + [
        "",
        f"*Validation AP* here (and in the curves below) is what training computes to pick `best.pt`: the DTW "
        f"same-different AP of the model's default layer on a fixed random subset of at most {val_tokens} of "
        "the validation word tokens (the same subset at every epoch), encoded in context. The main table's "
        "validation AP is over all validation tokens, so the two differ; the per-layer table shows both kinds. "
        "Models whose config section has `validate_every` 0 (the demo's frame AE) show '-'. Minutes include "
        "validation.",
    ]


def validation_table(training: dict[str, dict]) -> list[str]:
    """Validation AP after each validated epoch, with the minutes of training so far."""
    lines = []
    for t in training.values():
        val = t.get("val_curve") or []
        if val:
            cells = ", ".join(f"{p['epoch']}: {p['val_ap']:.3f} ({p['minutes']:.1f} min)" for p in val)
            lines.append([t["rep"], t["dataset"], t["seed"], cells])
    if not lines:
        return []
    return _table(["model", "dataset", "seed", "epoch: validation AP (minutes of training)"], lines)


def layer_table(rows: list[dict]) -> list[str]:
    """Per model and layer: DTW AP on the validation subset, downsampled AP on all validation and test
    tokens (mean±std over seeds); the default layer (the one extracted and in the main table) is marked."""
    cells: dict[tuple, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    dims: dict[tuple, int] = {}
    for r in rows:
        key = (r["features"], r["trained_on"], r["layer"] + (" (default)" if r.get("default") else ""))
        dims[key] = r["dim"]
        col = f"{r['split']}:{r['distance']}"
        cells[key][col].append(r["ap"])
        if r.get("ap_cross_speaker") is not None:
            cells[key][col + ":x"].append(r["ap_cross_speaker"])
        cells[key][col + ":prb"].append(r["prb"])
    if not cells:
        return []
    splits = [sp for sp in ("validation", "test", "all") if any(r["split"] == sp for r in rows)]
    short = {"validation": "val", "test": "test", "all": "all"}
    cols, head = [], ["model", "trained and evaluated on", "layer", "dim"]
    for sp in splits:
        if any(r["split"] == sp and r["distance"] == "dtw" for r in rows):  # the validated split's subset
            cols += [f"{sp}:dtw", f"{sp}:dtw:x", f"{sp}:dtw:prb"]
            head += [f"{short[sp]} DTW AP (subset)", f"{short[sp]} DTW xspk AP (subset)", f"{short[sp]} DTW PRB (subset)"]
        cols += [f"{sp}:downsample", f"{sp}:downsample:x", f"{sp}:downsample:prb"]
        head += [f"{short[sp]} down AP", f"{short[sp]} down xspk AP", f"{short[sp]} down PRB"]
    lines = [[*key, dims[key], *(mean_std(cells[key].get(c, [])) for c in cols)] for key in cells]
    return _table(head, lines)


def corpus_table(corpus: dict[str, dict[str, dict]]) -> list[str]:
    lines = []
    for name, splits in corpus.items():
        for split, s in splits.items():
            lines.append([name, split, s.get("speakers", "-"), s.get("utterances", "-"), s.get("segments", "-"),
                          s.get("minutes", "-"), s.get("word_tokens", "-"), s.get("word_types", "-")])
    head = ["dataset", "split", "speakers", "utterances", "segments", "minutes", "same-different tokens", "word types"]
    return _table(head, lines)


def stage_table(details: dict[str, dict], timings: dict[str, float]) -> list[str]:
    """Each stage's seconds, when it ran and the load average before and after it, as recorded by the
    run that did the work; 'reused' marks stages this run took from an earlier one."""
    lines = []
    for name, seconds in timings.items():
        d = details.get(name) or {}
        load = d.get("load")
        load_s = " → ".join("-" if x is None else f"{x:.1f}" for x in load) if load else "-"
        lines.append([name, f"{seconds:.1f}", d.get("finished") or "-", load_s,
                      "reused" if d.get("reused") else "ran"])
    return _table(["stage", "seconds", "finished", "load average (1 min) before → after", "this run"], lines)

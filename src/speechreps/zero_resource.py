"""The main job's zero-resource track (``speechreps run --discover``): no transcription used.

For each dataset:

1. ``discover:<ds>``: term discovery (:mod:`speechreps.discover`) on the training utterances' MFCCs
   and on the validation utterances (their discovered terms become a *pseudo-labelled* validation
   set: cluster ids as word labels); scored against the gold alignment where the built-in corpus
   has one (ZeroSpeech measures), with NED against coverage over DTW thresholds for the plot;
2. a dataset ``<ds>_zr`` registered in ``data_paths.json``: the same utterances, the discovered
   pairs as ``train_pairs``, the discovered validation terms as ``validation_words``;
3. ``zr-train:<type>:<ds>:s<seed>``: the types that train on word pairs (registry: ``uses_pairs``;
   CAPC and frame CAE) trained on ``<ds>_zr``, for as many steps as the same model on the gold pairs
   (:func:`gold_step_budget`: fewer pairs would otherwise mean fewer steps). ``best.pt`` is picked
   by the AP on the discovered validation terms (model selection without labels); the gold
   validation AP is logged beside it (``ref_val_ap``) only to report which epoch it would have picked;
4. ``zr-evaluate:...``: the model scored on the gold validation and test words like every other row;
5. with ``--discover-on TYPE``, a second round: steps 1-4 again on the features of the run's
   label-free TYPE model (``discover:<ds>:<TYPE>``, twin ``<ds>_zr_<TYPE>``, stages
   ``zr-train:<type>:<ds>:<TYPE>:s<seed>``), so that the report shows both rounds side by side:
   on the built-in corpus CPC's pairs trained CAPC and the frame CAE better than MFCC's;
6. with ``--awe``: the AWE comparison (:mod:`speechreps.awe.compare`) trains its AWE model on
   ``<ds>_zr``'s pairs, the MFCC round's, in either case (pairs found on CPC features trained the
   AWE models much worse: README, "Discovery on CPC features"; stages ``awe-discovered:*``, read at
   last.pt: the AP on the discovered validation terms picked worse epochs for it), on MFCC, on the
   label-free frame models (trained without pairs: APC, CPC) and on the models of steps 3 and 5,
   and scores it on the gold words of ``<ds>`` beside the gold-pair rows.

The report gets the discovery scores, the NED / coverage plot, and a table with MFCC, each model on
gold pairs (the upper bound) and on each round's discovered pairs, and the share of the gold model's
gain over MFCC that each discovered-pair model keeps.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any


from . import model_types

Z_CURVE = (3.5, 4.0, 4.5, 5.0, 5.5, 6.0, 6.5)
# Discovery on a label-free model's features (``--discover-on``): the MFCC default (5.5) finds no pair
# on the demo CPC's; on synth_en 4.5 gave 764 pairs (letter NED 0.291 at coverage 0.276), 4.3 NED 0.440
# at 0.453, and 4.4 was taken between them (chosen with the gold scores of the built-in corpus, as the
# MFCC default was). README, "Discovery on CPC features". The track keeps the training-oriented
# defaults, not the term-inventory operating point (``discover.config.TERM_INVENTORY``), whose pairs
# train worse models (README, "Two operating points").
LEARNED_DTW_Z = 4.4
LEARNED_Z_CURVE = (4.0, 4.2, 4.4, 4.6, 4.8, 5.0)


def twin_name(dataset: str, features: str = "mfcc") -> str:
    """The zero-resource twin of ``dataset`` whose pairs were discovered on ``features``: ``<ds>_zr``
    (MFCCs) or ``<ds>_zr_<type>`` (a model's features)."""
    return f"{dataset}_zr" if features == "mfcc" else f"{dataset}_zr_{features}"


def is_twin(name: str, dataset: str) -> bool:
    """Whether ``name`` is a zero-resource twin of ``dataset`` (either round's, :func:`twin_name`)."""
    return name == f"{dataset}_zr" or name.startswith(f"{dataset}_zr_")


def _gold_words(opts, name: str) -> Path | None:
    """The gold word alignment of a built-in corpus (none for a user's dataset)."""
    if opts.datasets:
        return None
    path = opts.data_dir / "corpora" / name / "words.wrd"
    return path if path.is_file() else None


def discovery_config(learned: bool, jobs: int | None = None):
    """The track's discovery settings: the defaults, with :data:`LEARNED_DTW_Z` on a model's features."""
    from .discover.config import DiscoverConfig

    return DiscoverConfig(jobs=jobs) if not learned else DiscoverConfig(jobs=jobs, dtw_z=LEARNED_DTW_Z)


def _z_curve(learned: bool) -> tuple[float, ...]:
    """The thresholds of the NED-coverage curve: :data:`LEARNED_Z_CURVE` on a model's features."""
    return LEARNED_Z_CURVE if learned else Z_CURVE


def _discovery_fingerprint_settings(learned: bool) -> dict:
    """What the discovery stage's result depends on besides its data: the settings (not the thread count)
    and the thresholds of the NED-coverage curve, so that a change of a default reruns the stage."""
    settings = discovery_config(learned).to_dict()
    settings.pop("jobs")
    return {**settings, "z_curve": list(_z_curve(learned))}


def _discover_stage(data_paths: Path, name: str, gold: Path | None, out: Path, jobs: int | None,
                    on: tuple[str, Path] | None = None, device: Any = None) -> dict:
    """Discovery on the training and validation audio of ``name``: on its MFCCs, or (``on``: ``(type,
    checkpoint folder)``) on a label-free model's features, with :data:`LEARNED_DTW_Z`. Either way the
    pairs index the utterances' frames and the discovered terms are cut from the MFCCs, so the twin
    dataset is read as the original is."""
    from .data.archive import load_archive
    from .data.registry import load_dataset
    from .discover.config import DiscoverConfig
    from .discover.core import discover, operating_threshold, restrict, z_cost
    from .discover.outputs import write_outputs
    from .discover.pipeline import gold_for, score
    from .fileio import write_json

    ds = load_dataset(data_paths, name)
    cfg = discovery_config(on is not None, jobs)
    z_curve = _z_curve(on is not None)
    if on is not None:  # the label-free model, its last.pt: picking best.pt used gold validation words
        from .extract import utterance_features
        from .trained import load_trained_model, setup_device

        device = setup_device(device, jobs)
        model = load_trained_model(on[1], on[0], prefer="last", device=device)[0]
    result: dict[str, Any] = {}
    # a zero-resource dataset has one split, "all" (its "train"): no held-out audio for pseudo labels
    for split in ("train",) if ds.zero_resource else ("train", "validation"):
        mfcc = load_archive(ds.utterances(split))
        t0 = time.time()
        utterances = mfcc if on is None else utterance_features(model, mfcc, device=device)[model.default_layer]
        loose = discover(utterances, DiscoverConfig.from_dict({**cfg.to_dict(), "dtw_z": min(z_curve)}))
        null_median, null_mad = loose.stats["null_median"], loose.stats["null_mad"]
        found = restrict(loose, operating_threshold(loose, cfg), cfg)
        seconds = time.time() - t0
        paths = write_outputs(found, mfcc, out / split, cfg.max_pairs_per_cluster)
        entry: dict[str, Any] = {"seconds": round(seconds, 1), "stats": found.stats, "features": on[0] if on else "mfcc",
                                 "files": {k: str(v) for k, v in paths.items()}}
        if gold is not None and split == "train":
            words = gold_for(gold, mfcc)
            entry["scores"] = score(found, words, max_pairs_per_cluster=cfg.max_pairs_per_cluster)
            curve = []
            for z in z_curve:
                sub = restrict(loose, z_cost(null_median, null_mad, z), cfg)
                if len(sub.cost):
                    s = score(sub, words, max_pairs_per_cluster=cfg.max_pairs_per_cluster)
                    curve.append({"z": z, "ned": s["ned"], "ned_pairs": s["ned_pairs"], "coverage": s["coverage"],
                                  "n_pairs": s["n_pairs"]})
            entry["curve"] = curve
        write_json(out / split / "discover.json", {"config": cfg.to_dict(), **entry})
        result[split] = entry
    return result


def _register(data_paths: Path, name: str, disc: dict, zr: str) -> str:
    """Register ``zr``: ``name``'s utterances with the discovered pairs (and validation terms) of ``disc``."""
    from .data.registry import load_dataset, register_dataset

    ds = load_dataset(data_paths, name)
    splits = ("all",) if ds.zero_resource else ("train", "validation", "test")
    entries: dict[str, Any] = {f"{s}_data": ds.utterances(s) for s in splits}
    entries["train_pairs"] = Path(disc["train"]["files"]["pairs"])
    entries["train_pairs_source"] = "discovered"
    if "validation" in disc:  # not on a zero-resource dataset: its models are read at last.pt, as there
        entries["validation_words"] = Path(disc["validation"]["files"]["terms"])
    if ds.speaker_rule_spec:
        entries["speaker_rule"] = ds.speaker_rule_spec
    register_dataset(data_paths, zr, entries)
    return zr


def _selection(ckpt_dir: Path) -> dict:
    """Epoch picked by the pseudo-labelled validation AP and by the gold one (logged as ref_val_ap)."""
    rows = []
    path = ckpt_dir / "metrics.jsonl"
    if path.is_file():
        rows = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
    rows = [r for r in rows if "val_ap" in r and "ref_val_ap" in r]
    if not rows:
        return {}
    pseudo = max(rows, key=lambda r: r["val_ap"])
    gold = max(rows, key=lambda r: r["ref_val_ap"])
    return {"epochs": [int(r["epoch"]) for r in rows], "pseudo_epoch": int(pseudo["epoch"]),
            "gold_epoch": int(gold["epoch"]), "same": pseudo["epoch"] == gold["epoch"],
            "gold_ap_at_pseudo_epoch": pseudo["ref_val_ap"], "gold_ap_best": gold["ref_val_ap"]}


def gold_step_budget(rep: str, cfg, data_paths: Path, name: str):
    """``cfg`` with the budget of the same model trained on ``name``'s gold pairs, in steps (its epochs x
    its batches per epoch), when ``cfg`` counts epochs: a discovered-pair model then trains as many steps
    as its upper bound although it has fewer pairs (with the demo's epoch budget the CAPC of synth_en got
    100 steps from 1,558 discovered pairs against 260 from 4,142 gold ones). Unchanged when the config
    gives ``num_steps`` (the same on any corpus already) or ``name`` has no gold training pairs."""
    import dataclasses

    from .data.datasets import make_training_set
    from .data.registry import load_dataset
    from .errors import UserError

    if cfg.num_steps:
        return cfg
    try:
        gold = make_training_set(model_types.get(rep).batch_kind, cfg, load_dataset(data_paths, name))
    except UserError:  # no gold pairs (a user's dataset without alignments): the config's epochs
        return cfg
    per_epoch = len(gold.sampler)
    return dataclasses.replace(cfg, num_steps=per_epoch * cfg.num_epochs, steps_per_epoch=per_epoch)


def _rounds(opts, training: dict, name: str, seed: int) -> list[tuple[str, dict | None]]:
    """The discovery rounds on ``name``: ``("mfcc", None)``, then with ``--discover-on TYPE``
    ``(TYPE, the training record of this run's TYPE model of name)`` (checked by
    :func:`check_discover_on` before training)."""
    rep = getattr(opts, "discover_on", None)
    rounds: list[tuple[str, dict | None]] = [("mfcc", None)]
    if rep not in (None, "mfcc"):
        rounds.append((rep, training[f"{rep}:{name}:s{seed}"]))
    return rounds


def check_discover_on(rep: str | None, types: list[str]) -> None:
    """``--discover-on``: MFCC (None / "mfcc") or a type trained without labels among ``types``; else a UserError."""
    from .errors import UserError

    if rep in (None, "mfcc"):
        return
    if model_types.get(rep, "--discover-on type").uses_pairs:
        raise UserError(f"--discover-on {rep}: a {rep} model trains on word pairs; discovery needs a model "
                        "trained without labels (e.g. cpc or apc)")
    if rep not in types:
        raise UserError(f"--discover-on {rep}: this run trains no {rep} model (add it to --only)")


def run_track(config_file: Path, data_paths: Path, names: list[str], data_fps: dict[str, str], training: dict,
              types: list[str], seed: int, opts, cache) -> dict:
    """Run (or reuse) the track's stages for ``seed``; returns ``{"rows", "discovery", "selection", "figure",
    "datasets", "models"}`` (``discovery``: ``{twin: its discovery, with "dataset"}``, one twin per
    dataset and round; ``datasets``: ``{dataset: <dataset>_zr}``, the MFCC round's twin, whose pairs
    train the AWE models; ``models``: ``{type: {twin: checkpoint folder}}``, the AWE comparison's
    discovered-pair inputs)."""
    from .experiment import _evaluate_model, _seed_config, _train, stage_config
    from .stages import fingerprint

    reps = [t for t in types if model_types.get(t).uses_pairs]
    rows: list[dict] = []
    discovery, selection = {}, {}
    datasets: dict[str, str] = {}  # dataset -> its MFCC-round twin
    models: dict[str, dict[str, str]] = {}  # type -> {twin: checkpoint folder}
    for name in names:
        gold = _gold_words(opts, name)
        # each type's config, the same in every round: a type's initialiser (the frame AE) needs no labels, so
        # the one trained on this dataset is reused; the budget is the gold model's (builds its training set once)
        setups = {}
        for rep in reps:
            init = training.get(f"{model_types.get(rep).init_from}:{name}:s{seed}")
            cfg = _seed_config(config_file, rep, seed, {model_types.get(rep).init_from: Path(init["ckpt_dir"])}
                               if init else {})
            setups[rep] = init, gold_step_budget(rep, cfg, data_paths, name)
        for features, model in _rounds(opts, training, name, seed):
            learned = model is not None
            tag = "" if not learned else f":{features}"  # stage names of the MFCC round as before rounds
            out = opts.run_dir / "discover" / (name if not learned else f"{name}_on_{features}")
            on = None if not learned else (features, Path(model["ckpt_dir"]))
            fp_disc = fingerprint("discover", data_fps[name], gold is not None,  # its content is in data_fps
                                  _discovery_fingerprint_settings(learned),
                                  *([] if not learned else [features, model["fingerprint"]]))
            disc = cache.run(f"discover:{name}{tag}", fp_disc,
                             lambda: _discover_stage(data_paths, name, gold, out, opts.jobs, on, opts.device))
            zr = _register(data_paths, name, disc, twin_name(name, features))
            discovery[zr] = {**disc, "dataset": name}
            if not learned:
                datasets[name] = zr
            for rep, (init, cfg) in setups.items():
                ckpt_dir = opts.run_dir / "models" / f"s{seed}" / zr / rep
                fp = fingerprint("zr-train", rep, stage_config(rep, cfg, init is not None), data_fps[name],
                                 disc["train"]["stats"], seed, init and init.get("fingerprint"))
                cache.run(f"zr-train:{rep}:{name}{tag}:s{seed}", fp,
                          lambda: _train(rep, cfg, config_file, ckpt_dir, data_paths, zr, opts, reference=name))
                selection[f"{rep}:{zr}"] = _selection(ckpt_dir)
                models.setdefault(rep, {})[zr] = str(ckpt_dir)
                rows += cache.run(f"zr-evaluate:{rep}:{name}{tag}:s{seed}", fingerprint("zr-evaluate", fp),
                                  lambda: _evaluate_model(rep, ckpt_dir, data_paths, zr, name, seed, opts))
    figure = _plot_curves(discovery, opts.run_dir / "discovery_ned_coverage.png")
    return {"rows": rows, "discovery": discovery, "selection": selection, "figure": figure and figure.name,
            "datasets": datasets, "models": models}


def _round_title(disc: dict) -> str:
    """``dataset (features)`` of one round's discovery."""
    return f"{disc['dataset']} ({_features_title(disc['train'].get('features', 'mfcc'))})"


def _features_title(features: str) -> str:
    """MFCC, or the type name as the report's other tables write it."""
    return "MFCC" if features == "mfcc" else features


def _plot_curves(discovery: dict, path: Path) -> Path | None:
    curves = {_round_title(d): d["train"].get("curve") for d in discovery.values() if d["train"].get("curve")}
    if not curves:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.5))
    for name, pts in curves.items():
        cov = [p["coverage"] for p in pts]
        ax.plot(cov, [1 - p["ned"] for p in pts], marker="o", label=f"{name}: clusters")
        ax.plot(cov, [1 - p["ned_pairs"] for p in pts], marker=".", linestyle="--", label=f"{name}: pair file")
        for p in pts:
            ax.annotate(f"z={p['z']}", (p["coverage"], 1 - p["ned"]), fontsize=7)
    ax.axhline(0.8, color="grey", linewidth=0.8)
    ax.axvline(0.3, color="grey", linewidth=0.8)
    ax.set_xlabel("coverage")
    ax.set_ylabel("1 - NED (letters)")
    ax.set_title("Term discovery on the training audio: precision against coverage")
    ax.legend(fontsize=8)
    fig.tight_layout()
    from .fileio import atomic_path

    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return path


def markdown(track: dict, main_rows: list[dict], seed: int) -> str:
    """The report section: discovery scores, the model table, model selection."""
    discovery = track["discovery"]
    rounds = list(dict.fromkeys(d["train"].get("features", "mfcc") for d in discovery.values()))
    on_text = " and, in a second round, ".join(
        "MFCCs" if f == "mfcc" else f"the features of this run's {f} model (last.pt)" for f in rounds)
    lines = [f"Pairs found by `speechreps discover` on each language's training audio (no transcription), on "
             f"{on_text}, the correspondence models trained on them (for as many steps as on the gold pairs where "
             "the config counts epochs), and "
             "best.pt picked by AP on terms discovered in the validation audio (no labels; a zero-resource dataset "
             "has no validation audio, and its models are read at last.pt). NED and coverage use "
             "each word's letters as its phones.", "",
             "| dataset | discovered on | minutes of audio | discovery s | pairs | terms | clusters | NED (clusters) | "
             "NED (pair file) | coverage | grouping F | token F | type F | boundary F |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for d in discovery.values():
        t, s = d["train"], d["train"].get("scores")
        st = t["stats"]
        head = f"| {d['dataset']} | {_features_title(t.get('features', 'mfcc'))} | {st['n_frames'] / 6000:.1f} | {t['seconds']} |"
        if s is None:
            lines.append(f"{head} {st['n_pairs']} | {st['n_nodes']} | {st['n_clusters']} | - | - | - | - | - | - | - |")
            continue
        lines.append(f"{head} {s['n_pairs']} | {s['n_intervals']} | "
                     f"{s['n_clusters']} | {s['ned']:.3f} | {s['ned_pairs']:.3f} | {s['coverage']:.3f} | "
                     f"{s['grouping']['f']:.3f} | {s['token']['f']:.3f} | {s['type']['f']:.3f} | {s['boundary']['f']:.3f} |")
    if track.get("figure"):
        lines += ["", f"![NED against coverage]({track['figure']})"]

    def ap(rows, feats, trained_on, name, split):
        for r in rows:
            if (r["features"] == feats and r["evaluated_on"] == name and r["split"] == split and r["distance"] == "dtw"
                    and r.get("trained_on") == trained_on and r.get("seed") in (None, seed)):
                return r["ap"]
        return None

    lines += ["", "DTW AP (all same-word pairs) on validation / test words (a zero-resource dataset: on all its "
              "words, and no gold-pair model), and the share of the gold-pair model's test gain over MFCC that "
              "each discovered-pair model keeps:", "",
              "| dataset | model | MFCC val / test | gold pairs (upper bound) val / test | " +
              " | ".join(f"pairs discovered on {_features_title(f)} val / test (gain kept)" for f in rounds) + " |",
              "|---|---|---|---|" + "---|" * len(rounds)]
    names = list(dict.fromkeys(d["dataset"] for d in discovery.values()))
    fmt = lambda v: " / ".join("-" if x is None else f"{x:.3f}" for x in v)  # noqa: E731
    for name in names:
        splits = ("all",) if any(r["evaluated_on"] == name and r["split"] == "all" for r in main_rows) else ("validation", "test")
        for rep in dict.fromkeys(r["features"] for r in track["rows"]):
            m = [ap(main_rows, "mfcc", None, name, s) for s in splits]
            g = [ap(main_rows, rep, name, name, s) for s in splits]
            cells = []
            for f in rounds:
                z = [ap(track["rows"], rep, twin_name(name, f), name, s) for s in splits]
                kept = ("" if None in z + g + m or g[-1] == m[-1]
                        else f" ({(z[-1] - m[-1]) / (g[-1] - m[-1]):.0%})")
                cells.append(fmt(z) + kept)
            if all(c.startswith("-") for c in cells):
                continue
            lines.append(f"| {name} | {rep} | {fmt(m)} | {fmt(g)} | {' | '.join(cells)} |")
    sel = {k: v for k, v in track["selection"].items() if v}
    if sel:
        same = sum(v["same"] for v in sel.values())
        lines += ["", f"Model selection without labels: the pseudo-labelled validation AP picked the same epoch as "
                      f"the gold validation AP in {same} of {len(sel)} trainings.", "",
                  "| model | epochs validated | picked (pseudo) | picked (gold) | gold AP at pseudo pick / best |",
                  "|---|---|---|---|---|"]
        for k, v in sel.items():
            lines.append(f"| {k} | {', '.join(map(str, v['epochs']))} | {v['pseudo_epoch']} | {v['gold_epoch']} | "
                         f"{v['gold_ap_at_pseudo_epoch']:.3f} / {v['gold_ap_best']:.3f} |")
    return "\n".join(lines)

"""Layer by layer: same-different AP of every hidden layer of a pretrained encoder, and the best one extracted.

:func:`run_encoder` (``speechreps encoder``, and each ``--encoder`` of the main job):

1. encodes the validation words (in context unless ``isolated``) in every layer and scores each layer
   by same-different AP, downsampled and DTW, over all and cross-speaker positives;
2. picks the layer with the highest validation DTW AP (test words when there is no validation set);
3. scores every layer on the test words too (the table shows how well the choice carries over);
4. writes ``layers.json`` (rows), ``layers.md`` (the table) and ``layers.png`` (AP against layer);
5. extracts the best layer to the usual archives: word tokens of each split,
   ``<dataset>_<split>_<encoder>_<layer>.npz`` (the word archive's keys, values at the encoder's
   frame rate), the training utterances ``<dataset>_train_utterances_<encoder>_<layer>.npz`` and the
   training term pairs ``<dataset>_train_pairs_<encoder>_<layer>.txt``, both in encoder frames (see
   :func:`.features.pairs_in_encoder_frames`), so that ``speechreps awe train --features ...
   --train-features ... --pairs ...`` trains any AWE model on them (the command is in ``extract.json``).

Only one split's hidden states are held at a time, and of the validation and test words only the
best layer's frames are kept after scoring.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..data.archive import Archive, save_archive
from ..errors import UserError, WarningCounter
from ..fileio import write_json, write_text
from .audio import AudioSource, corpus_of
from .features import EncodedSplit, encode_split, pairs_in_encoder_frames
from .model import PretrainedEncoder

DISTANCES = ("downsample", "dtw")


@dataclass
class EncoderOptions:
    """One encoder on one dataset (``speechreps encoder``)."""

    model: Path
    data_paths: Path
    dataset: str
    out_dir: Path | None = None  # default encoders/<encoder>/<dataset>
    corpus: Path | None = None  # default: from the dataset's prepare.json
    layers: list[int] | None = None  # default: every layer
    isolated: bool = False
    extract: bool = True
    device: str | None = None
    jobs: int | None = None
    progress: bool = True
    log: Callable[[str], None] = print


def _split_keys(ds, split: str) -> tuple[list[str], list[str] | None]:
    """(word keys, utterance keys or None) of a split; keys only, the arrays are never read."""
    words_path = ds.word_tokens(split)
    with Archive(words_path) as arc:
        words = list(arc)
    utt_path = ds.data.get(split)
    utts = None
    if utt_path is not None and utt_path.is_file() and utt_path != words_path:
        with Archive(utt_path) as arc:
            utts = list(arc)
    return words, utts


def score_split(enc: EncodedSplit, ds, split: str, base: dict, jobs: int | None, device: str | None) -> list[dict]:
    """Same-different rows (every layer x distance) of one encoded split."""
    from ..evaluate.samediff import samediff, word_tokens

    rule = ds.speaker_rule(ds.word_tokens(split))
    rows = []
    for layer, arrays in enc.words.items():
        segments, labels, speakers, _ = word_tokens(arrays, rule)
        for distance in DISTANCES:
            res = samediff(segments, labels, speakers, distance=distance, n_jobs=jobs,
                           device=device if distance == "dtw" else None)
            rows.append({**base, "layer": layer, "split": split, "distance": distance, "ap": res.ap,
                         "ap_cross_speaker": res.ap_cross_speaker, "prb": res.prb, "n_tokens": res.n_tokens,
                         "n_types": res.n_types, "seconds": round(res.seconds, 2), "dim": int(segments[0].shape[1])})
    return rows


def best_layer(rows: list[dict]) -> str:
    """The layer with the highest validation DTW AP (test when there is no validation row); ties: the lowest."""
    for split in ("validation", "test"):
        cand = [r for r in rows if r["split"] == split and r["distance"] == "dtw"]
        if cand:
            return max(cand, key=lambda r: (r["ap"], -int(r["layer"][1:])))["layer"]
    raise UserError("no validation or test words were scored")


def plot_layers(rows: list[dict], path: Path, title: str) -> Path | None:
    """AP against layer: downsampled / DTW, all / cross-speaker pairs, validation solid, test dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..fileio import atomic_path

    fig, ax = plt.subplots(figsize=(7, 4))
    colours = {("dtw", "ap"): "C0", ("dtw", "ap_cross_speaker"): "C1", ("downsample", "ap"): "C2",
               ("downsample", "ap_cross_speaker"): "C3"}
    for split, style in (("validation", "-"), ("test", "--")):
        for (distance, which), colour in colours.items():
            pts = sorted((int(r["layer"][1:]), r[which]) for r in rows
                         if r["split"] == split and r["distance"] == distance and r.get(which) is not None)
            if pts:
                ax.plot(*zip(*pts), style, color=colour, marker="o", ms=3,
                        label=f"{split} {distance} {'xspk ' if which != 'ap' else ''}AP")
    ax.set_xlabel("layer (0: transformer input)")
    ax.set_ylabel("same-different AP")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return path


def layer_table(rows: list[dict]) -> str:
    from ..report import samediff_table

    return samediff_table(rows)


def _extract_train(encoder: PretrainedEncoder, ds, audio: AudioSource, layer: str, out: Path, opts: EncoderOptions,
                   stem: Callable[[str], str]) -> dict[str, str]:
    """The best layer's training words, utterances and term pairs (encoder frames) -> archives and a pair file."""
    from ..data.alignments import read_term_pairs, write_term_pairs

    files: dict[str, str] = {}
    utt_path = ds.data.get("train")
    if utt_path is None or not utt_path.is_file():
        return files
    with Archive(utt_path) as arc:
        utts = list(arc)
    words = _split_keys(ds, "train")[0] if ds.has_word_tokens("train") else []
    k = int(layer[1:])
    enc = encode_split(encoder, audio, words, utts, [k], opts.isolated, keep_utterances=k, progress=opts.progress)
    if words:
        files["train"] = str(save_archive(out / f"{stem('train')}.npz", enc.words[layer]))
    files["train_utterances"] = str(save_archive(out / f"{stem('train_utterances')}.npz", enc.utterances))
    if ds.train_pairs is not None and ds.train_pairs.is_file():
        warn = WarningCounter(what="term pair")
        pairs = pairs_in_encoder_frames(read_term_pairs(ds.train_pairs), utts, enc.n_frames, encoder, warn)
        warn.report()
        path = out / f"{stem('train_pairs')}.txt"
        write_term_pairs(path, pairs)
        files["train_pairs"] = str(path)
    return files


def awe_command(files: dict[str, str], ds_name: str, data_paths: Path) -> str:
    """The ``speechreps awe train`` line that trains a CAE-RNN on the extracted features."""
    parts = ["speechreps awe train CONFIG CKPT_DIR", f"--language {ds_name}", f"--data-paths {data_paths}"]
    parts += [f"--features {s}={files[s]}" for s in ("train", "validation", "test") if s in files]
    if "train_utterances" in files:
        parts.append(f"--train-features {files['train_utterances']}")
    if "train_pairs" in files:
        parts.append(f"--pairs {files['train_pairs']}")
    return " ".join(parts)


def run_encoder(opts: EncoderOptions, encoder: PretrainedEncoder | None = None) -> dict[str, Any]:
    """Score every layer and extract the best (module docstring); returns the summary written to ``layers.json``."""
    from ..data.registry import load_dataset

    t_start = time.time()
    ds = load_dataset(opts.data_paths, opts.dataset)
    audio = AudioSource(corpus_of(ds, opts.corpus))
    encoder = encoder or PretrainedEncoder(opts.model, opts.device)
    layers = opts.layers if opts.layers is not None else list(range(encoder.n_layers))
    bad = [k for k in layers if not 0 <= k < encoder.n_layers]
    if bad:
        raise UserError(f"--layers {bad[0]}: {encoder.name} has layers 0-{encoder.n_layers - 1}")
    out = Path(opts.out_dir or Path("encoders") / encoder.name / ds.name)
    opts.log(f"encoder: {encoder.describe()}; words of {ds.name} {'isolated' if opts.isolated else 'in context'}")
    base = {"features": encoder.name, "trained_on": "pretrained", "evaluated_on": ds.name, "seed": None}
    rows: list[dict] = []
    kept: dict[str, dict] = {}
    best = None
    timing = {"audio_seconds": 0.0, "encode_seconds": 0.0, "score_seconds": 0.0}
    for split in ("validation", "test"):
        if not ds.has_word_tokens(split):
            continue
        words, utts = _split_keys(ds, split)
        t0 = time.perf_counter()
        enc = encode_split(encoder, audio, words, utts, layers, opts.isolated, progress=opts.progress)
        timing["encode_seconds"] += time.perf_counter() - t0
        timing["audio_seconds"] += enc.audio_seconds
        t0 = time.perf_counter()
        rows += score_split(enc, ds, split, base, opts.jobs, opts.device)
        timing["score_seconds"] += time.perf_counter() - t0
        best = best or best_layer(rows)
        kept[split] = enc.words[best]
        opts.log(f"encoder: {split}: {len(words)} words ({enc.in_context} in context, {enc.isolated} isolated), "
                 f"{len(layers)} layers scored; best layer by validation DTW AP: {best}")
    if best is None:
        raise UserError(f"dataset {ds.name!r} has no validation or test word tokens to score")
    summary: dict[str, Any] = {
        "encoder": encoder.name, "model": str(Path(opts.model).resolve()), "family": encoder.family,
        "n_layers": encoder.n_layers, "dim": encoder.dim, "frame_ms": encoder.geometry.stride / 16,
        "dataset": ds.name, "isolated": opts.isolated, "best_layer": best, "rows": rows,
        **{k: round(v, 2) for k, v in timing.items()},
    }
    write_text(out / "layers.md", layer_table(rows) + "\n")
    plot_layers(rows, out / "layers.png", f"{encoder.name} on {ds.name}")
    if opts.extract:
        def stem(split: str) -> str:
            return f"{ds.name}_{split}_{encoder.name}_{best}"

        files = {s: str(save_archive(out / f"{stem(s)}.npz", arrays)) for s, arrays in kept.items()}
        files.update(_extract_train(encoder, ds, audio, best, out, opts, stem))
        summary["files"] = files
        summary["awe_command"] = awe_command(files, ds.name, Path(opts.data_paths))
        write_json(out / "extract.json", {"layer": best, "files": files, "awe_command": summary["awe_command"]})
    summary["wall_seconds"] = round(time.time() - t_start, 1)
    write_json(out / "layers.json", summary)
    summary["out_dir"] = str(out)
    return summary

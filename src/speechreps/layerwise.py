"""Same-different AP of every layer of a trained model: which layer to extract matters (a lot for APC).

For each layer, on the model's own dataset: the downsampled AP (10 frames, cosine) over all
validation and all test word tokens, and the DTW AP on the fixed subset of validation tokens that
training validation uses to pick ``best.pt`` (:func:`speechreps.pipeline.validation_subset`), so
the default layer's figure here is the one the training log showed for the checkpoint scored. DTW
over every layer and every token would cost minutes per model on a CPU; the subset keeps it to
seconds. Rows are plain dicts like the main table's, with ``tokens`` saying which token set.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .errors import UserError


def layer_rows(rep: str, ckpt_dir: Path, config_path: Path, data_paths: Path, name: str, seed: int,
               jobs: int | None = None, device: str | None = None, max_tokens: int | None = None) -> list[dict[str, Any]]:
    """Per-layer AP rows of the model in ``ckpt_dir`` (best.pt, else last.pt) on dataset ``name``."""
    from .data.archive import load_archive
    from .data.registry import load_dataset
    from .evaluate.samediff import samediff, word_tokens
    from .extract import word_features
    from .pipeline import VAL_MAX_TOKENS, RunOptions, _setup, load_trained_model, validation_subset

    max_tokens = VAL_MAX_TOKENS if max_tokens is None else max_tokens
    run = RunOptions(representation_type=rep, config=config_path, ckpt_dir=ckpt_dir, language=name,
                     data_paths=data_paths, device=device, jobs=jobs)
    dev = _setup(run)
    model, _, epoch = load_trained_model(run, dev)
    ds = load_dataset(data_paths, name)
    rows: list[dict[str, Any]] = []
    splits = ds.evaluation_splits()  # validation and test; "all" for a zero-resource dataset
    for split in splits:
        if not ds.has_word_tokens(split):
            continue
        words_path = ds.word_tokens(split)
        words = load_archive(words_path)
        _, labels, speakers, keys = word_tokens(words, ds.speaker_rule(words_path))
        utt_path = ds.data.get(split)
        utterances = load_archive(utt_path) if utt_path is not None and utt_path.is_file() and utt_path != words_path else None
        feats, _ = word_features(model, {k: words[k] for k in keys}, utterances, list(model.layers), device=dev)
        subset = validation_subset(len(keys), max_tokens) if split == splits[0] else None
        for layer in model.layers:
            segs = [feats[layer][k] for k in keys]
            base = {"features": rep, "layer": layer, "default": layer == model.default_layer, "trained_on": name,
                    "evaluated_on": name, "seed": seed, "epoch": epoch, "split": split, "dim": int(segs[0].shape[1])}
            res = samediff(segs, labels, speakers, distance="downsample", n_jobs=jobs)
            rows.append({**base, "distance": "downsample", "tokens": "all", **_figures(res)})
            if subset is not None:
                try:
                    res = samediff([segs[i] for i in subset], [labels[i] for i in subset],
                                   [speakers[i] for i in subset], distance="dtw", n_jobs=jobs)
                except UserError:  # a subset without two tokens of one word: no DTW figure
                    continue
                rows.append({**base, "distance": "dtw", "tokens": f"subset of {len(subset)}", **_figures(res)})
    return rows


def _figures(res) -> dict[str, Any]:
    return {"ap": res.ap, "ap_cross_speaker": res.ap_cross_speaker, "prb": res.prb, "n_tokens": res.n_tokens}

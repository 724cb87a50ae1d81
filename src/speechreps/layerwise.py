"""Same-different AP of every layer of a trained model: which layer to extract matters (a lot for APC).

For each layer, on the model's own dataset: the downsampled AP (10 frames, cosine) over all
validation and all test word tokens, and the DTW AP on the fixed subset of validation tokens that
training validation uses to pick ``best.pt`` (:func:`speechreps.evaluate.scoring.validation_subset`), so
the default layer's figure here is the one the training log showed for the checkpoint scored. DTW
over every layer and every token would cost minutes per model on a CPU; the subset keeps it to
seconds. Rows are plain dicts like the main table's, with ``tokens`` saying which token set.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .run_options import VAL_MAX_TOKENS


def layer_rows(rep: str, ckpt_dir: Path, data_paths: Path, name: str, seed: int, jobs: int | None = None,
               device: str | None = None, max_tokens: int | None = None) -> list[dict[str, Any]]:
    """Per-layer AP rows of the model in ``ckpt_dir`` (best.pt, else last.pt) on dataset ``name``."""
    from .data.registry import load_dataset
    from .data.words import WordSet
    from .evaluate.scoring import score, validation_subset
    from .extract import word_features
    from .trained import load_trained_model, setup_device

    max_tokens = VAL_MAX_TOKENS if max_tokens is None else max_tokens
    dev = setup_device(device, jobs)
    model, _, epoch = load_trained_model(ckpt_dir, rep, device=dev)
    ds = load_dataset(data_paths, name)
    rows: list[dict[str, Any]] = []
    splits = ds.evaluation_splits()  # validation and test; "all" for a zero-resource dataset
    for split in splits:
        if not ds.has_word_tokens(split):
            continue
        words = WordSet.load(ds, split)
        feats, _ = word_features(model, words.words, words.utterances, list(model.layers), device=dev)
        subset = words.subset(validation_subset(len(words), max_tokens)) if split == splits[0] else None
        for layer in model.layers:
            base = {"features": rep, "layer": layer, "default": layer == model.default_layer, "trained_on": name,
                    "evaluated_on": name, "seed": seed, "epoch": epoch, "split": split,
                    "dim": int(feats[layer][words.keys[0]].shape[1])}
            res = score(feats[layer], words, "downsample", jobs)
            rows.append({**base, "distance": "downsample", "tokens": "all", **_figures(res)})
            if subset is not None and subset.has_pairs():  # a subset without two tokens of one word: no DTW figure
                res = score(feats[layer], subset, "dtw", jobs)
                rows.append({**base, "distance": "dtw", "tokens": f"subset of {len(subset)}", **_figures(res)})
    return rows


def _figures(res) -> dict[str, Any]:
    return {"ap": res.ap, "ap_cross_speaker": res.ap_cross_speaker, "prb": res.prb, "n_tokens": res.n_tokens}

"""Learned features of word tokens: encode in context or in isolation, and write ``.npz`` archives.

**In context** (the default when the utterance archive is available): the model runs over the whole
utterance (the utterance-archive entry with the same utterance id whose span contains the word),
and the word's frames ``start..end`` are cut from the output. A recurrent model then sees the
word's left context, as it did in training. **Isolated** (the original tool's way, and the fallback
for a word whose utterance is not in the archive): the model runs over the word segment alone.

The output of :func:`extract_split` is a drop-in replacement for the MFCC word-token archive in the
recipe's tools: the same keys, values ``[T, d]`` float32 with ``T`` the word's frame count. It is
written atomically to ``<save_path>/<language>_<split>_<type>_<layer>.npz``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

from .data.archive import parse_word_key, save_archive
from .data.datasets import pad
from .data.pairs import SegmentLookup
from .data.samplers import inference_batches
from .errors import UserError


def resolve_layers(model: torch.nn.Module, layer: str | None) -> list[str]:
    """``None`` / ``"default"``: the model's default layer; ``"all"``: every layer; else that layer."""
    layers = list(model.layers)
    if layer in (None, "default"):
        return [model.default_layer]
    if layer == "all":
        return layers
    if layer not in layers:
        raise UserError(f"--layer {layer!r}: this model's layers are {', '.join(layers)} (or 'all', 'default')")
    return [layer]


@torch.no_grad()
def encode_segments(
    model: torch.nn.Module,
    segments: Sequence[np.ndarray],
    layers: Sequence[str],
    device: torch.device | str = "cpu",
    max_batch_frames: int = 32768,
    max_batch_size: int = 64,
) -> dict[str, list[np.ndarray]]:
    """Encode each ``(T_i, D)`` segment; returns ``{layer: [(T_i, d) float32 arrays in input order]}``.

    Segments are batched by length (sorted; a batch holds at most ``max_batch_size`` items and
    ``max_batch_frames`` padded frames); the model runs in eval mode (its mode is restored).
    """
    out: dict[str, list[np.ndarray | None]] = {name: [None] * len(segments) for name in layers}
    if not segments:
        return out  # type: ignore[return-value]
    was_training = model.training
    model.eval()
    try:
        for idx in inference_batches([len(s) for s in segments], max_batch_size, max_batch_frames):
            feats, lengths = pad([segments[k] for k in idx])
            enc = model.encode(feats.to(device), lengths.to(device))
            n_frames = lengths.tolist()
            for name in layers:
                h = enc[name].float().cpu().numpy()  # (B, T, d)
                for b, k in enumerate(idx):
                    out[name][k] = np.ascontiguousarray(h[b, : n_frames[b]])
    finally:
        model.train(was_training)
    return out  # type: ignore[return-value]


def word_features(
    model: torch.nn.Module,
    words: Mapping[str, np.ndarray],
    utterances: Mapping[str, np.ndarray] | None = None,
    layers: Sequence[str] | None = None,
    isolated: bool = False,
    device: torch.device | str = "cpu",
    source: str | Path = "the word tokens",
) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, int]]:
    """Learned features of word tokens: ``({layer: {key: (T, d)}}, counts)``.

    In context when ``utterances`` is given and not ``isolated`` (words not found in it fall back to
    isolated encoding); ``counts`` says how many words went which way. ``source`` names the words
    in the error when their dimension is not the model's input dimension.
    """
    from .checks import archive_dim, check_dim, model_input_dim

    layers = list(layers or [model.default_layer])
    keys = list(words)
    expected = model_input_dim(model)
    if expected is not None and keys:
        check_dim(archive_dim(words, source), expected, source, "the checkpoint's model")
    in_context: dict[str, tuple[str, int, int]] = {}
    if utterances is not None and not isolated:
        lookup = SegmentLookup(utterances)
        for key in keys:
            k = parse_word_key(key)
            hit = lookup.find(k.utt, k.start, k.end)
            if hit is not None:
                in_context[key] = (hit[0], hit[1], k.n_frames)
    alone = [k for k in keys if k not in in_context]
    result: dict[str, dict[str, np.ndarray]] = {name: {} for name in layers}
    if in_context:
        utt_keys = sorted({u for u, _, _ in in_context.values()})
        enc = encode_segments(model, [utterances[u] for u in utt_keys], layers, device)
        row = {u: i for i, u in enumerate(utt_keys)}
        for name in layers:
            for key, (u, offset, n) in in_context.items():
                result[name][key] = enc[name][row[u]][offset : offset + n]
    if alone:
        enc = encode_segments(model, [words[k] for k in alone], layers, device)
        for name in layers:
            for i, key in enumerate(alone):
                result[name][key] = enc[name][i]
    # keep the input's key order
    result = {name: {k: result[name][k] for k in keys} for name in layers}
    return result, {"in_context": len(in_context), "isolated": len(alone)}


def output_path(save_path: str | Path, language: str, split: str, rep_type: str, layer: str) -> Path:
    """``<save_path>/<language>_<split>_<type>_<layer>.npz``."""
    return Path(save_path) / f"{language}_{split}_{rep_type}_{layer}.npz"


def extract_split(
    model: torch.nn.Module,
    rep_type: str,
    ds,
    split: str,
    save_path: str | Path,
    layers: Sequence[str] | None = None,
    isolated: bool = False,
    device: torch.device | str = "cpu",
) -> tuple[list[Path], dict[str, int]]:
    """Extract the word tokens of one split of dataset ``ds``; one file per layer."""
    from .data.words import WordSet

    words = WordSet.load(ds, split, context=not isolated)
    feats, counts = word_features(model, words.words, words.utterances, layers, isolated, device, source=words.path)
    paths = []
    for name, arrays in feats.items():
        paths.append(save_archive(output_path(save_path, ds.name, split, rep_type, name), arrays))
    return paths, counts


def extract_utterances(
    model: torch.nn.Module,
    rep_type: str,
    ds,
    split: str,
    save_path: str | Path,
    layers: Sequence[str] | None = None,
    device: torch.device | str = "cpu",
) -> list[Path]:
    """Learned features of whole utterances (a split without word tokens, e.g. an unaligned corpus).

    Written to ``<save_path>/<language>_<split>_utterances_<type>_<layer>.npz`` with the utterance
    archive's keys: input for ``speechreps discover`` on a trained model's features.
    """
    from .data.archive import load_archive

    feats = utterance_features(model, load_archive(ds.utterances(split)), layers, device)
    return [save_archive(Path(save_path) / f"{ds.name}_{split}_utterances_{rep_type}_{name}.npz", arrays)
            for name, arrays in feats.items()]


def utterance_features(model: torch.nn.Module, utterances: Mapping[str, np.ndarray], layers: Sequence[str] | None = None,
                       device: torch.device | str = "cpu") -> dict[str, dict[str, np.ndarray]]:
    """``{layer: {key: (T, d)}}``: a model's features of whole utterances (default: its default layer), same keys."""
    keys = list(utterances)
    layers = list(layers or [model.default_layer])
    enc = encode_segments(model, [utterances[k] for k in keys], layers, device)
    return {name: dict(zip(keys, enc[name])) for name in layers}

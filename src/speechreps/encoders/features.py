"""Word tokens and utterances of a dataset in every layer of a pretrained encoder.

**In context** (default): each utterance of the split's utterance archive that holds words is encoded
whole, and each word's encoder frames are cut out by the rule of :mod:`.frames` (offsets counted from
the utterance's first sample). **Isolated**: each word's own samples are encoded alone (and any word
whose utterance is not in the archive). Either way the output archives keep the word archive's keys
(the recipe's, in 10 ms frames), with values ``[T, dim]`` at the encoder's frame rate.

Utterances are encoded shortest first in batches (:meth:`PretrainedEncoder.batches`); only the word
slices are kept, so memory holds one batch of hidden states plus the words' frames.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..data.alignments import TermPair
from ..data.archive import format_key, parse_utterance_key, parse_word_key
from ..data.pairs import SegmentLookup
from ..errors import UserError, WarningCounter
from .audio import AudioSource
from .frames import HOP_SAMPLES
from .model import PretrainedEncoder


@dataclass
class EncodedSplit:
    """``words[layer][key]`` arrays, ``utterances[key]`` (one layer, encoder-frame keys) and counts."""

    words: dict[str, dict[str, np.ndarray]]
    utterances: dict[str, np.ndarray] = field(default_factory=dict)
    n_frames: dict[str, int] = field(default_factory=dict)  # utterance archive key -> encoder frames
    in_context: int = 0
    isolated: int = 0
    audio_seconds: float = 0.0


def _bar(total: int, desc: str, progress: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="utt", disable=None if progress else True, leave=False)


def encode_split(encoder: PretrainedEncoder, audio: AudioSource, word_keys: Sequence[str],
                 utterance_keys: Sequence[str] | None = None, layers: Sequence[int] | None = None,
                 isolated: bool = False, keep_utterances: int | None = None, progress: bool = False) -> EncodedSplit:
    """Encode the words ``word_keys`` (in context of ``utterance_keys`` unless ``isolated``) in ``layers``.

    ``keep_utterances``: also keep that layer of every utterance in ``utterance_keys`` (all of them are
    then encoded, with or without words), keyed ``<utt>_<a>-<b>`` in encoder frames
    (:meth:`FrameGeometry.start_frame`).
    """
    layers = list(range(encoder.n_layers)) if layers is None else list(layers)
    names = [f"L{k}" for k in layers]
    geo = encoder.geometry
    out = EncodedSplit(words={n: {} for n in names})
    by_utt: dict[str, list[tuple[str, int, int]]] = defaultdict(list)
    alone: list[str] = []
    if utterance_keys is not None and not isolated:
        lookup = SegmentLookup(dict.fromkeys(utterance_keys))
        for key in word_keys:
            k = parse_word_key(key)
            hit = lookup.find(k.utt, k.start, k.end)
            if hit is None:
                alone.append(key)
            else:
                by_utt[hit[0]].append((key, hit[1], k.n_frames))
    else:
        alone = list(word_keys)
    utts = list(utterance_keys or []) if keep_utterances is not None else sorted(by_utt)
    if keep_utterances is not None:
        layers = sorted(set(layers) | {keep_utterances})
    row = {k: i for i, k in enumerate(layers)}
    wanted = [(name, row[int(name[1:])]) for name in names]  # (layer name, row of the hidden states)
    parsed = [parse_utterance_key(u) for u in utts]

    def load(i: int) -> np.ndarray:
        wave = audio.frames(parsed[i].utt, parsed[i].start, parsed[i].end)
        out.audio_seconds += len(wave) / 16000
        return wave

    with _bar(len(utts) + len(alone), f"{encoder.name}", progress) as bar:
        for i, h in encoder.encode_all([(p.end - p.start) * HOP_SAMPLES for p in parsed], load, layers):
            u, n_enc = utts[i], h.shape[1]
            out.n_frames[u] = n_enc
            for key, offset, n in by_utt.get(u, ()):
                a, b = geo.span(offset, offset + n, n_enc)
                for name, k in wanted:
                    out.words[name][key] = h[k, a:b].copy()
            if keep_utterances is not None:
                e0 = geo.start_frame(parsed[i].start)
                out.utterances[format_key(parsed[i].utt, e0, e0 + n_enc)] = h[row[keep_utterances]].copy()
            bar.update()
        spans = [parse_word_key(k) for k in alone]
        bounds = [geo.samples(p.start, p.end) for p in spans]
        for i, h in encoder.encode_all([b - a for a, b in bounds],
                                       lambda i: audio.samples(spans[i].utt, *bounds[i]), layers):
            out.audio_seconds += (bounds[i][1] - bounds[i][0]) / 16000
            for name, k in wanted:
                out.words[name][alone[i]] = h[k].copy()
            bar.update()
    out.in_context = len(word_keys) - len(alone)
    out.isolated = len(alone)
    out.words = {n: {k: out.words[n][k] for k in word_keys} for n in names}  # the input's key order
    return out


def pairs_in_encoder_frames(pairs: Sequence[TermPair], utterance_keys: Sequence[str], n_frames: dict[str, int],
                            encoder: PretrainedEncoder, warnings: WarningCounter | None = None) -> list[TermPair]:
    """Term pairs (10 ms frames) moved onto an encoder-frame utterance archive written by :func:`encode_split`.

    Each end is found in the (10 ms) utterance archive, mapped by the rule of :mod:`.frames` within that
    utterance, and shifted by the utterance's encoder-frame start; ends outside every utterance are
    counted in ``warnings`` and their pair is dropped.
    """
    geo = encoder.geometry
    lookup = SegmentLookup(dict.fromkeys(utterance_keys))
    out = []
    for p in pairs:
        ends = []
        for utt, start, end in ((p.utt1, p.start1, p.end1), (p.utt2, p.start2, p.end2)):
            hit = lookup.find(utt, start, end)
            if hit is None or hit[0] not in n_frames:
                if warnings is not None:
                    warnings.add(f"pair {p.cluster}: segment {utt} {start}-{end} is not in the training utterances")
                break
            a, b = geo.span(hit[1], hit[1] + end - start, n_frames[hit[0]])
            e0 = geo.start_frame(parse_utterance_key(hit[0]).start)
            ends.append((utt, e0 + a, e0 + b))
        if len(ends) == 2:
            out.append(TermPair(p.cluster, *ends[0], *ends[1]))
    if pairs and not out:
        raise UserError(f"none of the {len(pairs)} term pairs lies inside the training utterances")
    return out

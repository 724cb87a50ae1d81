"""Training pairs for every model that trains on pairs (CAPC, frame CAE, the AWE models), and the DTW paths that align them.

Where pairs come from, in order of preference (:func:`dataset_pairs`; the frame models and the AWE models
both take their pairs from it):

1. a term-pair file given explicitly (``--pairs FILE``: discovered terms, the recipe's format in docs/FORMATS.md, frames
   into the training utterances);
2. the original tool's aligned files when ``data_paths.json`` names them: ``<lang>_aligned_train_data``
   (``<key>.X`` / ``<key>.Y``, CAPC) and ``<lang>_word_1_train_data`` / ``<lang>_word_2_train_data``
   (frame-aligned arrays under equal keys, frame CAE); these are already aligned and used as given,
   plus the reverse direction;
3. the dataset's ``<lang>_train_pairs`` term-pair file (``speechreps prepare`` writes the
   ground-truth pairs there);
4. ground-truth pairs built from the training word-token archive (same label, different tokens).

A segment pair ``(a, b)`` is aligned by DTW (cosine distance between frames, steps (1,0), (0,1),
(1,1)); from the path:

- CAPC (:func:`aligned_segment_pairs`): ``(X, Y')`` where ``Y'[i]`` is the mean of the frames of
  ``Y`` that the path pairs with ``X[i]``, so ``Y'`` has ``X``'s length; both directions (a -> b, b -> a);
- frame CAE (:func:`aligned_frame_pairs`): every ``(a[i], b[j])`` on the path, and its reverse.
"""

from __future__ import annotations

import dataclasses
import random
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import UserError, WarningCounter
from .alignments import TermPair, same_label_pairs
from .archive import format_key, load_archive, parse_utterance_key, parse_word_key

try:  # numba is a dependency; the pure-Python fallback only keeps imports working without it
    from numba import njit
except ImportError:  # pragma: no cover
    def njit(*args, **kwargs):
        if args and callable(args[0]):
            return args[0]
        return lambda f: f


@njit(cache=True)
def _dtw_path(x: np.ndarray, y: np.ndarray):
    n, m = x.shape[0], y.shape[0]
    xn = np.empty_like(x)
    yn = np.empty_like(y)
    for i in range(n):
        xn[i] = x[i] / (np.sqrt(np.sum(x[i] * x[i])) + 1e-12)
    for j in range(m):
        yn[j] = y[j] / (np.sqrt(np.sum(y[j] * y[j])) + 1e-12)
    inf = np.inf
    acc = np.full((n + 1, m + 1), inf)
    acc[0, 0] = 0.0
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            d = 1.0 - np.sum(xn[i - 1] * yn[j - 1])
            best = acc[i - 1, j - 1]
            if acc[i - 1, j] < best:
                best = acc[i - 1, j]
            if acc[i, j - 1] < best:
                best = acc[i, j - 1]
            acc[i, j] = d + best
    # backtrack; ties prefer the diagonal, then (1,0), then (0,1)
    ix = np.empty(n + m, np.int64)
    iy = np.empty(n + m, np.int64)
    k = 0
    i, j = n, m
    while True:
        ix[k] = i - 1
        iy[k] = j - 1
        k += 1
        if i == 1 and j == 1:
            break
        diag = acc[i - 1, j - 1]
        up = acc[i - 1, j]
        left = acc[i, j - 1]
        if diag <= up and diag <= left:
            i -= 1
            j -= 1
        elif up <= left:
            i -= 1
        else:
            j -= 1
    return ix[:k][::-1].copy(), iy[:k][::-1].copy(), acc[n, m]


def dtw_path(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Minimum-cost DTW alignment of ``x`` (n, D) and ``y`` (m, D).

    Frame distance: cosine distance; steps (1,0), (0,1), (1,1); the path runs from (0, 0) to
    (n-1, m-1). Returns ``(ix, iy, cost)``: the path as index arrays of equal length (x frame
    ``ix[k]`` is aligned with y frame ``iy[k]``) and the accumulated (unnormalised) cost.
    """
    x = np.ascontiguousarray(x, dtype=np.float64)
    y = np.ascontiguousarray(y, dtype=np.float64)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1] or len(x) == 0 or len(y) == 0:
        raise ValueError(f"dtw_path needs two non-empty (T, D) arrays of one D, got {x.shape} and {y.shape}")
    ix, iy, cost = _dtw_path(x, y)
    return ix, iy, float(cost)


def align_to(x: np.ndarray, y: np.ndarray, ix: np.ndarray | None = None, iy: np.ndarray | None = None) -> np.ndarray:
    """``y`` warped onto ``x``'s time axis: ``out[i]`` = mean of the y frames aligned with ``x[i]``."""
    if ix is None or iy is None:
        ix, iy, _ = dtw_path(x, y)
    out = np.zeros((len(x), y.shape[1]), dtype=np.float64)
    counts = np.bincount(ix, minlength=len(x)).astype(np.float64)
    np.add.at(out, ix, y[iy])
    return (out / counts[:, None]).astype(np.float32)


def aligned_segment_pairs(pairs: Sequence[tuple[np.ndarray, np.ndarray]]) -> list[tuple[np.ndarray, np.ndarray]]:
    """CAPC data: for each ``(a, b)``, ``(a, b warped onto a)`` and ``(b, a warped onto b)``."""
    out = []
    for a, b in pairs:
        ix, iy, _ = dtw_path(a, b)
        out.append((np.asarray(a, np.float32), align_to(a, b, ix, iy)))
        out.append((np.asarray(b, np.float32), align_to(b, a, iy, ix)))
    return out


def aligned_frame_pairs(pairs: Sequence[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Frame CAE data: every frame pair on each DTW path, both directions -> ``(X, Y)`` (N, D) each."""
    xs, ys = [], []
    for a, b in pairs:
        ix, iy, _ = dtw_path(a, b)
        xs += [a[ix], b[iy]]
        ys += [b[iy], a[ix]]
    if not xs:
        raise UserError("no frame pairs to train on")
    return np.concatenate(xs).astype(np.float32), np.concatenate(ys).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# Where the segments come from


class SegmentLookup:
    """Cuts ``(utt, start, end)`` frame spans out of an utterance archive.

    Archive keys are ``<utt>_<start>-<end>``: the array holds frames ``start..end`` of utterance
    ``utt`` (a whole utterance has start 0; Buckeye-style voice-activity segments do not). A span is
    found in the archive entry of the same utterance id that contains it.
    """

    def __init__(self, arrays: Mapping[str, np.ndarray]):
        from .speakers import canonical_utt

        self.arrays = arrays
        self.canonical = canonical_utt
        self.spans: dict[str, list[tuple[int, int, str]]] = defaultdict(list)
        for key in arrays:
            k = parse_utterance_key(key)
            self.spans[k.utt].append((k.start, k.end, key))
            if canonical_utt(k.utt) != k.utt:  # NCHLT ids in any spelling find each other (speakers.py)
                self.spans[canonical_utt(k.utt)].append((k.start, k.end, key))

    def find(self, utt: str, start: int, end: int) -> tuple[str, int] | None:
        """The archive key holding the span and the span's offset into its array, or ``None``."""
        for s, e, key in self.spans.get(utt) or self.spans.get(self.canonical(utt), ()):
            if s <= start and end <= e:
                return key, start - s
        return None

    def get(self, utt: str, start: int, end: int) -> np.ndarray | None:
        hit = self.find(utt, start, end)
        if hit is None:
            return None
        key, offset = hit
        seg = self.arrays[key][offset : offset + end - start]
        return seg if len(seg) == end - start else None


@dataclass
class SegmentPairs:
    """Undirected training pairs of named segments: ``segments`` ``{key: (T, D) float32}`` and ``pairs`` of
    keys; ``source`` says where they came from (for logs). A segment in several pairs is one entry, so that
    models that care which tokens are the same (the ContrastiveRNN's negatives) can tell."""

    segments: dict[str, np.ndarray]
    pairs: list[tuple[str, str]]
    source: str = ""

    @property
    def dim(self) -> int:
        return int(next(iter(self.segments.values())).shape[1])

    def arrays(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """The pairs as ``(a, b)`` arrays (what the frame models align by DTW)."""
        return [(self.segments[a], self.segments[b]) for a, b in self.pairs]

    def sample(self, max_pairs: int, seed: int = 0) -> "SegmentPairs":
        """At most ``max_pairs`` pairs drawn with ``seed`` (all when ``max_pairs`` is 0 or not smaller)."""
        if not max_pairs or len(self.pairs) <= max_pairs:
            return self
        pairs = sorted(random.Random(seed).sample(self.pairs, max_pairs))
        used = {k for pair in pairs for k in pair}
        return SegmentPairs({k: v for k, v in self.segments.items() if k in used}, pairs, self.source)


def term_pair_segments(pairs: Sequence[TermPair], utterances: Mapping[str, np.ndarray],
                       warnings: WarningCounter | None = None) -> SegmentPairs:
    """Both segments of each term pair, cut from the utterance archive and named like word tokens,
    ``<cluster>_<utt>_<start>-<end>``.

    A pair naming an utterance or span the archive lacks is counted in ``warnings`` and skipped, as is
    a pair of one span with itself; none usable is an error that says why the first pair failed.
    """
    lookup = SegmentLookup(utterances)
    segments: dict[str, np.ndarray] = {}
    kept: list[tuple[str, str]] = []
    for p in pairs:
        keys = []
        for utt, start, end in ((p.utt1, p.start1, p.end1), (p.utt2, p.start2, p.end2)):
            key = format_key(utt, start, end, label=p.cluster.replace("_", "-"))
            if key not in segments:
                seg = lookup.get(utt, start, end)
                if seg is None or len(seg) == 0:
                    if warnings is not None:
                        warnings.add(f"pair {p.cluster}: segment {utt} {start}-{end} is not in the training utterances")
                    break
                segments[key] = np.asarray(seg, dtype=np.float32)
            keys.append(key)
        if len(keys) == 2 and keys[0] != keys[1]:
            kept.append((keys[0], keys[1]))
    if not kept:
        if not pairs:
            raise UserError("the term-pair file holds no pairs")
        example = next(iter(lookup.spans), "none")
        known = pairs[0].utt1 in lookup.spans or lookup.canonical(pairs[0].utt1) in lookup.spans
        why = "its frames lie outside that utterance's segments" if known else "no training utterance has that id"
        raise UserError(f"none of the {len(pairs)} term pairs lies inside the training utterances (first pair: "
                        f"{pairs[0].utt1!r}: {why}; training utterance ids look like {example!r})")
    used = {k for pair in kept for k in pair}
    return SegmentPairs({k: v for k, v in segments.items() if k in used}, kept)


def word_token_pairs(words: Mapping[str, np.ndarray], max_pairs_per_word: int = 100, seed: int = 0
                     ) -> list[tuple[str, str]]:
    """Ground-truth pairs of a word-token archive, as key pairs: tokens of one label (at most
    ``max_pairs_per_word`` per label, drawn with ``seed``)."""
    keys = list(words)
    index_pairs = same_label_pairs([parse_word_key(k).label for k in keys], max_pairs_per_word, seed)
    if not index_pairs:
        raise UserError("the training word tokens hold no two tokens of one word: no pairs to train on")
    return [(keys[i], keys[j]) for i, j in index_pairs]


def word_pair_segments(words: Mapping[str, np.ndarray], max_pairs_per_word: int = 100, seed: int = 0) -> SegmentPairs:
    """The :func:`word_token_pairs` of a word-token archive with their segments."""
    pairs = word_token_pairs(words, max_pairs_per_word, seed)
    used = {k for pair in pairs for k in pair}
    return SegmentPairs({k: np.asarray(words[k], dtype=np.float32) for k in words if k in used}, pairs)


def dataset_pairs(ds, pairs_file: str | Path | None = None, warnings: WarningCounter | None = None,
                  max_pairs_per_word: int = 100, seed: int = 0,
                  utterances: Callable[[], Mapping[str, np.ndarray]] | None = None,
                  words: Callable[[], Mapping[str, np.ndarray]] | None = None) -> SegmentPairs:
    """The unaligned training pairs of dataset ``ds``, for every model that trains on pairs (frame and AWE).

    Sources in order (the module docstring's 1, 3, 4): ``pairs_file``, the dataset's ``<ds>_train_pairs``,
    ground-truth pairs of its training word tokens. ``utterances`` / ``words`` give the training utterances
    / word tokens in the features to cut from (default: the dataset's own archives; an AWE model on learned
    features passes those). ``source`` of the result says which was used.
    """
    from .alignments import read_term_pairs

    source = Path(pairs_file) if pairs_file else ds.train_pairs
    if source is not None:
        if not Path(source).is_file():
            raise UserError(f"term-pair file {source} does not exist")
        utts = utterances() if utterances is not None else load_archive(ds.utterances("train"))
        found = term_pair_segments(read_term_pairs(source), utts, warnings)
        return dataclasses.replace(found, source=f"term pairs {source}")
    if ds.has_word_tokens("train"):
        tokens = words() if words is not None else load_archive(ds.word_tokens("train"))
        found = word_pair_segments(tokens, max_pairs_per_word, seed)
        return dataclasses.replace(found, source=f"ground-truth word pairs of {ds.word_tokens('train')}")
    raise UserError(f"dataset {ds.name!r} has no training pairs: give --pairs FILE, or register "
                    f"{ds.name}_train_pairs or {ds.name}_train_words")


def load_original_aligned(path: str | Path) -> list[tuple[np.ndarray, np.ndarray]]:
    """The original's ``*_aligned_train_data`` npz (``<key>.X`` / ``<key>.Y``) -> CAPC pairs, both directions."""
    arrays = load_archive(path)
    out = []
    for key in sorted(k for k in arrays if k.endswith(".X")):
        base = key[:-2]
        y = arrays.get(base + ".Y")
        if y is None:
            raise UserError(f"{path}: key {key!r} has no partner {base + '.Y'!r}")
        x = arrays[key]
        if len(x) != len(y):
            raise UserError(f"{path}: {base}.X and {base}.Y differ in length ({len(x)} vs {len(y)}); they must be aligned")
        out += [(x, y), (y, x)]
    if not out:
        raise UserError(f"{path}: no '<key>.X' / '<key>.Y' arrays")
    return out


def load_original_frame_pairs(word_1: str | Path, word_2: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """The original's ``*_word_1/2_train_data`` (frame-aligned, same keys) -> frame pairs, both directions."""
    a, b = load_archive(word_1), load_archive(word_2)
    keys = [k for k in a if k in b]
    if not keys:
        raise UserError(f"{word_1} and {word_2} share no keys")
    xs, ys = [], []
    for k in keys:
        if len(a[k]) != len(b[k]):
            raise UserError(f"{word_1} / {word_2}: key {k!r} differs in length ({len(a[k])} vs {len(b[k])})")
        xs += [a[k], b[k]]
        ys += [b[k], a[k]]
    return np.concatenate(xs), np.concatenate(ys)

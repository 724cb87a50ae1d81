"""Term-discovery evaluation against gold alignments: the ZeroSpeech 2015 track-2 measures.

Definitions from Ludusan et al., "Bridging the gap between speech technology and natural language
processing: an evaluation toolbox for term discovery systems" (LREC 2014) and Versteegh et al., "The
Zero Resource Speech Challenge 2015" (Interspeech 2015) / "... 2015: proposed approaches and results"
(SLTU 2016), as implemented by the challenge's own toolbox (the ``zerospeech-tde`` package, whose
results tests/test_tde.py reproduces on a hand-made case). Times are seconds.

A discovered interval is *transcribed* by the gold phones it covers: every phone it overlaps, except
that the first and last count only when the interval covers at least half of them, or 30 ms of a
phone of 60 ms or more. Intervals that cover no phone are dropped.

- **Matching**: *NED*, the mean over every two members of every cluster of the edit distance between
  their phone strings divided by the longer length (0: same phones); *coverage*, the fraction of the
  corpus's gold phones covered by some discovered interval.
- **Grouping** precision / recall / F: how pure the clusters are (pairs of one cluster that have one
  transcription, weighted by type frequency) and how many of the same-transcription pairs among the
  discovered intervals the clusters put together.
- **Token** precision / recall / F: discovered intervals whose transcription is exactly a gold word's
  (the word they overlap most), over all discovered intervals / over all gold word tokens.
- **Type**: the same over distinct transcriptions / gold word types.
- **Boundary**: discovered interval edges (edges of their first / last covered phone) that are gold
  word edges, over all discovered edges / all gold edges.

Corpora without phone alignments (the built-in one) get *pseudo-phones*: each gold word split into
as many equal parts as it has letters, the letters as symbols (:func:`letter_units`). NED and
coverage on them measure letters, an approximation that is exact for a phonemic orthography.
"""

from __future__ import annotations

import bisect
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations

import numpy as np

from ..data.alignments import WordAlignment

Unit = tuple[float, float, str]  # (on, off, symbol)


def _r(x: float) -> float:
    return round(float(x), 4)


def letter_units(words: Iterable[WordAlignment]) -> list[WordAlignment]:
    """Pseudo-phone alignment: each word split into ``len(word)`` equal parts, one letter each."""
    out = []
    for w in words:
        n = max(1, len(w.word))
        edges = np.linspace(w.start, w.end, n + 1)
        out += [WordAlignment(w.utt, _r(edges[k]), _r(edges[k + 1]), w.word[k] if k < len(w.word) else w.word)
                for k in range(n)]
    return out


class _Tier:
    """One alignment tier (words or phones) per utterance, sorted, for overlap queries."""

    def __init__(self, items: Iterable[WordAlignment]):
        by_utt: dict[str, list[Unit]] = defaultdict(list)
        for w in items:
            by_utt[w.utt].append((_r(w.start), _r(w.end), w.word))
        self.units = {u: sorted(v) for u, v in by_utt.items()}
        self.starts = {u: [x[0] for x in v] for u, v in self.units.items()}

    def overlapping(self, utt: str, on: float, off: float) -> list[Unit]:
        """Units with ``start < off`` and ``end > on`` (strict overlap), sorted by start."""
        units = self.units.get(utt, [])
        hi = bisect.bisect_left(self.starts.get(utt, []), off)
        return [x for x in units[:hi] if x[1] > on]  # units are short; the scan back is cheap enough


def _covered(unit: Unit, on: float, off: float) -> bool:
    dur = round(unit[1] - unit[0], 3)
    shared = min(off, unit[1]) - max(on, unit[0])
    ratio, seconds = shared / (unit[1] - unit[0]), round(shared, 3)
    return (dur >= 0.060 and seconds >= 0.030) or (dur < 0.060 and ratio >= 0.5)


def transcribe(phones: _Tier, utt: str, on: float, off: float) -> tuple[Unit, ...]:
    """The phones an interval covers (first and last only when covered enough, see the module doc)."""
    cov = phones.overlapping(utt, on, off)
    if not cov:
        return ()
    out = list(cov[1:-1])
    if _covered(cov[0], on, off):
        out.insert(0, cov[0])
    if len(cov) > 1 and _covered(cov[-1], on, off):
        out.append(cov[-1])
    return tuple(out)


@dataclass(frozen=True)
class _Found:
    utt: str
    on: float
    off: float
    units: tuple[Unit, ...]

    @property
    def ngram(self) -> tuple[str, ...]:
        return tuple(u[2] for u in self.units)


def _prf(p: float, r: float) -> dict[str, float]:
    f = 2 * p * r / (p + r) if p + r > 0 and not (np.isnan(p) or np.isnan(r)) else float("nan")
    return {"precision": p, "recall": r, "f": f}


def _ned(a: tuple[str, ...], b: tuple[str, ...]) -> float:
    n = max(len(a), len(b))
    if n == 0:
        return 1.0
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        for j, y in enumerate(b, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y))
        prev = cur
    return prev[-1] / n


def _weights(pairs: Iterable[tuple[_Found, _Found]]) -> tuple[dict, Counter]:
    """Per type: tokens seen in the pairs (a token is its covered phones) and their share."""
    counter: Counter = Counter()
    seen: set = set()
    for pair in pairs:
        for f in pair:
            if f.units not in seen:
                seen.add(f.units)
                counter[f.ngram] += 1
    return {t: c / len(seen) for t, c in counter.items()}, counter


def _sorted_pair(a: _Found, b: _Found) -> tuple[_Found, _Found]:
    return (a, b) if (a.utt, a.on) <= (b.utt, b.on) else (b, a)


def _grouping(clusters: list[list[_Found]], intervals: set[_Found]) -> dict[str, float]:
    found = {_sorted_pair(a, b) for c in clusters for a, b in combinations(c, 2)}
    found_types = {f.ngram for c in clusters if len(c) > 1 for f in c}
    same: dict[tuple, list[_Found]] = defaultdict(list)
    for f in intervals:
        same[f.ngram].append(f)

    def overlap(a: _Found, b: _Found) -> bool:
        return a.utt == b.utt and min(a.off, b.off) - max(a.on, b.on) > 0

    gold = {_sorted_pair(a, b) for group in same.values() for a, b in combinations(group, 2) if not overlap(a, b)}
    gold_types = {a.ngram for a, _ in gold}
    found_w, found_c = _weights(found)
    gold_w, gold_c = _weights(gold)
    _, hit_c = _weights(found & gold)
    precision = sum(found_w[t] * hit_c[t] / found_c[t] for t in found_types) if found_types else float("nan")
    recall = sum(gold_w[t] * hit_c[t] / gold_c[t] for t in gold_types) if gold_types else float("nan")
    return _prf(precision, recall)


def _token_type(intervals: set[_Found], words: _Tier, phones: _Tier) -> dict[str, dict[str, float]]:
    n_tokens = sum(len(v) for v in words.units.values())
    types = {w for v in words.units.values() for _, _, w in v}
    type_seen, type_hit, token_seen = set(), set(), set()
    for f in intervals:
        type_seen.add(f.ngram)
        cands = words.overlapping(f.utt, f.on, f.off)
        if not cands:
            continue
        best, best_ov = cands[0], -1.0
        for w in cands:
            ov = (min(f.off, w[1]) - max(f.on, w[0])) / (w[1] - w[0])
            if ov > best_ov:
                best, best_ov = w, ov
        gold = tuple(u[2] for u in phones.overlapping(f.utt, best[0], best[1]))
        if gold == f.ngram:
            token_seen.add((f.utt, best))
            type_hit.add(f.ngram)
    nan = float("nan")
    token = _prf(len(token_seen) / len(intervals) if intervals else nan, len(token_seen) / n_tokens if n_tokens else nan)
    typ = _prf(len(type_hit) / len(type_seen) if type_seen else nan, len(type_hit) / len(types) if types else nan)
    return {"token": token, "type": typ}


def _boundary(intervals: set[_Found], words: _Tier) -> dict[str, float]:
    def counted(up: set, down: set) -> int:
        return len(up - (up & down)) + len(down)

    gold_up = {(u, x[1]) for u, v in words.units.items() for x in v}
    gold_down = {(u, x[0]) for u, v in words.units.items() for x in v}
    disc_up = {(f.utt, f.units[-1][1]) for f in intervals}
    disc_down = {(f.utt, f.units[0][0]) for f in intervals}
    hits = (disc_down & gold_down) | (disc_up & gold_up)
    n_disc, n_gold = counted(disc_up, disc_down), counted(gold_up, gold_down)
    nan = float("nan")
    return _prf(len(hits) / n_disc if n_disc else nan, len(hits) / n_gold if n_gold else nan)


def evaluate_terms(clusters: Mapping[str, Sequence[tuple[str, float, float]]], words: Sequence[WordAlignment],
                   phones: Sequence[WordAlignment] | None = None, grouping: bool = True) -> dict:
    """All measures for discovered ``clusters`` (``{name: [(utt, on_s, off_s), ...]}``).

    ``words``: the gold word alignment of the utterances searched (only those); ``phones``: their
    phone alignment, default :func:`letter_units` of ``words``. Returns a dict of floats (NaN where
    a measure is undefined, e.g. NED without any pair).
    """
    phone_tier = _Tier(phones if phones is not None else letter_units(words))
    word_tier = _Tier(words)
    found: list[list[_Found]] = []
    for members in clusters.values():
        c = []
        for utt, on, off in members:
            on, off = _r(on), _r(off)
            units = transcribe(phone_tier, utt, on, off)
            if units:
                c.append(_Found(utt, on, off, units))
        if c:
            found.append(c)
        # (clusters left with no member are dropped, as the challenge's toolbox does)
    intervals = {f for c in found for f in c}
    neds = [_ned(a.ngram, b.ngram) for c in found for a, b in combinations(c, 2)]
    n_phones = sum(len(v) for v in phone_tier.units.values())
    covered = {(f.utt, u) for f in intervals for u in f.units}
    out = {
        "ned": float(np.mean(neds)) if neds else float("nan"),
        "n_pairs_ned": len(neds),
        "coverage": len(covered) / n_phones if n_phones else float("nan"),
        "n_intervals": len(intervals),
        "n_clusters": len(found),
        **_token_type(intervals, word_tier, phone_tier),
        "boundary": _boundary(intervals, word_tier),
    }
    if grouping:
        out["grouping"] = _grouping(found, intervals)
    return out


def pair_ned(pairs: Sequence[tuple[tuple[str, float, float], tuple[str, float, float]]],
             words: Sequence[WordAlignment], phones: Sequence[WordAlignment] | None = None) -> float:
    """Mean NED over a list of interval pairs (the pair file itself, not the clusters)."""
    tier = _Tier(phones if phones is not None else letter_units(words))
    neds = []
    for (u1, a1, b1), (u2, a2, b2) in pairs:
        t1, t2 = transcribe(tier, u1, _r(a1), _r(b1)), transcribe(tier, u2, _r(a2), _r(b2))
        if t1 and t2:
            neds.append(_ned(tuple(x[2] for x in t1), tuple(x[2] for x in t2)))
    return float(np.mean(neds)) if neds else float("nan")

"""Word alignments (``.wrd``) and term pairs, as small typed records.

``.wrd`` (the format of ``recipe_bucktsong_awe``): one token per line,
``<utt_id> <start_seconds> <end_seconds> <word>``.

Term pairs (the output of unsupervised term discovery, in frames):
``<cluster> <utt1> <start1> <end1> <utt2> <start2> <end2>``.
"""

from __future__ import annotations

import math
import os
import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import UserError, WarningCounter


@dataclass(frozen=True)
class WordAlignment:
    """One word token of an utterance; times in seconds."""

    utt: str
    start: float
    end: float
    word: str

    def frames(self, hop_seconds: float = 0.01) -> tuple[int, int]:
        """Start and (exclusive) end frame at the given hop."""
        return int(round(self.start / hop_seconds)), int(round(self.end / hop_seconds))


@dataclass(frozen=True)
class TermPair:
    """Two occurrences of one (discovered or true) term; frames, end exclusive."""

    cluster: str
    utt1: str
    start1: int
    end1: int
    utt2: str
    start2: int
    end2: int


def read_wrd(path: str | os.PathLike, warnings: WarningCounter | None = None) -> list[WordAlignment]:
    """Read a ``.wrd`` file.

    A malformed line (wrong field count, times that are not numbers, end <= start, a negative
    start) is an error naming the file and line, unless ``warnings`` is given, in which case it is
    counted there and skipped (``warnings.strict`` turns it back into an error).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"alignment file {path} cannot be read: {exc}") from None
    out: list[WordAlignment] = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        problem = None
        fields = line.split()
        if len(fields) != 4:
            problem = f"expected '<utt_id> <start> <end> <word>', got {len(fields)} fields"
        else:
            utt, start_s, end_s, word = fields
            try:
                start, end = float(start_s), float(end_s)
            except ValueError:
                problem = f"start/end {start_s!r} {end_s!r} are not numbers"
            else:
                if not (math.isfinite(start) and math.isfinite(end)):
                    problem = f"start/end {start_s!r} {end_s!r} are not finite numbers"
                elif start < 0:
                    problem = f"start {start} is negative"
                elif end <= start:
                    problem = f"end {end} is not after start {start}"
        if problem is not None:
            message = f"{path}:{lineno}: {problem}"
            if warnings is None:
                raise UserError(message)
            warnings.add(message)
            continue
        out.append(WordAlignment(utt, start, end, word))
    return out


def unique_words(words: list[WordAlignment], warnings: WarningCounter | None = None) -> list[WordAlignment]:
    """``words`` without repeats of one token (same utterance, times and word), first kept, order kept.

    A repeated line would pair the token with itself as a "same word" pair; each repeat is counted in
    ``warnings`` (an error under ``strict``).
    """
    seen: set[WordAlignment] = set()
    out = []
    for w in words:
        if w in seen:
            if warnings is not None:
                warnings.add(f"word {w.word!r} of {w.utt!r} at {w.start:g}-{w.end:g} s is listed more than once")
            continue
        seen.add(w)
        out.append(w)
    return out


def write_wrd(path: str | os.PathLike, words: list[WordAlignment]) -> None:
    """Write a ``.wrd`` file (times with millisecond precision), atomically."""
    from ..fileio import write_text

    write_text(path, "".join(f"{w.utt} {w.start:.3f} {w.end:.3f} {w.word}\n" for w in words))


def read_term_pairs(path: str | os.PathLike) -> list[TermPair]:
    """Read a term-pair file; any malformed line is an error naming the file and line."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"term-pair file {path} cannot be read: {exc}") from None
    pairs = []
    for lineno, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        f = line.split()
        if len(f) != 7:
            raise UserError(f"{path}:{lineno}: expected '<cluster> <utt1> <start1> <end1> <utt2> <start2> <end2>'")
        try:
            s1, e1, s2, e2 = int(f[2]), int(f[3]), int(f[5]), int(f[6])
        except ValueError:
            raise UserError(f"{path}:{lineno}: frame numbers must be integers") from None
        if e1 <= s1 or e2 <= s2 or min(s1, s2) < 0:
            raise UserError(f"{path}:{lineno}: a segment ends before it starts or starts below 0")
        pairs.append(TermPair(f[0], f[1], s1, e1, f[4], s2, e2))
    return pairs


def write_term_pairs(path: str | os.PathLike, pairs: list[TermPair]) -> None:
    """Write pairs in the term-discovery format, atomically."""
    from ..fileio import write_text

    write_text(
        path,
        "".join(f"{p.cluster} {p.utt1} {p.start1} {p.end1} {p.utt2} {p.start2} {p.end2}\n" for p in pairs),
    )


def read_speaker_list(path: str | os.PathLike) -> list[str]:
    """One speaker id per line (its first field); blank lines and ``#`` comments ignored.

    The first field only, because the recipe's ``buckeye_speakers.list`` adds gender and age columns.
    """
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"speaker list {path} cannot be read: {exc}") from None
    return [ln.split()[0] for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]


def same_label_pairs(labels: Sequence[str], max_per_label: int, seed: int) -> list[tuple[int, int]]:
    """Index pairs ``(i, j)``, ``i < j``, of items with equal labels: ground-truth word pairs.

    Grouped by label in sorted order, items in input order; a label with more than
    ``max_per_label`` pairs keeps a random ``max_per_label`` of them (fixed by ``seed``), so that
    frequent words do not dominate.
    """
    rng = random.Random(seed)
    by_label: dict[str, list[int]] = defaultdict(list)
    for index, label in enumerate(labels):
        by_label[label].append(index)
    out: list[tuple[int, int]] = []
    for label in sorted(by_label):
        items = by_label[label]
        combos = [(a, b) for a in range(len(items)) for b in range(a + 1, len(items))]
        if len(combos) > max_per_label:
            combos = sorted(rng.sample(combos, max_per_label))
        out += [(items[a], items[b]) for a, b in combos]
    return out

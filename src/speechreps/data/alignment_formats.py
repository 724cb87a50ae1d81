"""Word alignments from other tools: Praat TextGrids (Montreal Forced Aligner) and Kaldi CTM.

Both become the same :class:`~speechreps.data.alignments.WordAlignment` records as a ``.wrd`` file.
Non-words are dropped in every format, as the recipe drops ``SIL`` and ``SPN``: empty intervals and
the labels in :data:`NON_WORDS` (case-insensitive).

- TextGrid (Praat's long or short text format, UTF-8 or UTF-16): one file per utterance, named
  ``<utt_id>.TextGrid``. The word tier is the one named ``words`` (or ending in ``words``, as MFA
  names a speaker's tier ``<speaker> - words``), or ``word``, or the only interval tier.
- CTM (Kaldi's ``steps/get_ctm.sh``): ``<utt_id> <channel> <start_s> <duration_s> <word> [<confidence>]``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from ..errors import UserError, WarningCounter
from .alignments import WordAlignment, read_wrd

NON_WORDS = {"sil", "sp", "spn", "<eps>", "<sil>", "<unk>", "<noise>", "[noise]", "[laughter]", "nsn"}

_TOKEN = re.compile(r'"((?:[^"]|"")*)"|\[\s*\d*\s*\]|(<exists>|<absent>)|([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)')


def is_word(label: str) -> bool:
    return bool(label.strip()) and label.strip().lower() not in NON_WORDS


def _read_text(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise UserError(f"alignment file {path} cannot be read: {exc}") from None
    for enc in ("utf-16", "utf-8-sig") if raw[:2] in (b"\xff\xfe", b"\xfe\xff") else ("utf-8-sig", "latin-1"):
        try:
            return raw.decode(enc)
        except UnicodeDecodeError:
            continue
    raise UserError(f"alignment file {path} is neither UTF-8 nor UTF-16 text")


def _tokens(text: str) -> list[str | float]:
    """Strings and numbers of a TextGrid in order (both text formats give the same sequence)."""
    out: list[str | float] = []
    for m in _TOKEN.finditer(text):
        if m.group(1) is not None:
            out.append(m.group(1).replace('""', '"'))
        elif m.group(2) is not None:
            out.append(m.group(2))
        elif m.group(3) is not None:
            out.append(float(m.group(3)))
    return out


def read_textgrid_tiers(path: str | os.PathLike) -> dict[str, list[tuple[float, float, str]]]:
    """Every interval tier of a TextGrid: ``{name: [(start, end, label), ...]}``."""
    path = Path(path)
    toks = _tokens(_read_text(path))
    try:
        if toks[:2] != ["ooTextFile", "TextGrid"]:
            raise ValueError("not an ooTextFile TextGrid")
        i = 4  # file type, object class, xmin, xmax
        if toks[i] == "<absent>":
            return {}
        n_tiers = int(toks[i + 1])
        i += 2
        tiers: dict[str, list[tuple[float, float, str]]] = {}
        for _ in range(n_tiers):
            kind, name, n = toks[i], str(toks[i + 1]), int(toks[i + 4])
            i += 5
            width = 3 if kind == "IntervalTier" else 2
            items = toks[i : i + width * n]
            i += width * n
            if kind == "IntervalTier":
                tiers[name] = [(float(items[k]), float(items[k + 1]), str(items[k + 2])) for k in range(0, len(items), 3)]
    except (IndexError, ValueError, TypeError) as exc:
        raise UserError(f"TextGrid {path} cannot be parsed: {exc}") from None
    return tiers


def word_tier(tiers: dict[str, list], path: Path, tier: str | None = None) -> list[tuple[float, float, str]]:
    """The word tier of a TextGrid (see the module doc); a clear error naming the tiers otherwise."""
    if tier is not None:
        if tier not in tiers:
            raise UserError(f"TextGrid {path} has no tier {tier!r} (tiers: {', '.join(tiers) or 'none'})")
        return tiers[tier]
    for name in tiers:
        if name.lower() in ("words", "word") or name.lower().endswith("words"):
            return tiers[name]
    if len(tiers) == 1:
        return next(iter(tiers.values()))
    raise UserError(f"TextGrid {path}: no tier named 'words' among {', '.join(tiers) or 'none'} (give --tier NAME)")


def read_textgrid(path: str | os.PathLike, utt: str | None = None, tier: str | None = None) -> list[WordAlignment]:
    """The words of a TextGrid's word tier, as alignments of utterance ``utt`` (default: the file's stem)."""
    path = Path(path)
    utt = utt or path.name.rsplit(".", 1)[0]
    return [WordAlignment(utt, s, e, label.strip()) for s, e, label in word_tier(read_textgrid_tiers(path), path, tier)
            if is_word(label) and e > s]


def read_ctm(path: str | os.PathLike, warnings: WarningCounter | None = None) -> list[WordAlignment]:
    """A Kaldi CTM file; malformed lines as in :func:`~speechreps.data.alignments.read_wrd`."""
    path = Path(path)
    out = []
    for lineno, line in enumerate(_read_text(path).splitlines(), 1):
        f = line.split()
        if not f or f[0].startswith(";;") or f[0].startswith("#"):
            continue
        problem = None
        if len(f) not in (5, 6):
            problem = f"expected '<utt_id> <channel> <start> <duration> <word> [conf]', got {len(f)} fields"
        else:
            try:
                start, dur = float(f[2]), float(f[3])
            except ValueError:
                problem = f"start/duration {f[2]!r} {f[3]!r} are not numbers"
            else:
                if start < 0 or dur <= 0:
                    problem = f"start {start} or duration {dur} out of range"
        if problem:
            if warnings is None:
                raise UserError(f"{path}:{lineno}: {problem}")
            warnings.add(f"{path}:{lineno}: {problem}")
            continue
        if is_word(f[4]):
            out.append(WordAlignment(f[0], start, start + dur, f[4]))
    return out


def read_alignments(path: str | os.PathLike, warnings: WarningCounter | None = None,
                    tier: str | None = None) -> list[WordAlignment]:
    """Words of a ``.wrd``, ``.ctm`` or ``.TextGrid`` file (by suffix), non-words dropped."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".ctm":
        return read_ctm(path, warnings)
    if suffix == ".textgrid":
        return read_textgrid(path, tier=tier)
    return [w for w in read_wrd(path, warnings) if is_word(w.word)]

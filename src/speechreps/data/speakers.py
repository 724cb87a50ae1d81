"""Speakers of a corpus: id styles, checked speaker rules, and NCHLT id spellings.

Why this module: a wrong speaker rule fails silently. Read with the ``buckeye`` rule (everything
before the first ``_``), every NCHLT id ``nchlt_tso_001m_0007`` names speaker ``nchlt``: one speaker
for the whole corpus, so per-speaker normalisation, speaker splits and cross-speaker AP all go
wrong without an error. So the style of the ids is detected, a rule is chosen from it (or the user's
is checked against it), and a rule that yields one speaker for many utterances is reported.

One NCHLT utterance is spelt three ways in the files of ``recipe_bucktsong_awe``:

===========================  ===============================  ================================
``.wrd`` alignments          ``nchlt_tso_001m_0007``          (NCHLT's own, ``_`` separated)
the same, ``-`` separated    ``nchlt-tso-001m-0007``          (NCHLT audio file names)
term-pair files, archives    ``001m_nchlt-tso-0007``          (the recipe's keys: speaker first)
speaker lists                ``nchlt-tso-001m``               (one speaker)
===========================  ===============================  ================================

:func:`canonical_utt` maps any of the three utterance spellings to the ``.wrd`` one, so that pair
files and alignments name the same utterance; :func:`listed_speaker` maps a speaker-list entry to the
speaker the rule reads (``nchlt-tso-001m`` -> ``001m``).
"""

from __future__ import annotations

import re
import warnings
from collections import Counter
from collections.abc import Iterable

from ..errors import DataWarning, UserError
from .archive import SpeakerRule, speaker_rule

_NCHLT = re.compile(r"^nchlt([-_])(?P<lang>[a-z]+)\1(?P<spk>[0-9]+[mf]?)\1(?P<utt>[0-9A-Za-z]+)$")
_NCHLT_PAIR = re.compile(r"^(?P<spk>[0-9]+[mf]?)_nchlt-(?P<lang>[a-z]+)-(?P<utt>[0-9A-Za-z]+)$")
_NCHLT_SPEAKER = re.compile(r"^nchlt[-_](?P<lang>[a-z]+)[-_](?P<spk>[0-9]+[mf]?)$")
_BUCKEYE = re.compile(r"^s\d\d_?\w+$")
_PREFIXED = re.compile(r"^[^_]+_.+$")

#: Id styles and the rule each implies.
STYLE_RULES = {
    "nchlt": "nchlt",  # nchlt_tso_001m_0007 / nchlt-tso-001m-0007
    "nchlt-pair": "buckeye",  # 001m_nchlt-tso-0007: speaker first, then '_'
    "buckeye": "buckeye",  # s06_02a
    "prefixed": "buckeye",  # <speaker>_<rest>
}


def id_style(utt: str) -> str | None:
    """The style of one utterance id: ``nchlt``, ``nchlt-pair``, ``buckeye``, ``prefixed`` or None."""
    if _NCHLT.match(utt):
        return "nchlt"
    if _NCHLT_PAIR.match(utt):
        return "nchlt-pair"
    if _BUCKEYE.match(utt) and "_" in utt:
        return "buckeye"
    if _PREFIXED.match(utt):
        return "prefixed"
    return None


def detect_style(utts: Iterable[str]) -> str | None:
    """The style most ids have (None when none has a known style)."""
    counts = Counter(s for s in (id_style(u) for u in utts) if s is not None)
    return counts.most_common(1)[0][0] if counts else None


def canonical_utt(utt: str) -> str:
    """Any NCHLT spelling of an utterance -> the ``.wrd`` spelling ``nchlt_<lang>_<spk>_<utt>``.

    Other ids come back unchanged. ``001m_nchlt-tso-0007`` and ``nchlt-tso-001m-0007`` both give
    ``nchlt_tso_001m_0007``.
    """
    m = _NCHLT.match(utt) or _NCHLT_PAIR.match(utt)
    if m is None:
        return utt
    return f"nchlt_{m['lang']}_{m['spk']}_{m['utt']}"


def listed_speaker(entry: str) -> str:
    """A speaker-list entry -> the speaker a rule reads: ``nchlt-tso-001m`` -> ``001m``; others unchanged."""
    m = _NCHLT_SPEAKER.match(entry)
    return m["spk"] if m else entry


def choose_rule(utts: list[str], requested: str | None) -> tuple[SpeakerRule, str | None]:
    """The speaker rule for these utterance ids, checked against their style.

    ``requested`` None or ``auto``: the rule the detected style implies. A requested built-in rule that
    contradicts the style (``buckeye`` on NCHLT ids, which would read speaker ``nchlt``) is an error
    naming both; a regular expression is taken as given. Returns the rule and the detected style.
    """
    style = detect_style(utts)
    if requested in (None, "auto"):
        return speaker_rule(STYLE_RULES.get(style or "", "buckeye")), style
    rule = speaker_rule(requested)
    if requested == "buckeye" and style == "nchlt":
        example = next(u for u in utts if id_style(u) == "nchlt")
        raise UserError(f"--speaker-rule buckeye reads speaker {example.split('_')[0].split('-')[0]!r} from NCHLT "
                        f"ids such as {example!r}; use --speaker-rule nchlt (or auto)")
    if requested == "nchlt" and style not in ("nchlt", None):
        bad = next((u for u in utts if id_style(u) != "nchlt"), utts[0] if utts else "")
        raise UserError(f"--speaker-rule nchlt: utterance id {bad!r} is not an NCHLT id (nchlt_<lang>_<speaker>_<n>)")
    return rule, style


def speakers_of(utts: Iterable[str], rule: SpeakerRule) -> dict[str, str]:
    """``utt -> speaker`` under ``rule`` (an id it cannot read is an error naming the id and rule)."""
    return {u: rule(u) for u in utts}


def check_speakers(speaker_of: dict[str, str], rule: SpeakerRule, min_utts: int = 5) -> None:
    """Warn when a rule puts many utterances under a single speaker (a rule that reads the wrong field)."""
    speakers = set(speaker_of.values())
    if len(speakers) == 1 and len(speaker_of) >= min_utts:
        (spk,) = speakers
        warnings.warn(f"speaker rule {rule.name!r} reads one speaker ({spk!r}) from all {len(speaker_of)} "
                      f"utterances, e.g. {next(iter(speaker_of))!r}: per-speaker normalisation and speaker "
                      f"splits need the right rule (--speaker-rule)", DataWarning, stacklevel=2)


def match_listed(listed: dict[str, list[str]], speakers: set[str], source: str) -> dict[str, list[str]]:
    """Speaker lists mapped to the rule's speakers; a list that matches none of them is an error.

    Entries are read as speakers (``s06``) or NCHLT speaker names (``nchlt-tso-001m`` -> ``001m``).
    The error says which spelling was tried, so a mismatch of spellings is visible at once.
    """
    out: dict[str, list[str]] = {}
    for split, entries in listed.items():
        mapped = [listed_speaker(e) for e in entries]
        if entries and not set(mapped) & speakers:
            tried = entries[0] if mapped[0] == entries[0] else f"{entries[0]} (read as {mapped[0]})"
            raise UserError(f"{source}: speaker list {split!r} matches none of the corpus's "
                            f"{len(speakers)} speakers: {tried} is not among {', '.join(sorted(speakers)[:4])}"
                            f"{', ...' if len(speakers) > 4 else ''} (check --speaker-rule)")
        out[split] = mapped
    return out

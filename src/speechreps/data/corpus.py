"""Finding what a corpus folder holds: audio, word alignments, speaker lists (``speechreps prepare``).

Layout (every part but the audio optional)::

    <corpus>/audio/ | wav/ | flac/ | <corpus>     <utt_id>.wav|.flac (the first of these folders that holds audio)
    <corpus>/*.wrd                                <utt_id> <start_s> <end_s> <word>
    <corpus>/*.ctm                                Kaldi CTM: <utt_id> <channel> <start_s> <duration_s> <word> [conf]
    <corpus>/*.TextGrid, textgrids/, alignments/  Praat TextGrids (one per utterance, named <utt_id>.TextGrid;
                                                  the Montreal Forced Aligner's output), word tier
    <corpus>/speakers.list                        the corpus's speakers, one per line
    <corpus>/speakers/{train,validation,test}.txt speaker lists that define the splits

``speakers.list`` (first field of each line; ``#`` starts a comment, as in the recipe's
``buckeye_speakers.list``) says which speakers make up the corpus: utterances of other speakers are
left out (and counted). It does not define splits: with ``speakers/*.txt`` those decide, without
them the listed speakers are split in sorted order (half train, a quarter validation, a quarter
test), or, with ``--zero-resource``, all of them form the one split ``all``.

Split lists may also use the recipe's names (``devpart1`` = train, ``devpart2``/``dev`` =
validation, ``zs``/``eval`` = test).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UserError
from .alignments import read_speaker_list

AUDIO_SUFFIXES = (".wav", ".flac")
AUDIO_DIRS = ("audio", "wav", "flac")
TEXTGRID_DIRS = ("textgrids", "TextGrid", "alignments")
SPLIT_ALIASES = {
    "train": "train", "devpart1": "train",
    "validation": "validation", "dev": "validation", "devpart2": "validation", "valid": "validation",
    "test": "test", "zs": "test", "eval": "test",
}


@dataclass
class AudioCorpus:
    """What was found in a corpus folder."""

    root: Path
    audio: dict[str, Path]  # utt id -> file
    alignment_files: list[Path]  # .wrd, .ctm or .TextGrid files
    split_speakers: dict[str, list[str]] | None  # None when the corpus has no split lists
    audio_dir: Path | None = None
    corpus_speakers: list[str] | None = None  # from speakers.list
    speaker_sources: list[Path] = field(default_factory=list)

    def describe(self, n_tokens: int | None = None) -> str:
        """One line saying what was found (printed by ``prepare``)."""
        where = self.audio_dir or self.root
        rel = "." if where == self.root else where.name + "/"
        parts = [f"{len(self.audio)} audio files in {rel}"]
        if self.alignment_files:
            kinds = sorted({p.suffix.lower().lstrip(".") for p in self.alignment_files})
            names = ", ".join(p.name for p in self.alignment_files[:2]) + (", ..." if len(self.alignment_files) > 2 else "")
            what = f"{len(self.alignment_files)} alignment files ({'/'.join(kinds)})" if len(self.alignment_files) > 2 \
                else f"alignments {names}"
            parts.append(what + (f" with {n_tokens} word tokens" if n_tokens is not None else ""))
        else:
            parts.append("no word alignments")
        if self.corpus_speakers is not None:
            parts.append(f"speakers.list with {len(self.corpus_speakers)} speakers")
        if self.split_speakers:
            parts.append("split lists " + ", ".join(f"{s} ({len(v)})" for s, v in self.split_speakers.items()))
        elif not self.corpus_speakers:
            parts.append("no speaker lists")
        return f"corpus {self.root}: " + "; ".join(parts)


def _audio_in(folder: Path) -> dict[str, Path]:
    audio: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() in AUDIO_SUFFIXES and path.is_file():
            if path.stem in audio:
                raise UserError(f"utterance {path.stem!r} has two audio files: {audio[path.stem]} and {path}")
            audio[path.stem] = path
    return audio


def find_audio(root: Path) -> tuple[Path, dict[str, Path]]:
    """The first of ``audio/``, ``wav/``, ``flac/``, ``root`` that holds audio files, and those files."""
    tried = []
    for folder in [root / d for d in AUDIO_DIRS] + [root]:
        if folder.is_dir():
            tried.append(str(folder))
            audio = _audio_in(folder)
            if audio:
                return folder, audio
    raise UserError(f"corpus {root}: no .wav or .flac files in {', '.join(tried)}")


def find_alignments(root: Path, audio_dir: Path) -> list[Path]:
    """``.wrd`` files, else ``.ctm`` files, else TextGrids (root, textgrids/, alignments/, the audio folder)."""
    for pattern in ("*.wrd", "*.ctm"):
        found = sorted(root.glob(pattern))
        if found:
            return found
    grids: list[Path] = []
    for folder in [root, *(root / d for d in TEXTGRID_DIRS), audio_dir]:
        if folder.is_dir():
            grids += [p for p in sorted(folder.iterdir()) if p.suffix.lower() == ".textgrid" and p not in grids]
    return grids


def find_split_lists(root: Path) -> tuple[dict[str, list[str]] | None, list[Path]]:
    """``speakers/*.txt`` as ``{split: speakers}`` (aliases resolved); an unknown list name is an error."""
    spk_dir = root / "speakers"
    if not spk_dir.is_dir():
        return None, []
    out: dict[str, list[str]] = {}
    sources = []
    for path in sorted(spk_dir.glob("*.txt")):
        split = SPLIT_ALIASES.get(path.stem.lower())
        if split is None:
            raise UserError(f"speaker list {path}: name it after a split: train, validation or test "
                            f"(or devpart1, devpart2/dev, zs)")
        if split in out:
            raise UserError(f"speaker list {path}: a second list for split {split!r}")
        out[split] = read_speaker_list(path)
        sources.append(path)
    return (out or None), sources


def find_corpus(root: str | os.PathLike, alignments: list[str | os.PathLike] | None = None,
                allow_no_alignments: bool = True) -> AudioCorpus:
    """Locate the audio files, alignment files and speaker lists of a corpus folder."""
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"corpus folder {root} does not exist")
    audio_dir, audio = find_audio(root)
    if alignments:
        files = [Path(a) for a in alignments]
        for p in files:
            if not p.is_file():
                raise UserError(f"alignment file {p} does not exist")
    else:
        files = find_alignments(root, audio_dir)
        if not files and not allow_no_alignments:
            raise UserError(f"corpus {root}: no .wrd, .ctm or .TextGrid alignment file (give one with --alignments)")
    split_speakers, sources = find_split_lists(root)
    corpus_speakers = None
    if (root / "speakers.list").is_file():
        corpus_speakers = read_speaker_list(root / "speakers.list")
        sources.append(root / "speakers.list")
    return AudioCorpus(root, audio, files, split_speakers, audio_dir, corpus_speakers, sources)

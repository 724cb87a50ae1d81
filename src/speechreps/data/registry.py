"""``data_paths.json``: the original tool's registry of datasets, read and written.

The file is a flat JSON object. For a dataset named ``<lang>`` these keys are understood (paths are
relative to the folder holding the file):

==================================  ===============================================================
``<lang>_train_data``               utterance archive, training split (``<utt>_<start>-<end>`` keys)
``<lang>_validation_data``          utterance archive, validation split
``<lang>_test_data``                utterance archive, test split
``<lang>_train_words``              same-different word-token archive, training split (new)
``<lang>_validation_words``         same-different word-token archive, validation split (new)
``<lang>_test_words``               same-different word-token archive, test split (new)
``<lang>_train_pairs``              term-pair file (frames into the training utterances) (new)
``<lang>_word_1_train_data``        original: first members of frame-aligned pairs (npz)
``<lang>_word_2_train_data``        original: second members, same keys, same lengths (npz)
``<lang>_aligned_train_data``       original: ``<key>.X`` / ``<key>.Y`` aligned segment pairs (npz)
``<lang>_speaker_rule``             ``buckeye``, ``nchlt`` or a regular expression (new)
``<lang>_train_pairs_source``       ``discovered`` when ``train_pairs`` came from term discovery (new)
``<lang>_all_data``, ``_all_words`` the zero-resource split ``all``: every utterance and word token (new)
==================================  ===============================================================

A dataset with an ``all`` split and no ``train`` split is a *zero-resource* dataset
(``speechreps prepare --zero-resource``): models train on ``all`` and are evaluated on all its word
tokens; it has no validation split, so no label picks a checkpoint (the last one is used).

The original tool's files only have ``*_data`` keys, and in those the ``*_data`` archives may hold
word tokens rather than utterances; :meth:`DatasetPaths.words` then falls back to them.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UserError
from ..fileio import write_json
from .archive import Archive, SpeakerRule, guess_speaker_rule, parse_word_key, speaker_rule

SPLITS = ("train", "validation", "test")
ALL_SPLIT = "all"
ALL_SPLITS = (*SPLITS, ALL_SPLIT)
# the key suffixes whose values are files of a prepared dataset's folder
FILE_SUFFIXES = (*(f"{s}_{kind}" for s in ALL_SPLITS for kind in ("data", "words")), "train_pairs")
# every key suffix a dataset may have: re-registering ``synth_en`` replaces exactly these, and leaves
# ``synth_en_zr_*`` (another dataset whose name begins with the same letters) alone
ENTRY_SUFFIXES = (*FILE_SUFFIXES, "train_pairs_source", "word_1_train_data", "word_2_train_data",
                  "aligned_train_data", "speaker_rule")
PAIRS_SOURCES = ("given", "discovered")


@dataclass
class DatasetPaths:
    """Resolved (absolute) paths of one dataset of a ``data_paths.json``; ``None`` where absent."""

    name: str
    source: Path
    data: dict[str, Path | None] = field(default_factory=dict)  # split -> utterance archive
    words: dict[str, Path | None] = field(default_factory=dict)  # split -> word-token archive
    train_pairs: Path | None = None
    word_1_train: Path | None = None
    word_2_train: Path | None = None
    aligned_train: Path | None = None
    speaker_rule_spec: str | None = None
    # "discovered": train_pairs came from term discovery (noisy: a third or more pair different words),
    # so a model that can discount wrong pairs (the AWE config's drop_hardest_discovered) should
    train_pairs_source: str = "given"

    @property
    def zero_resource(self) -> bool:
        """An ``all`` split and no ``train`` split: train and evaluate on the same audio."""
        return self.data.get(ALL_SPLIT) is not None and self.data.get("train") is None

    def evaluation_splits(self) -> list[str]:
        """The splits whose word tokens are scored: ``all`` (zero-resource), else validation and test."""
        return [ALL_SPLIT] if self.zero_resource else ["validation", "test"]

    def utterances(self, split: str) -> Path:
        """The utterance archive of ``split`` (``train`` of a zero-resource dataset: ``all``)."""
        if split == "train" and self.zero_resource:
            split = ALL_SPLIT
        return self._need(self.data.get(split), f"{self.name}_{split}_data")

    def word_tokens(self, split: str) -> Path:
        """The same-different archive of ``split``.

        Falls back to ``<lang>_<split>_data`` when that archive's keys are word-token keys (the
        original tool's files registered word segments there).
        """
        path = self.words.get(split)
        if path is not None:
            return self._need(path, f"{self.name}_{split}_words")
        data = self.data.get(split)
        # the original tool's files (no speaker_rule key) may keep word segments under *_data; speechreps
        # prepare's never do, and a corpus without alignments must not have its utterances taken for words
        if data is not None and self.speaker_rule_spec is None and data.is_file() and _is_word_archive(data):
            return data
        if not any(p is not None for p in self.words.values()):
            raise UserError(f"{self.source}: dataset {self.name!r} has no word tokens at all (prepared without word "
                            f"alignments?): same-different evaluation and ground-truth pairs need them")
        hint = f"; its word tokens are in split {ALL_SPLIT!r} (zero-resource)" if self.zero_resource else ""
        raise UserError(
            f"{self.source}: dataset {self.name!r} has no word-token archive for split {split!r} "
            f"(key {self.name}_{split}_words){hint}"
        )

    def has_word_tokens(self, split: str) -> bool:
        try:
            self.word_tokens(split)
            return True
        except UserError:
            return False

    def has_training_pairs(self) -> bool:
        """Whether models that train on word pairs (CAPC, frame CAE, AWE) have pairs here without a
        ``--pairs`` file: a registered term-pair file, or training word tokens (their ground-truth pairs).
        A zero-resource dataset has neither: its word tokens are the evaluation words."""
        return self.train_pairs is not None or self.has_word_tokens("train")

    def stamp(self) -> list[list]:
        """What identifies this dataset's files for a stage fingerprint: per present file its role,
        file name, size and modification time, and the speaker rule. No folder: a run and data folder
        moved or copied with its times (``cp -a``, ``rsync -a``) keeps its stages up to date."""
        roles: list[tuple[str, Path | None]] = [
            *((f"data:{s}", p) for s, p in sorted(self.data.items())),
            *((f"words:{s}", p) for s, p in sorted(self.words.items())),
            ("train_pairs", self.train_pairs), ("word_1_train", self.word_1_train),
            ("word_2_train", self.word_2_train), ("aligned_train", self.aligned_train)]
        out: list[list] = [["speaker_rule", self.speaker_rule_spec]]
        for role, p in roles:
            if p is not None and p.is_file():
                st = p.stat()
                out.append([role, p.name, st.st_size, int(st.st_mtime)])
        return out

    def speaker_rule(self, archive: Path | None = None) -> SpeakerRule:
        """The configured rule, else one guessed from the utterance ids of ``archive``."""
        if self.speaker_rule_spec:
            return speaker_rule(self.speaker_rule_spec)
        if archive is not None and archive.is_file():
            with Archive(archive) as arc:
                keys = list(arc)[:50]
            utts = []
            for k in keys:
                try:
                    utts.append(parse_word_key(k).utt)
                except UserError:
                    utts.append(k.rpartition("_")[0])
            return guess_speaker_rule(utts)
        return speaker_rule("buckeye")

    def _need(self, path: Path | None, key: str) -> Path:
        if path is None:
            raise UserError(f"{self.source}: dataset {self.name!r} has no entry {key!r}")
        if not path.is_file():
            raise UserError(f"{self.source}: {key} points to {path}, which does not exist")
        return path


def _is_word_archive(path: Path) -> bool:
    """Whether an archive's keys look like word-token keys rather than utterance keys.

    ``s01_01a_000000-000100`` parses both ways (label ``s01``), so the test is that either the
    labels vary while the utterance ids keep an ``_`` (Buckeye-style words), or the first field
    differs between keys of one utterance id.
    """
    with Archive(path) as arc:
        keys = list(arc)[:50]
    try:
        parsed = [parse_word_key(k) for k in keys]
    except UserError:
        return False
    if not parsed:
        return False
    labels = {p.label for p in parsed}
    # Utterance archives keyed <speaker>_<utt>_<span> have at most one label per speaker, and the
    # label then equals the speaker prefix of every key of that speaker: many keys per label.
    return len(labels) > max(1, len(parsed) // 4)


def read_data_paths(path: str | os.PathLike) -> dict[str, str]:
    """Read the raw JSON object (a clear error if the file is missing or not a JSON object)."""
    path = Path(path)
    try:
        obj = json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"data paths file {path} does not exist") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise UserError(f"data paths file {path} is not valid JSON: {exc}") from None
    if not isinstance(obj, dict) or not all(isinstance(v, str) for v in obj.values()):
        raise UserError(f"data paths file {path} must be a JSON object of string paths")
    return obj


def dataset_names(raw: dict[str, str]) -> list[str]:
    """Names of the datasets a data_paths object registers (those with any ``_<split>_data`` key)."""
    names = set()
    for key in raw:
        for split in ALL_SPLITS:
            for suffix in (f"_{split}_data", f"_{split}_words"):
                if key.endswith(suffix):
                    names.add(key[: -len(suffix)])
    return sorted(names)


def load_dataset(data_paths: str | os.PathLike, name: str) -> DatasetPaths:
    """Resolve dataset ``name`` of a ``data_paths.json``; an unknown name lists the known ones."""
    data_paths = Path(data_paths)
    raw = read_data_paths(data_paths)
    known = dataset_names(raw)
    if name not in known:
        raise UserError(
            f"dataset {name!r} is not in {data_paths} (known: {', '.join(known) or 'none'})"
        )
    base = data_paths.resolve().parent

    def get(key: str) -> Path | None:
        value = raw.get(f"{name}_{key}")
        if value is None:
            return None
        p = Path(value).expanduser()
        return p if p.is_absolute() else base / p

    return DatasetPaths(
        name=name,
        source=data_paths,
        data={s: get(f"{s}_data") for s in ALL_SPLITS},
        words={s: get(f"{s}_words") for s in ALL_SPLITS},
        train_pairs=get("train_pairs"),
        word_1_train=get("word_1_train_data"),
        word_2_train=get("word_2_train_data"),
        aligned_train=get("aligned_train_data"),
        speaker_rule_spec=raw.get(f"{name}_speaker_rule"),
        train_pairs_source=_pairs_source(raw.get(f"{name}_train_pairs_source", "given"), data_paths, name),
    )


def _pairs_source(value: str, data_paths: Path, name: str) -> str:
    if value not in PAIRS_SOURCES:
        raise UserError(f"{data_paths}: {name}_train_pairs_source must be one of {', '.join(PAIRS_SOURCES)}, "
                        f"got {value!r}")
    return value


def register_dataset(data_paths: str | os.PathLike, name: str, entries: dict[str, str | Path]) -> None:
    """Add or replace dataset ``name`` in ``data_paths.json`` (created if missing), atomically.

    ``entries`` maps suffixes (``train_data``, ``validation_words``, ``speaker_rule``...) to values;
    paths are stored relative to the file's folder when they lie below it.
    """
    from ..crash import remove_stale_temporaries
    from ..locks import exclusive

    data_paths = Path(data_paths)
    # a read-modify-write: two runs registering at once must not lose one registration
    with exclusive(f"{data_paths}.lock", f"the dataset registry {data_paths}", wait=120):
        remove_stale_temporaries(data_paths.parent, (f".{data_paths.name}.*.tmp.json",), temporaries=False)
        raw = read_data_paths(data_paths) if data_paths.exists() else {}
        own = {f"{name}_{suffix}" for suffix in ENTRY_SUFFIXES}
        raw = {k: v for k, v in raw.items() if k not in own}
        base = data_paths.resolve().parent
        for suffix, value in entries.items():
            if isinstance(value, Path):
                try:
                    value = str(value.resolve().relative_to(base))
                except ValueError:
                    value = str(value.resolve())
            raw[f"{name}_{suffix}"] = str(value)
        write_json(data_paths, dict(sorted(raw.items())))

"""NumPy feature archives and the key conventions of Kamper's ``recipe_bucktsong_awe``.

An archive is an ``.npz`` with one float32 ``[frames, dims]`` array per key (10 ms frames).

- utterance (or voice-activity segment) keys: ``<utt>_<start>-<end>``, e.g. ``s01_01a_003222-003255``;
- word-token keys: ``<label>_<utt>_<start>-<end>``, e.g. ``abandoned_s06_02a_044207-044257``;
  the label is everything before the first ``_``, so labels never contain ``_``.

Start and end are frame indices (end exclusive), zero-padded to six digits. The utterance id may
itself contain ``_`` (Buckeye ``s06_02a``); how a speaker is read from it differs per corpus and is a
:class:`SpeakerRule`.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..fileio import atomic_path

_SPAN = re.compile(r"^(?P<start>\d+)-(?P<end>\d+)$")


@dataclass(frozen=True)
class SegmentKey:
    """A parsed archive key. ``label`` is ``None`` for utterance keys."""

    utt: str
    start: int
    end: int
    label: str | None = None

    @property
    def n_frames(self) -> int:
        return self.end - self.start

    def utterance_key(self) -> str:
        """The key without its label: ``<utt>_<start>-<end>``."""
        return f"{self.utt}_{self.start:06d}-{self.end:06d}"

    def __str__(self) -> str:
        base = self.utterance_key()
        return base if self.label is None else f"{self.label}_{base}"


def format_key(utt: str, start: int, end: int, label: str | None = None) -> str:
    """Build a key in the recipe's format (frames zero-padded to six digits)."""
    if label is not None and ("_" in label or not label):
        raise UserError(f"word label {label!r} cannot be used in a key: it is empty or contains '_'")
    return str(SegmentKey(utt, int(start), int(end), label))


def _parse(key: str, with_label: bool) -> SegmentKey:
    head, sep, span = key.rpartition("_")
    m = _SPAN.match(span)
    if not sep or m is None:
        kind = "word-token key <label>_<utt>_<start>-<end>" if with_label else "utterance key <utt>_<start>-<end>"
        raise UserError(f"key {key!r} does not parse as a {kind}")
    start, end = int(m["start"]), int(m["end"])
    label = None
    if with_label:
        label, sep, head = head.partition("_")
        if not sep or not label or not head:
            raise UserError(f"key {key!r} does not parse as a word-token key <label>_<utt>_<start>-<end>")
    if not head:
        raise UserError(f"key {key!r} has an empty utterance id")
    if end < start:
        raise UserError(f"key {key!r} ends before it starts")
    return SegmentKey(head, start, end, label)


def parse_utterance_key(key: str) -> SegmentKey:
    """Parse ``<utt>_<start>-<end>``."""
    return _parse(key, with_label=False)


def parse_word_key(key: str) -> SegmentKey:
    """Parse ``<label>_<utt>_<start>-<end>``; the label is everything before the first ``_``."""
    return _parse(key, with_label=True)


class SpeakerRule:
    """Reads the speaker from an utterance id with a regular expression.

    The expression must match at the start of the utterance id and either have a group named
    ``speaker`` or exactly one group. Built-ins (see :data:`SPEAKER_RULES`):

    - ``buckeye``: everything before the first ``_`` (``s06_02a`` -> ``s06``); also right for the
      built-in synthetic corpora (``en07_0012`` -> ``en07``) and any ``<speaker>_<rest>`` id;
    - ``nchlt``: the speaker field of NCHLT ids (``nchlt-tso-001m-0007`` or
      ``nchlt_tso_001m_0007`` -> ``001m``).
    """

    def __init__(self, pattern: str, name: str | None = None):
        try:
            self.regex = re.compile(pattern)
        except re.error as exc:
            raise UserError(f"speaker rule {pattern!r} is not a valid regular expression: {exc}") from None
        if "speaker" not in self.regex.groupindex and self.regex.groups != 1:
            raise UserError(f"speaker rule {pattern!r} needs a group named 'speaker' or exactly one group")
        self.pattern = pattern
        self.name = name or pattern

    def __call__(self, utt: str) -> str:
        m = self.regex.match(utt)
        speaker = None if m is None else (m.group("speaker") if "speaker" in self.regex.groupindex else m.group(1))
        if not speaker:
            raise UserError(f"cannot read a speaker from utterance id {utt!r} with speaker rule {self.name!r}")
        return speaker

    def __repr__(self) -> str:
        return f"SpeakerRule({self.pattern!r}, name={self.name!r})"


SPEAKER_RULES: dict[str, str] = {
    "buckeye": r"(?P<speaker>[^_]+)_",
    "nchlt": r"nchlt[-_][a-z]+[-_](?P<speaker>[^-_]+)[-_]",
}


def speaker_rule(spec: str | SpeakerRule | None) -> SpeakerRule:
    """A built-in rule by name (``buckeye``, ``nchlt``), or a regular expression; default ``buckeye``."""
    if isinstance(spec, SpeakerRule):
        return spec
    if spec is None:
        spec = "buckeye"
    if spec in SPEAKER_RULES:
        return SpeakerRule(SPEAKER_RULES[spec], name=spec)
    return SpeakerRule(spec)


def guess_speaker_rule(utt_ids: list[str]) -> SpeakerRule:
    """``nchlt`` when every id looks like an NCHLT id, otherwise ``buckeye``."""
    rule = speaker_rule("nchlt")
    if utt_ids and all(rule.regex.match(u) for u in utt_ids):
        return rule
    return speaker_rule("buckeye")


# ---------------------------------------------------------------------------------------------
# Archive I/O


class Archive(Mapping[str, np.ndarray]):
    """Read-only, lazily loaded view of an ``.npz`` feature archive.

    Members are read one at a time from the zip file, so an archive larger than memory can be
    iterated. Every value comes back as float32 ``[frames, dims]``; a member of another shape raises
    :class:`UserError` naming the archive and key.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.is_file():
            raise UserError(f"archive {self.path} does not exist")
        try:
            with open(self.path, "rb") as fh:
                magic = fh.read(6)
        except OSError as exc:
            raise UserError(f"archive {self.path} cannot be read: {exc.strerror}") from None
        if not (magic.startswith(b"PK") or magic == b"\x93NUMPY"):  # else NumPy calls it "pickled data"
            raise UserError(f"archive {self.path} is not an .npz file (it does not start like a zip archive)")
        try:
            self._npz = np.load(self.path, allow_pickle=False)
        except (OSError, ValueError, zipfile.BadZipFile) as exc:
            raise UserError(f"archive {self.path} is not a readable .npz file: {exc}") from None
        if not hasattr(self._npz, "files"):
            raise UserError(f"archive {self.path} is a single .npy array, not an .npz archive of keyed arrays")
        self._keys = list(self._npz.files)

    def __getitem__(self, key: str) -> np.ndarray:
        try:
            arr = self._npz[key]
        except KeyError:
            raise KeyError(key) from None
        except Exception as exc:  # corrupt member
            raise UserError(f"archive {self.path}: key {key!r} cannot be read: {exc}") from None
        if arr.ndim != 2:
            raise UserError(f"archive {self.path}: key {key!r} has shape {arr.shape}, expected [frames, dims]")
        return np.asarray(arr, dtype=np.float32)

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    @property
    def dim(self) -> int:
        """Feature dimension (of the first member)."""
        if not self._keys:
            raise UserError(f"archive {self.path} is empty")
        return int(self._npz[self._keys[0]].shape[1])

    def close(self) -> None:
        self._npz.close()

    def __enter__(self) -> "Archive":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def load_archive(path: str | Path, allow_empty: bool = False) -> dict[str, np.ndarray]:
    """Read a whole archive into memory as ``{key: float32 [frames, dims]}`` (keys in file order)."""
    with Archive(path) as arc:
        data = {k: arc[k] for k in arc}
    if not data and not allow_empty:
        raise UserError(f"archive {path} holds no arrays")
    dims = {v.shape[1] for v in data.values()}
    if len(dims) > 1:
        raise UserError(f"archive {path} mixes feature dimensions {sorted(dims)}")
    return data


def save_archive(path: str | Path, arrays: Mapping[str, np.ndarray], compress: bool = False) -> Path:
    """Write ``{key: [frames, dims]}`` as an ``.npz`` atomically (temporary file, then rename)."""
    path = Path(path)
    if path.suffix != ".npz":
        path = path.with_name(path.name + ".npz")
    save = np.savez_compressed if compress else np.savez
    with atomic_path(path, suffix=".npz") as tmp:
        with open(tmp, "wb") as fh:
            save(fh, **{k: np.asarray(v, dtype=np.float32) for k, v in arrays.items()})
    return path

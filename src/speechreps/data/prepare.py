"""Audio corpus -> feature archives + ``data_paths.json`` (``speechreps prepare``).

Input: see :mod:`speechreps.data.corpus` (audio in ``audio/``, ``wav/``, ``flac/`` or the root; ``.wrd``,
CTM or TextGrid alignments, optional; ``speakers.list`` and ``speakers/*.txt``). Output for dataset
``name`` under ``out``::

    out/data_paths.json                    registers name_{split}_data / _words, name_train_pairs, ...
    out/<name>/{split}_utterances.npz      utterance (or segment) archives, keys <utt>_<start>-<end>
    out/<name>/{split}_words.npz           same-different sets, keys <word>_<utt>_<start>-<end>
    out/<name>/train_pairs.txt             ground-truth term pairs (same word, different tokens)
    out/<name>/prepare.json                what was done, with counts; written last

Splits are ``train``/``validation``/``test`` by speaker, or with ``zero_resource`` the one split
``all`` (every utterance and every word token: the zero-resource protocol, unsupervised training and
evaluation on the same audio; no ground-truth pairs are written, since those are labels).

Keys as the recipe writes them (``utils.write_samediff_words``): a word at ``[t0, t1]`` seconds is
``start = round(100 t0)``, ``end = round(100 t1) + 1``, holding frames ``[start, end)`` of its file, so
it keeps its last frame; it enters a same-different set when ``round(100 t1) - start >= min_frames``
and it has ``min_chars`` characters. Utterance keys are ``<utt>_<start>-<end>`` in frames of the file
(``000000-<n>`` for a whole file); word frames index the same file frames.

Memory stays bounded whatever the corpus size (two passes): pass 1 computes each file's features in a
pool of ``jobs`` processes, each of which writes its raw features to a temporary folder beside the
output and returns its frame count and the per-dimension mean and sum of squared deviations over the
file's kept segments; the parent merges those into per-speaker statistics (Chan et al.'s pairwise
update, float64). Pass 2 normalises one segment at a time while writing the archives member by member
(:class:`NpzWriter`, atomic), equal to within float32 rounding to the all-in-memory
:func:`~speechreps.data.features.speaker_cmvn` of the kept segments.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .. import __version__
from ..crash import kill_point
from ..errors import UserError, WarningCounter, check_jobs
from . import publish
from .alignments import TermPair, WordAlignment, same_label_pairs, unique_words
from .archive import format_key, speaker_rule
from .corpus import AudioCorpus, assign_splits, find_corpus, read_corpus_words
from .corpus_features import NpzWriter, merge_moments, raw_features_to_disk
from .features import SAMPLE_RATE, FeatureConfig
from .registry import ALL_SPLIT, SPLITS, register_dataset
from .segments import SEGMENT_MODES, segment_plan
from .speakers import check_speakers, choose_rule


@dataclass
class PrepareOptions:
    """Everything that decides the output of :func:`prepare_corpus` (recorded in ``prepare.json``)."""

    features: FeatureConfig = field(default_factory=FeatureConfig)
    min_frames: int = 50  # same-different tokens: at least this many frames ...
    min_chars: int = 5  # ... and this many characters (the recipe's filter)
    pair_min_frames: int = 50  # ground-truth training pairs: same filter by default
    pair_min_chars: int = 5
    max_pairs_per_word: int = 100  # cap per word type, so frequent words do not dominate
    speaker_rule: str = "auto"  # auto: from the ids' style (speakers.choose_rule); buckeye, nchlt, a regex
    zero_resource: bool = False  # one split "all": every utterance and word token
    segment: str = "auto"  # auto | none | alignments | energy (see segments.py)
    max_utterance_seconds: float = 60.0  # auto: cut only when a file is longer than this
    tier: str | None = None  # TextGrid word tier (default: the one named "words")
    seed: int = 0

    def __post_init__(self):
        for name in ("min_frames", "min_chars", "pair_min_frames", "pair_min_chars", "max_pairs_per_word"):
            if getattr(self, name) < 0:
                raise UserError(f"option --{name.replace('_', '-')} must be >= 0, got {getattr(self, name)}")
        if self.segment not in SEGMENT_MODES:
            raise UserError(f"--segment must be one of {', '.join(SEGMENT_MODES)}, got {self.segment!r}")
        if not self.max_utterance_seconds > 0:
            raise UserError(f"--max-utterance-seconds must be > 0, got {self.max_utterance_seconds}")
        if self.speaker_rule != "auto":
            speaker_rule(self.speaker_rule)  # validate early

    def to_dict(self) -> dict:
        d = asdict(self)
        d["features"] = self.features.to_dict()
        return d


def _fingerprint(corpus: AudioCorpus, options: PrepareOptions) -> str:
    h = hashlib.sha256()
    h.update(json.dumps(options.to_dict(), sort_keys=True).encode())
    h.update(__version__.encode())
    for utt, path in sorted(corpus.audio.items()):
        st = path.stat()
        h.update(f"{utt}:{st.st_size}:{int(st.st_mtime)}".encode())
    for p in corpus.alignment_files:
        h.update(p.read_bytes())
    if corpus.split_speakers or corpus.corpus_speakers:
        h.update(json.dumps([corpus.split_speakers, corpus.corpus_speakers], sort_keys=True).encode())
    return h.hexdigest()


def _label(word: str) -> str:
    """Word -> archive label: keys split on ``_``, so it becomes ``-``."""
    return word.replace("_", "-")


def ground_truth_pairs(
    tokens: list[tuple[str, str, int, int]], max_per_word: int, seed: int
) -> list[TermPair]:
    """All pairs of tokens of the same word (cluster = word), at most ``max_per_word`` per word.

    ``tokens`` are ``(word, utt, start, end)`` frames. Which pairs survive the cap is random but
    fixed by ``seed``.
    """
    pairs = []
    for i, j in same_label_pairs([t[0] for t in tokens], max_per_word, seed):
        (word, u1, s1, e1), (_, u2, s2, e2) = tokens[i], tokens[j]
        pairs.append(TermPair(word, u1, s1, e1, u2, s2, e2))
    return pairs


def prepare_corpus(
    corpus_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    name: str,
    options: PrepareOptions | None = None,
    alignments: list[str | os.PathLike] | None = None,
    strict: bool = False,
    jobs: int | None = None,
    force: bool = False,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
) -> dict:
    """Prepare dataset ``name`` from an audio corpus; returns the summary written to ``prepare.json``.

    Skips all work when ``prepare.json`` records the same inputs and options (unless ``force``).
    Malformed alignment lines, words naming a missing utterance or lying outside its audio are
    counted, skipped and reported once (``strict`` makes the first one an error). ``log`` gets one line
    saying what was found in the corpus. Without alignments only utterance archives are written.
    """
    options = options or PrepareOptions()
    log = log or (lambda msg: None)
    check_jobs(jobs)
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name or ""):
        raise UserError(f"dataset name {name!r} is not usable: letters, digits, '_', '.', '-' only")
    t0 = time.time()
    corpus = find_corpus(corpus_dir, alignments)
    out_dir = Path(out_dir)
    ds_dir = out_dir / name
    fingerprint = _fingerprint(corpus, options)
    with publish.dataset_lock(out_dir, name):
        publish.remove_stale(out_dir, name)
        if not force and (old := _reuse(out_dir, ds_dir, name, fingerprint)) is not None:
            log(old.get("found", corpus.describe()))
            return old
        return _prepare_locked(corpus, out_dir, ds_dir, name, options, fingerprint, t0, strict, jobs, progress, log)


def _reuse(out_dir: Path, ds_dir: Path, name: str, fingerprint: str) -> dict | None:
    """The existing dataset's summary if it is whole and from the same inputs (re-registered if need be)."""
    old = publish.reusable(ds_dir, fingerprint)
    if old is None:
        return None
    if not publish.registered(out_dir / "data_paths.json", name, ds_dir, old["entries"]):
        register_dataset(out_dir / "data_paths.json", name, publish.entry_paths(ds_dir, old["entries"]))
        old["reregistered"] = True
    old["reused"] = True
    return old


def _left_out(corpus: AudioCorpus, unassigned: list[str], strict: bool) -> None:
    """Speakers in no speaker list lose all their utterances: say so, naming the lists (an error if strict)."""
    import warnings

    from ..errors import DataWarning

    spk_dir = corpus.root / "speakers"
    absent = [f"{s}.txt" for s in SPLITS if not (spk_dir / f"{s}.txt").is_file()]
    shown = ", ".join(unassigned[:5]) + (f" (and {len(unassigned) - 5} more)" if len(unassigned) > 5 else "")
    message = (f"{len(unassigned)} speaker(s) are in none of the speaker lists in {spk_dir}"
               + (f" (no {', '.join(absent)})" if absent else "") + f"; their utterances are left out: {shown}")
    if strict:
        raise UserError(message)
    warnings.warn(message, DataWarning, stacklevel=3)


def _prepare_locked(corpus, out_dir, ds_dir, name, options, fingerprint, t0, strict, jobs, progress, log) -> dict:
    """The work of :func:`prepare_corpus` once the dataset's lock is held and no reuse is possible."""
    problems = WarningCounter(strict=strict, what="alignment line")
    words = read_corpus_words(corpus, problems, options.tier)
    rule, style = choose_rule(list(corpus.audio), options.speaker_rule)
    speaker_of = {u: rule(u) for u in corpus.audio}
    check_speakers(speaker_of, rule)
    found = f"{corpus.describe(len(words))}; {len(set(speaker_of.values()))} speakers (rule {rule.name}" + \
        (f", {style} ids)" if style else ")")
    log(found)
    split_of_speaker, unassigned = assign_splits(corpus, speaker_of, options.zero_resource)
    if unassigned and (corpus.split_speakers or corpus.corpus_speakers is not None):
        _left_out(corpus, unassigned, strict)
    missing = sorted({w.utt for w in words if w.utt not in corpus.audio})
    for utt in missing:
        problems.add(f"alignments name utterance {utt!r}, which has no audio file in {corpus.root}")
    words = [w for w in words if w.utt in corpus.audio and speaker_of[w.utt] in split_of_speaker]
    words = unique_words(words, problems)
    if corpus.alignment_files and not words:  # one line: the first skipped line says why
        first = f" (skipped {len(problems)} line(s); first: {problems.messages[0]})" if len(problems) else ""
        raise UserError(f"corpus {corpus.root}: no usable word alignments in {corpus.alignment_files[0]}{first}")
    files = {u: p for u, p in corpus.audio.items() if speaker_of[u] in split_of_speaker}
    if not files:
        raise UserError(f"corpus {corpus.root}: no utterance belongs to a listed speaker")
    segment_mode, spans = segment_plan(options.segment, options.max_utterance_seconds, files, words)
    with publish.staging(out_dir, name) as stage:
        raw_dir = stage / ".prepare-raw"
        raw_dir.mkdir()
        raw = raw_features_to_disk(files, options.features, raw_dir, jobs=jobs, progress=progress, spans=spans)
        summary, entries = _write_dataset(stage, options, raw, speaker_of, split_of_speaker, words, problems,
                                          rule.pattern if rule.name not in ("buckeye", "nchlt") else rule.name)
        shutil.rmtree(raw_dir)
        summary.update({
            "name": name, "corpus": str(corpus.root.resolve()), "found": found, "speechreps_version": __version__,
            "fingerprint": fingerprint, "options": options.to_dict(), "feature_dim": options.features.dim,
            "speaker_rule": rule.name, "id_style": style, "segmentation": segment_mode,
            "key_convention": "recipe", "unassigned_speakers": unassigned, "seconds": round(time.time() - t0, 2),
        })
        summary = publish.publish(stage, ds_dir, summary, entries)
    kill_point("prepare-before-register")
    register_dataset(out_dir / "data_paths.json", name, publish.entry_paths(ds_dir, entries))
    return summary


def word_frames(w: WordAlignment) -> tuple[int, int, int]:
    """``(start, end, n)`` of a word as the recipe keys it: ``round(100 t0)``, ``round(100 t1) + 1``, and
    ``n = round(100 t1) - start``, the length its filters test (``n >= min_frames``)."""
    start, last = int(round(w.start * 100)), int(round(w.end * 100))
    return start, last + 1, last - start


def _speaker_norm(raw: dict, speaker_of: dict[str, str]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per-speaker mean and standard deviation over the kept segments (merged pass-1 statistics)."""
    stats: dict[str, tuple[int, np.ndarray, np.ndarray]] = {}
    for u, (_, _, _, _, mean, m2) in raw.items():
        n = sum(e - s for s, e in raw[u][3])
        if n == 0:
            continue
        spk = speaker_of[u]
        stats[spk] = (n, mean, m2) if spk not in stats else merge_moments(stats[spk], (n, mean, m2))
    norm = {}
    for spk, (n, mean, m2) in stats.items():
        std = np.sqrt(m2 / n)
        std[std < 1e-8] = 1.0  # as speaker_cmvn: zero-variance dimensions only mean-normalised
        norm[spk] = (mean, std)
    return norm


def _write_dataset(ds_dir, options, raw, speaker_of, split_of_speaker, words, problems,
                   rule_spec: str) -> tuple[dict, dict[str, str]]:
    """Pass 2: normalise while writing the archives into ``ds_dir`` (the staging folder); the pairs.

    Returns the counts and the data_paths entries (file names inside the dataset folder).
    """
    norm = _speaker_norm(raw, speaker_of)

    def normalised(u: str, start: int = 0, end: int | None = None) -> np.ndarray:
        x = np.load(raw[u][0], mmap_mode="r")[start:end]
        mean, std = norm[speaker_of[u]]
        return ((x - mean) / std).astype(np.float32)

    hop = options.features.hop_ms / 1000
    splits = (ALL_SPLIT,) if options.zero_resource else SPLITS
    tokens: dict[str, dict[str, tuple[str, int, int]]] = {s: {} for s in splits}  # key -> (utt, start, end)
    pair_tokens: list[tuple[str, str, int, int]] = []
    for w in words:
        n_frames, n_samples = raw[w.utt][1], raw[w.utt][2]
        if w.end > n_samples / SAMPLE_RATE + hop:
            problems.add(f"word {w.word!r} of {w.utt!r} ends at {w.end:.2f} s, after the audio's "
                         f"{n_samples / SAMPLE_RATE:.2f} s")
            continue
        start, end, n = word_frames(w)
        end = min(end, n_frames)
        if end <= start or speaker_of[w.utt] not in norm:
            continue
        label, split = _label(w.word), split_of_speaker[speaker_of[w.utt]]
        if n >= options.min_frames and len(w.word) >= options.min_chars:
            tokens[split][format_key(w.utt, start, end, label)] = (w.utt, start, end)
        if split == "train" and n >= options.pair_min_frames and len(w.word) >= options.pair_min_chars:
            pair_tokens.append((label, w.utt, start, end))
    problems.report()

    entries: dict[str, str] = {"speaker_rule": rule_spec}
    summary_splits = {}
    for split in splits:
        utts = [u for u in raw if split_of_speaker[speaker_of[u]] == split and raw[u][3]]
        if not utts:
            continue
        with NpzWriter(ds_dir / f"{split}_utterances.npz") as writer:
            for u in utts:
                for s, e in raw[u][3]:
                    writer.add(format_key(u, s, e), normalised(u, s, e))
        entries[f"{split}_data"] = writer.path.name
        kill_point("prepare-after-archive")
        if tokens[split]:
            with NpzWriter(ds_dir / f"{split}_words.npz") as writer:
                for key, (u, start, end) in tokens[split].items():
                    writer.add(key, normalised(u, start, end))
            entries[f"{split}_words"] = writer.path.name
            kill_point("prepare-after-archive")
        frames = sum(e - s for u in utts for s, e in raw[u][3])
        summary_splits[split] = {
            "speakers": sorted({speaker_of[u] for u in utts}),
            "utterances": len(utts),
            "segments": sum(len(raw[u][3]) for u in utts),
            "frames": int(frames),
            "hours": round(frames * hop / 3600, 4),
            "word_tokens": len(tokens[split]),
            "word_types": len({k.split("_", 1)[0] for k in tokens[split]}),
        }
    pairs = [] if options.zero_resource else ground_truth_pairs(pair_tokens, options.max_pairs_per_word, options.seed)
    if pairs:
        from .alignments import write_term_pairs

        write_term_pairs(ds_dir / "train_pairs.txt", pairs)
        entries["train_pairs"] = "train_pairs.txt"
    return {"splits": summary_splits, "train_pairs": len(pairs), "word_alignments": len(words),
            "skipped_alignment_lines": len(problems)}, entries

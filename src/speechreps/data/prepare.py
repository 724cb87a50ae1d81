"""Audio corpus -> feature archives + ``data_paths.json`` (``speechreps prepare``).

Input layout (docs/FORMATS.md): ``<corpus>/audio/<utt_id>.wav|flac`` (or the audio directly in ``<corpus>``),
one or more ``.wrd`` alignment files, and optional speaker lists ``<corpus>/speakers/{train,
validation,test}.txt``. Output for dataset ``name`` under ``out``::

    out/data_paths.json                    registers name_{split}_data / _words, name_train_pairs, ...
    out/<name>/{split}_utterances.npz      utterance archives, keys <utt>_<start>-<end>
    out/<name>/{split}_words.npz           same-different sets, keys <word>_<utt>_<start>-<end>
    out/<name>/train_pairs.txt             ground-truth term pairs (same word, different tokens)
    out/<name>/prepare.json                what was done, with counts; written last

Word-token frames index into the (normalised) utterance arrays, so a word archive is exactly the
slices of the utterance archive that its keys name.

Memory stays bounded whatever the corpus size (features stream utterance by utterance, in two passes):
pass 1 computes each file's features in a pool of ``jobs`` processes, each of which writes its raw
features to a temporary folder beside the output and returns only its frame count and per-dimension
mean and sum of squared deviations; the parent merges those into per-speaker statistics (Chan et al.'s
pairwise update, float64). Pass 2 normalises one utterance at a time while writing the archives member
by member (:class:`NpzWriter`, atomic). The archives hold the same keys in the same order as the
all-in-memory :func:`~speechreps.data.features.speaker_cmvn` would give, with values equal to within
float32 rounding (the per-speaker mean and standard deviation are summed in another order).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
import zipfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .. import __version__
from ..crash import die_with_parent, kill_point
from ..errors import UserError, WarningCounter
from ..fileio import atomic_path, os_user_error
from . import publish
from .alignments import TermPair, WordAlignment, read_speaker_list, read_wrd, same_label_pairs, unique_words
from .archive import format_key, speaker_rule
from .features import SAMPLE_RATE, FeatureConfig, compute_features, load_audio
from .registry import SPLITS, register_dataset

AUDIO_SUFFIXES = (".wav", ".flac")


@dataclass
class PrepareOptions:
    """Everything that decides the output of :func:`prepare_corpus` (recorded in ``prepare.json``)."""

    features: FeatureConfig = field(default_factory=FeatureConfig)
    min_frames: int = 50  # same-different tokens: at least this many frames ...
    min_chars: int = 5  # ... and this many characters (the recipe's filter)
    pair_min_frames: int = 50  # ground-truth training pairs: same filter by default
    pair_min_chars: int = 5
    max_pairs_per_word: int = 100  # cap per word type, so frequent words do not dominate
    speaker_rule: str = "buckeye"
    seed: int = 0

    def __post_init__(self):
        for name in ("min_frames", "min_chars", "pair_min_frames", "pair_min_chars", "max_pairs_per_word"):
            if getattr(self, name) < 0:
                raise UserError(f"option --{name.replace('_', '-')} must be >= 0, got {getattr(self, name)}")
        speaker_rule(self.speaker_rule)  # validate early

    def to_dict(self) -> dict:
        d = asdict(self)
        d["features"] = self.features.to_dict()
        return d


@dataclass
class AudioCorpus:
    """What was found in a corpus folder."""

    root: Path
    audio: dict[str, Path]  # utt id -> file
    alignment_files: list[Path]
    split_speakers: dict[str, list[str]] | None  # None when the corpus has no speaker lists


def find_corpus(root: str | os.PathLike, alignments: list[str | os.PathLike] | None = None) -> AudioCorpus:
    """Locate the audio files, ``.wrd`` files and speaker lists of a corpus folder."""
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"corpus folder {root} does not exist")
    audio_dir = root / "audio" if (root / "audio").is_dir() else root
    audio: dict[str, Path] = {}
    for path in sorted(audio_dir.iterdir()):
        if path.suffix.lower() in AUDIO_SUFFIXES and path.is_file():
            if path.stem in audio:
                raise UserError(f"utterance {path.stem!r} has two audio files: {audio[path.stem]} and {path}")
            audio[path.stem] = path
    if not audio:
        raise UserError(f"corpus {root}: no .wav or .flac files in {audio_dir}")
    if alignments:
        wrd_files = [Path(a) for a in alignments]
        for p in wrd_files:
            if not p.is_file():
                raise UserError(f"alignment file {p} does not exist")
    else:
        wrd_files = sorted(root.glob("*.wrd"))
        if not wrd_files:
            raise UserError(f"corpus {root}: no .wrd alignment file (give one with --alignments)")
    spk_dir = root / "speakers"
    split_speakers = None
    if spk_dir.is_dir():
        split_speakers = {s: read_speaker_list(spk_dir / f"{s}.txt") for s in SPLITS if (spk_dir / f"{s}.txt").is_file()}
        if not split_speakers:
            split_speakers = None
    return AudioCorpus(root, audio, wrd_files, split_speakers)


def default_split(speakers: list[str]) -> dict[str, list[str]]:
    """Half the speakers for training, a quarter each for validation and test (sorted order)."""
    speakers = sorted(speakers)
    n = len(speakers)
    n_val = max(1, n // 4) if n >= 3 else 0
    n_test = max(1, n // 4) if n >= 3 else 0
    n_train = n - n_val - n_test
    return {
        "train": speakers[:n_train],
        "validation": speakers[n_train : n_train + n_val],
        "test": speakers[n_train + n_val :],
    }


def _features_of(args: tuple[Path, FeatureConfig]) -> tuple[np.ndarray, int]:
    path, cfg = args
    audio = load_audio(path)
    feats = compute_features(audio, cfg)
    if len(feats) == 0:
        raise UserError(f"audio file {path} is shorter than one {cfg.win_ms:g} ms frame")
    return feats, len(audio)


def _map_files(fn, tasks: list, jobs: int | None, progress: bool) -> list:
    """``[fn(t) for t in tasks]`` in order, over a process pool when there is enough work, with a progress bar."""
    from tqdm import tqdm

    jobs = jobs or os.cpu_count() or 1
    results = []
    with tqdm(total=len(tasks), desc="features", unit="utt", disable=None if progress else True,
              leave=False) as bar:  # None: only on a terminal
        if jobs == 1 or len(tasks) < 8:
            for t in tasks:
                results.append(fn(t))
                bar.update()
        else:
            with ProcessPoolExecutor(max_workers=jobs, initializer=die_with_parent, initargs=(os.getpid(),)) as pool:
                for r in pool.map(fn, tasks, chunksize=8):
                    results.append(r)
                    bar.update()
                    kill_point("prepare-pool-running")
    return results


def compute_corpus_features(
    files: dict[str, Path], cfg: FeatureConfig, jobs: int | None = None, progress: bool = True
) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    """Features and sample counts of every utterance, in parallel over files."""
    keys = list(files)
    results = _map_files(_features_of, [(files[k], cfg) for k in keys], jobs, progress)
    feats = {k: r[0] for k, r in zip(keys, results)}
    samples = {k: r[1] for k, r in zip(keys, results)}
    return feats, samples


def _raw_to_disk(args: tuple[Path, FeatureConfig, Path]) -> tuple[int, int, np.ndarray, np.ndarray]:
    """Pass 1 for one file: raw features to ``out`` (.npy); returns frames, samples, mean and M2 (float64)."""
    path, cfg, out = args
    feats, n_samples = _features_of((path, cfg))
    try:
        np.save(out, feats)
    except OSError as exc:  # a full disk while the features of the corpus are spooled: one line
        raise (os_user_error(exc, out) or exc) from None
    x = feats.astype(np.float64)
    mean = x.mean(axis=0)
    return len(feats), n_samples, mean, ((x - mean) ** 2).sum(axis=0)


def _merge(a: tuple[int, np.ndarray, np.ndarray], b: tuple[int, np.ndarray, np.ndarray]):
    """Combine (count, mean, M2) of two frame sets (Chan, Golub & LeVeque)."""
    na, ma, m2a = a
    nb, mb, m2b = b
    n = na + nb
    delta = mb - ma
    return n, ma + delta * (nb / n), m2a + m2b + delta**2 * (na * nb / n)


def raw_features_to_disk(files: dict[str, Path], cfg: FeatureConfig, out_dir: Path, jobs: int | None = None,
                         progress: bool = True) -> dict[str, tuple[Path, int, int, np.ndarray, np.ndarray]]:
    """Pass 1: ``utt -> (raw .npy path, frames, samples, mean, M2)``, in parallel over files; bounded memory."""
    keys = list(files)
    paths = {k: out_dir / f"{i:08d}.npy" for i, k in enumerate(keys)}
    results = _map_files(_raw_to_disk, [(files[k], cfg, paths[k]) for k in keys], jobs, progress)
    return {k: (paths[k], *r) for k, r in zip(keys, results)}


class NpzWriter:
    """Write an ``.npz`` member by member (what ``np.savez`` writes, without holding all arrays), atomically."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._ctx = atomic_path(self.path, suffix=".npz")

    def __enter__(self) -> "NpzWriter":
        tmp = self._ctx.__enter__()
        self._zip = zipfile.ZipFile(tmp, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True)
        return self

    def add(self, key: str, array: np.ndarray) -> None:
        with self._zip.open(key + ".npy", "w", force_zip64=True) as fh:
            np.lib.format.write_array(fh, np.asarray(array, dtype=np.float32), allow_pickle=False)

    def __exit__(self, *exc) -> None:
        self._zip.close()
        self._ctx.__exit__(*exc)


def _fingerprint(corpus: AudioCorpus, options: PrepareOptions) -> str:
    h = hashlib.sha256()
    h.update(json.dumps(options.to_dict(), sort_keys=True).encode())
    h.update(__version__.encode())
    for utt, path in sorted(corpus.audio.items()):
        st = path.stat()
        h.update(f"{utt}:{st.st_size}:{int(st.st_mtime)}".encode())
    for p in corpus.alignment_files:
        h.update(p.read_bytes())
    if corpus.split_speakers:
        h.update(json.dumps(corpus.split_speakers, sort_keys=True).encode())
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
) -> dict:
    """Prepare dataset ``name`` from an audio corpus; returns the summary written to ``prepare.json``.

    Skips all work when ``prepare.json`` records the same inputs and options (unless ``force``).
    Malformed alignment lines, words naming a missing utterance or lying outside its audio are
    counted, skipped and reported once (``strict`` makes the first one an error).
    """
    import time

    options = options or PrepareOptions()
    if jobs is not None and jobs < 1:
        raise UserError(f"--jobs must be >= 1, got {jobs}")
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
            return old
        return _prepare_locked(corpus, out_dir, ds_dir, name, options, fingerprint, t0, strict, jobs, progress)


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


def _prepare_locked(corpus, out_dir, ds_dir, name, options, fingerprint, t0, strict, jobs, progress) -> dict:
    """The work of :func:`prepare_corpus` once the dataset's lock is held and no reuse is possible."""
    rule = speaker_rule(options.speaker_rule)
    speaker_of = {utt: rule(utt) for utt in corpus.audio}
    speakers = sorted(set(speaker_of.values()))
    splits = corpus.split_speakers or default_split(speakers)
    split_of_speaker: dict[str, str] = {}
    for split, spks in splits.items():
        for s in spks:
            if s in split_of_speaker:
                raise UserError(f"speaker {s!r} is listed in both {split_of_speaker[s]!r} and {split!r}")
            split_of_speaker[s] = split
    unassigned = sorted(set(speakers) - set(split_of_speaker))
    if unassigned:
        _left_out(corpus, unassigned, strict)

    # Words first: a corpus whose alignments are all unusable should fail before feature extraction.
    problems = WarningCounter(strict=strict, what="alignment line")
    words: list[WordAlignment] = []
    for wrd in corpus.alignment_files:
        words.extend(read_wrd(wrd, warnings=problems))
    words = [w for w in words if speaker_of.get(w.utt) is None or speaker_of[w.utt] in split_of_speaker]
    missing = sorted({w.utt for w in words if w.utt not in corpus.audio})
    for utt in missing:
        problems.add(f"alignments name utterance {utt!r}, which has no audio file in {corpus.root}")
    words = [w for w in words if w.utt in corpus.audio]
    words = unique_words(words, problems)
    if not words:
        problems.report()
        raise UserError(f"corpus {corpus.root}: no usable word alignments")

    files = {u: p for u, p in corpus.audio.items() if speaker_of[u] in split_of_speaker}
    with publish.staging(out_dir, name) as stage:
        raw_dir = stage / ".prepare-raw"
        raw_dir.mkdir()
        summary, entries = _prepare_streaming(corpus, stage, options, fingerprint, speaker_of, split_of_speaker,
                                              unassigned, words, problems, files, raw_dir, jobs, progress)
        shutil.rmtree(raw_dir)
        summary.update(name=name, seconds=round(time.time() - t0, 2))
        summary = publish.publish(stage, ds_dir, summary, entries)
    kill_point("prepare-before-register")
    register_dataset(out_dir / "data_paths.json", name, publish.entry_paths(ds_dir, entries))
    return summary


def _prepare_streaming(corpus, ds_dir, options, fingerprint, speaker_of, split_of_speaker, unassigned, words,
                       problems, files, raw_dir: Path, jobs, progress) -> tuple[dict, dict[str, str]]:
    """Pass 1 (raw features to ``raw_dir``, per-speaker statistics), then pass 2 (normalise while writing).

    Writes into ``ds_dir`` (the staging folder); returns the summary and the data_paths entries (file names).
    """
    raw = raw_features_to_disk(files, options.features, raw_dir, jobs=jobs, progress=progress)
    samples = {u: r[2] for u, r in raw.items()}
    n_frames = {u: r[1] for u, r in raw.items()}
    stats: dict[str, tuple[int, np.ndarray, np.ndarray]] = {}
    for u, (_, n, _, mean, m2) in raw.items():
        spk = speaker_of[u]
        stats[spk] = (n, mean, m2) if spk not in stats else _merge(stats[spk], (n, mean, m2))
    norm = {}
    for spk, (n, mean, m2) in stats.items():
        std = np.sqrt(m2 / n)
        std[std < 1e-8] = 1.0  # as speaker_cmvn: zero-variance dimensions only mean-normalised
        norm[spk] = (mean, std)

    def normalised(u: str, start: int = 0, end: int | None = None) -> np.ndarray:
        x = np.load(raw[u][0], mmap_mode="r")[start:end]
        mean, std = norm[speaker_of[u]]
        return ((x - mean) / std).astype(np.float32)

    hop = options.features.hop_ms / 1000
    tokens: dict[str, dict[str, tuple[str, int, int]]] = {s: {} for s in SPLITS}  # key -> (utt, start, end)
    pair_tokens: list[tuple[str, str, int, int]] = []
    n_words_in_range = 0
    for w in words:
        duration = samples[w.utt] / SAMPLE_RATE
        if w.end > duration + hop:
            problems.add(f"word {w.word!r} of {w.utt!r} ends at {w.end:.2f} s, after the audio's {duration:.2f} s")
            continue
        n_words_in_range += 1
        start, end = w.frames(hop)
        end = min(end, n_frames[w.utt])
        if end <= start:
            continue
        label = _label(w.word)
        split = split_of_speaker[speaker_of[w.utt]]
        n = end - start
        if n >= options.min_frames and len(w.word) >= options.min_chars:
            tokens[split][format_key(w.utt, start, end, label)] = (w.utt, start, end)
        if split == "train" and n >= options.pair_min_frames and len(w.word) >= options.pair_min_chars:
            pair_tokens.append((label, w.utt, start, end))
    problems.report()

    entries: dict[str, str] = {"speaker_rule": options.speaker_rule}
    summary_splits = {}
    for split in SPLITS:
        utts = [u for u in raw if split_of_speaker[speaker_of[u]] == split]
        if not utts:
            continue
        with NpzWriter(ds_dir / f"{split}_utterances.npz") as writer:
            for u in utts:
                writer.add(format_key(u, 0, n_frames[u]), normalised(u))
        entries[f"{split}_data"] = writer.path.name
        kill_point("prepare-after-archive")
        if tokens[split]:
            with NpzWriter(ds_dir / f"{split}_words.npz") as writer:
                for key, (u, start, end) in tokens[split].items():
                    writer.add(key, normalised(u, start, end))
            entries[f"{split}_words"] = writer.path.name
            kill_point("prepare-after-archive")
        frames = sum(n_frames[u] for u in utts)
        summary_splits[split] = {
            "speakers": sorted({speaker_of[u] for u in utts}),
            "utterances": len(utts),
            "frames": int(frames),
            "hours": round(frames * hop / 3600, 4),
            "word_tokens": len(tokens[split]),
            "word_types": len({k.split("_", 1)[0] for k in tokens[split]}),
        }
    pairs = ground_truth_pairs(pair_tokens, options.max_pairs_per_word, options.seed)
    if pairs:
        from .alignments import write_term_pairs

        write_term_pairs(ds_dir / "train_pairs.txt", pairs)
        entries["train_pairs"] = "train_pairs.txt"
    summary = {
        "name": "",  # set by the caller: ds_dir is the staging folder
        "corpus": str(corpus.root.resolve()),
        "speechreps_version": __version__,
        "fingerprint": fingerprint,
        "options": options.to_dict(),
        "feature_dim": options.features.dim,
        "splits": summary_splits,
        "train_pairs": len(pairs),
        "skipped_alignment_lines": len(problems),
        "unassigned_speakers": unassigned,
    }
    return summary, entries

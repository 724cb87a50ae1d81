"""The built-in multi-speaker corpus: eSpeak NG speech with exact word alignments, degraded.

A *speaker* is an eSpeak NG voice variant (``espeak-ng-data/voices/!v``, used as ``<lang>+<variant>``)
with its own base pitch, pitch range and speaking rate. Each utterance is a sequence of words drawn
from the language's shipped vocabulary (``vocab/<lang>.txt``, one word per line in frequency order)
with flattened Zipf probabilities p proportional to 1/(rank + 20): a plain Zipf law would let one word
supply most same-word pairs. Per utterance the rate changes by up to +-15%, and the audio goes through
a random channel, noise and gain (:mod:`.degrade`).

Word times come from eSpeak's word events (start of each word; a word ends where the next starts or
the speech ends), then trimmed to the frames that carry energy, so a word's silence before a stop
or at the end of the utterance is not part of it.

Output (the audio-corpus layout that ``speechreps prepare`` reads)::

    OUT/audio/<spk>_<nnnn>.wav      16 kHz, 16-bit PCM
    OUT/words.wrd                   <utt_id> <start_s> <end_s> <word>
    OUT/speakers/{train,validation,test}.txt
    OUT/utterances.tsv              per utterance: voice, rate, channel, noise, level
    OUT/corpus.json                 parameters, version, speakers, totals (written last)

Speakers ``en01``.. / ``tn01``..; the split is by speaker, half train and a quarter each validation
and test (12/6/6 for the default 24). The same parameters and seed give byte-identical files; a
folder whose ``corpus.json`` matches the requested parameters is reused as it is.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np

from ..errors import UserError
from .degrade import Degradation, degrade
from .utterance import resample, synthesize

#: Bumped whenever a change alters the generated audio or alignments (invalidates caches).
SYNTH_VERSION = 2
SAMPLE_RATE = 16000
MANIFEST = "corpus.json"
PARTIAL_MARKER = ".synth-incomplete"

#: eSpeak voice (language) per corpus language.
LANGUAGES = {"en": "en-us", "tn": "tn"}

#: Voice variants from espeak-ng-data/voices/!v that sound like a person talking (no robots, echoes,
#: whispers): a mix of eSpeak's male/female formant variants, its Klatt voices and community voices.
VARIANTS = [
    "m1", "f1", "m2", "f2", "m3", "f3", "m4", "f4", "m5", "f5", "m6", "Annie", "m7", "Alicia", "m8",
    "Andrea", "Alex", "anika", "Andy", "belinda", "Denis", "linda", "Diogo", "steph", "Gene", "aunty",
    "Henrique", "grandma", "Jacky", "shelby", "Lee", "klatt", "Mario", "klatt2", "Michael", "klatt3",
    "Mike", "adam", "Nguyen", "benjamin", "antonio", "david", "boris", "edward", "ed", "gustave", "iven",
    "max", "michel", "miguel", "mike2", "paul", "pedro", "quincy", "rob", "robert", "sandro", "travis",
    "victor", "grandpa", "Reed", "announcer",
]

_UTT_RE = re.compile(r"^[a-z]+\d+_\d{4}$")
_LAYOUT = {"audio", "words.wrd", "utterances.tsv", "speakers", MANIFEST}


@dataclass(frozen=True)
class Speaker:
    """One synthetic speaker: a voice variant with its own pitch, pitch range and rate."""

    id: str
    split: str
    voice: str  # e.g. "en-us+m3"
    pitch: int  # eSpeak 0-100, 50 = the variant's own
    pitch_range: int  # eSpeak 0-100
    rate: int  # words per minute, before the per-utterance change


@dataclass(frozen=True)
class CorpusParams:
    """Everything that determines a corpus; stored in corpus.json and compared for cache reuse."""

    language: str
    seed: int = 0
    n_speakers: int = 24
    minutes: float = 40.0
    vocab_size: int | None = None  # first N words of the vocabulary (None: all)
    utts_per_speaker: int | None = None  # fixed count instead of filling ``minutes``
    words_per_utt: tuple[int, int] = (5, 11)
    rate_wpm: tuple[int, int] = (120, 165)
    rate_change: float = 0.15  # per utterance, +-
    pitch: tuple[int, int] = (25, 75)
    pitch_range: tuple[int, int] = (20, 80)
    pad_seconds: tuple[float, float] = (0.15, 0.5)  # silence before and after the speech
    trim_db: float = 35.0  # word edges: frames more than this below the utterance peak are trimmed
    zipf_offset: float = 20.0
    degradation: Degradation = field(default_factory=Degradation)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["words_per_utt"] = list(self.words_per_utt)
        d["rate_wpm"] = list(self.rate_wpm)
        d["pitch"] = list(self.pitch)
        d["pitch_range"] = list(self.pitch_range)
        d["pad_seconds"] = list(self.pad_seconds)
        d["degradation"] = {k: list(v) if isinstance(v, tuple) else v for k, v in self.degradation.to_dict().items()}
        return d


# ----------------------------------------------------------------------------------------------
# Vocabulary and speakers


def load_vocab(language: str) -> list[str]:
    """The shipped vocabulary of ``language`` in frequency order (most frequent first)."""
    _check_language(language)
    text = resources.files("speechreps.corpus").joinpath("vocab", f"{language}.txt").read_text(encoding="utf-8")
    words = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    bad = [w for w in words if not re.fullmatch(r"[a-z]+", w)]
    if bad:  # labels become archive-key prefixes: no '_' or anything else odd
        raise ValueError(f"vocab/{language}.txt: words must be lowercase a-z, got {bad[:3]}")
    return words


def word_probabilities(n: int, offset: float = 20.0) -> np.ndarray:
    """Flattened Zipf: p(rank) proportional to 1 / (rank + offset), rank from 1."""
    p = 1.0 / (np.arange(1, n + 1) + offset)
    return p / p.sum()


def split_sizes(n_speakers: int) -> tuple[int, int, int]:
    """Half of the speakers train, a quarter each validation and test (12/6/6 for 24)."""
    if n_speakers < 3:
        raise UserError(f"--speakers: need at least 3 speakers (one per split), got {n_speakers}")
    n_val = max(1, n_speakers // 4)
    n_test = max(1, n_speakers // 4)
    return n_speakers - n_val - n_test, n_val, n_test


def make_speakers(params: CorpusParams) -> list[Speaker]:
    """Speakers drawn from the seed: variants in a seeded order, pitch, range and rate uniform."""
    lang = params.language
    rng = np.random.default_rng([params.seed, _lang_index(lang), 1])
    order = rng.permutation(len(VARIANTS))
    n_train, n_val, _ = split_sizes(params.n_speakers)
    speakers = []
    for i in range(params.n_speakers):
        variant = VARIANTS[order[i % len(VARIANTS)]]
        split = "train" if i < n_train else "validation" if i < n_train + n_val else "test"
        speakers.append(
            Speaker(
                id=f"{lang}{i + 1:02d}",
                split=split,
                voice=f"{LANGUAGES[lang]}+{variant}",
                pitch=int(rng.integers(params.pitch[0], params.pitch[1] + 1)),
                pitch_range=int(rng.integers(params.pitch_range[0], params.pitch_range[1] + 1)),
                rate=int(rng.integers(params.rate_wpm[0], params.rate_wpm[1] + 1)),
            )
        )
    return speakers


def _lang_index(language: str) -> int:
    return sorted(LANGUAGES).index(language)


def _check_language(language: str) -> None:
    if language not in LANGUAGES:
        raise UserError(f"--language: unknown language {language!r} (choose from {', '.join(sorted(LANGUAGES))})")


# ----------------------------------------------------------------------------------------------
# One speaker's utterances (runs in a worker process)


def _speaker_job(job: tuple[CorpusParams, Speaker, str]) -> list[dict]:
    """Synthesise, degrade and write all utterances of one speaker; return their alignments."""
    import soundfile as sf

    from ..fileio import atomic_path

    params, spk, audio_dir = job
    vocab = load_vocab(params.language)
    if params.vocab_size:
        vocab = vocab[: params.vocab_size]
    probs = word_probabilities(len(vocab), params.zipf_offset)
    spk_index = int(spk.id[len(params.language):])
    # Text and rate from one stream per speaker, degradation from one stream per utterance.
    rng = np.random.default_rng([params.seed, _lang_index(params.language), 2, spk_index])
    target = params.minutes * 60.0 / params.n_speakers
    utts: list[dict] = []
    total = 0.0
    while True:
        if params.utts_per_speaker is not None:
            if len(utts) >= params.utts_per_speaker:
                break
        elif total >= target and utts:
            break
        n_words = int(rng.integers(params.words_per_utt[0], params.words_per_utt[1] + 1))
        words = [vocab[i] for i in rng.choice(len(vocab), size=n_words, p=probs)]
        rate = int(round(spk.rate * rng.uniform(1 - params.rate_change, 1 + params.rate_change)))
        # eSpeak's own random generator (breath, roughness) gets a seed per utterance, drawn apart
        # from the streams above so that seeding it changed nothing else.
        espeak_seed = int(np.random.SeedSequence(
            [params.seed, _lang_index(params.language), 4, spk_index, len(utts)]).generate_state(1)[0])
        audio, sr, aligned = synthesize(" ".join(words), spk.voice, rate=rate, pitch=spk.pitch,
                                        pitch_range=spk.pitch_range, trim_db=params.trim_db, seed=espeak_seed)
        peak = np.abs(audio).max()
        audio = audio / peak * 0.5 if peak > 0 else audio
        audio = resample(audio, sr, SAMPLE_RATE)
        pad0 = float(rng.uniform(*params.pad_seconds))
        pad1 = float(rng.uniform(*params.pad_seconds))
        n0, n1 = int(round(pad0 * SAMPLE_RATE)), int(round(pad1 * SAMPLE_RATE))
        audio = np.concatenate([np.zeros(n0, np.float32), audio, np.zeros(n1, np.float32)])
        shift = n0 / SAMPLE_RATE
        rng_utt = np.random.default_rng([params.seed, _lang_index(params.language), 3, spk_index, len(utts)])
        audio, info = degrade(audio, SAMPLE_RATE, rng_utt, params.degradation)
        utt = f"{spk.id}_{len(utts):04d}"
        with atomic_path(Path(audio_dir) / f"{utt}.wav") as tmp:
            sf.write(tmp, audio, SAMPLE_RATE, subtype="PCM_16", format="WAV")
        duration = len(audio) / SAMPLE_RATE
        utts.append({
            "utt": utt,
            "seconds": duration,
            "rate": rate,
            "words": [(w.word, round(w.start + shift, 3), round(w.end + shift, 3)) for w in aligned],
            **info,
        })
        total += duration
    return utts


# ----------------------------------------------------------------------------------------------
# The corpus


def default_out_dir(language: str) -> Path:
    """``$SPEECHREPS_CORPORA/synth_<lang>``, by default ``data/corpora/synth_<lang>`` under the cwd."""
    return Path(os.environ.get("SPEECHREPS_CORPORA", "data/corpora")) / f"synth_{language}"


def read_manifest(out_dir: str | os.PathLike) -> dict | None:
    """The corpus.json of a finished corpus, or None."""
    import json

    path = Path(out_dir) / MANIFEST
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def is_up_to_date(out_dir: str | os.PathLike, params: CorpusParams) -> bool:
    """True when ``out_dir`` holds a finished corpus built with exactly ``params`` by this version."""
    m = read_manifest(out_dir)
    if not m or m.get("version") != SYNTH_VERSION or m.get("params") != _jsonable(params.to_dict()):
        return False
    out = Path(out_dir)
    if not (out / "words.wrd").is_file() or (out / PARTIAL_MARKER).exists():
        return False
    n_files = sum(1 for _ in (out / "audio").glob("*.wav")) if (out / "audio").is_dir() else 0
    return n_files == m.get("totals", {}).get("utterances")


def _jsonable(d):
    import json

    return json.loads(json.dumps(d))


def build_corpus(language: str, out_dir: str | os.PathLike | None = None, seed: int = 0, n_speakers: int = 24,
                 minutes: float = 40.0, jobs: int | None = None, progress: bool = True, force: bool = False,
                 vocab_size: int | None = None, utts_per_speaker: int | None = None,
                 degradation: Degradation | None = None, **overrides) -> Path:
    """Build (or reuse) the synthetic corpus of ``language`` ('en' or 'tn') in ``out_dir``.

    ``minutes`` of speech in total (silence padding included), spread evenly over ``n_speakers``
    (or exactly ``utts_per_speaker`` utterances each). ``jobs`` worker processes (default: all
    cores); each initialises its own eSpeak NG, whose state is process-global. A folder holding a
    finished corpus with the same parameters is returned untouched unless ``force``; anything
    else there from an earlier, different or unfinished build is replaced.
    ``overrides``: other :class:`CorpusParams` fields (e.g. ``rate_wpm=(140, 190)``).
    """
    _check_language(language)
    if minutes <= 0:
        raise UserError(f"--minutes must be positive, got {minutes}")
    if utts_per_speaker is not None and utts_per_speaker < 1:
        raise UserError(f"utterances per speaker must be at least 1, got {utts_per_speaker}")
    if jobs is not None and jobs < 1:
        raise UserError(f"--jobs must be at least 1, got {jobs}")
    if n_speakers > 99:
        raise UserError(f"--speakers: at most 99 speakers, got {n_speakers}")
    n_vocab = len(load_vocab(language))
    if vocab_size is not None and not 2 <= vocab_size <= n_vocab:
        raise UserError(f"vocabulary size must be between 2 and {n_vocab}, got {vocab_size}")
    bad = set(overrides) - set(CorpusParams.__dataclass_fields__)
    if bad:
        raise TypeError(f"build_corpus: unknown parameters {sorted(bad)}")
    params = CorpusParams(language=language, seed=int(seed), n_speakers=int(n_speakers), minutes=float(minutes),
                          vocab_size=vocab_size, utts_per_speaker=utts_per_speaker,
                          degradation=degradation or Degradation(), **overrides)
    split_sizes(params.n_speakers)
    out = Path(out_dir) if out_dir is not None else default_out_dir(language)
    if not force and is_up_to_date(out, params):
        return out
    _prepare_out_dir(out)
    speakers = make_speakers(params)
    started = time.time()
    results = _run_jobs(params, speakers, out / "audio", jobs, progress)
    _write_corpus(out, params, speakers, results, time.time() - started)
    return out


def _prepare_out_dir(out: Path) -> None:
    """Make ``out`` ready for a fresh build without ever deleting what is not ours."""
    from ..fileio import write_text

    if out.exists() and not out.is_dir():
        raise UserError(f"--out: {out} exists and is not a folder")
    if out.is_dir():
        # Ours: a (possibly unfinished) synthetic corpus holds nothing but these names.
        foreign = sorted(p.name for p in out.iterdir() if p.name not in _LAYOUT and not p.name.startswith("."))
        if foreign:
            raise UserError(f"--out: {out} is not empty and holds no synthetic corpus ({foreign[0]!r} is not "
                            "ours); choose another folder")
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / PARTIAL_MARKER, "a speechreps synth build started here and has not finished\n")
    (out / MANIFEST).unlink(missing_ok=True)
    audio = out / "audio"
    if audio.is_dir():
        for f in audio.iterdir():
            if f.suffix == ".wav" and _UTT_RE.match(f.stem) or f.name.startswith("."):
                f.unlink()
    audio.mkdir(exist_ok=True)


def _start_method() -> str:
    """How to start the per-speaker worker processes.

    eSpeak NG's output depends on what its process synthesised before (the state survives even
    espeak_Terminate), so every speaker runs in a fresh process (``maxtasksperchild=1``) that never
    held an engine; the result then depends neither on ``jobs`` nor on scheduling. ``fork`` is
    cheapest and needs no ``if __name__ == "__main__"`` guard in a user's script, but only gives a
    clean child while this process has not initialised eSpeak itself (e.g. by :func:`synthesize`);
    then the children come from a clean fork server (or are spawned).
    """
    import multiprocessing as mp

    from . import espeak

    methods = mp.get_all_start_methods()
    if espeak._ENGINE is None and "fork" in methods:
        return "fork"
    return "forkserver" if "forkserver" in methods else "spawn"


def _run_jobs(params: CorpusParams, speakers: list[Speaker], audio_dir: Path, jobs: int | None,
              progress: bool) -> dict[str, list[dict]]:
    from tqdm import tqdm

    work = [(params, s, str(audio_dir)) for s in speakers]
    jobs = min(jobs or os.cpu_count() or 1, len(work))
    results: dict[str, list[dict]] = {}
    import multiprocessing as mp

    ctx = mp.get_context(_start_method())
    if ctx.get_start_method() == "forkserver":
        # Import the heavy modules once in the server, not in every per-speaker child.
        ctx.set_forkserver_preload(["speechreps.corpus.synth", "scipy.signal", "soundfile", "soxr"])
    from ..crash import watch_parent

    # every worker watches this process (not its own parent, which may be the fork server)
    with ctx.Pool(jobs, initializer=watch_parent, initargs=(os.getpid(),), maxtasksperchild=1) as pool:
        with tqdm(total=len(work), unit="speaker", desc=f"synth {params.language}",
                  disable=None if progress else True) as bar:
            for job, utts in zip(work, pool.imap(_speaker_job, work)):
                results[job[1].id] = utts
                bar.update()
    return results


def _write_corpus(out: Path, params: CorpusParams, speakers: list[Speaker], results: dict[str, list[dict]],
                  build_seconds: float) -> None:
    from ..data.alignments import WordAlignment, write_wrd
    from ..fileio import write_json, write_text
    from .espeak import engine_version

    lines: list[WordAlignment] = []
    split_totals: dict[str, dict] = {s: {"speakers": 0, "utterances": 0, "seconds": 0.0, "words": 0}
                                     for s in ("train", "validation", "test")}
    for spk in speakers:
        t = split_totals[spk.split]
        t["speakers"] += 1
        for u in results[spk.id]:
            t["utterances"] += 1
            t["seconds"] += u["seconds"]
            t["words"] += len(u["words"])
            lines.extend(WordAlignment(u["utt"], s, e, w) for w, s, e in u["words"])
    write_wrd(out / "words.wrd", lines)
    # What each utterance went through, for anyone who wants to relate scores to conditions.
    rows = ["utt\tspeaker\tsplit\tvoice\trate_wpm\tseconds\tchannel\tbandpass\tnoise\tlevel_dbfs"]
    for spk in speakers:
        for u in results[spk.id]:
            rows.append("\t".join(str(x) for x in (
                u["utt"], spk.id, spk.split, spk.voice, u["rate"], round(u["seconds"], 3), u.get("channel", "-"),
                u.get("bandpass", "-"), u.get("noise", "-"), u.get("level_dbfs", "-"))))
    write_text(out / "utterances.tsv", "\n".join(rows) + "\n")
    for split in ("train", "validation", "test"):
        write_text(out / "speakers" / f"{split}.txt",
                   "".join(f"{s.id}\n" for s in speakers if s.split == split))
    for t in split_totals.values():
        t["minutes"] = round(t.pop("seconds") / 60, 2)
    manifest = {
        "format": "speechreps-synth-corpus",
        "version": SYNTH_VERSION,
        "params": _jsonable(params.to_dict()),
        "espeak": engine_version(),
        "sample_rate": SAMPLE_RATE,
        "speakers": [asdict(s) for s in speakers],
        "splits": split_totals,
        "totals": {
            "utterances": sum(t["utterances"] for t in split_totals.values()),
            "minutes": round(sum(t["minutes"] for t in split_totals.values()), 2),
            "words": len(lines),
            "word_types": len({w.word for w in lines}),
        },
        "build_seconds": round(build_seconds, 1),
    }
    # corpus.json last: its presence (with matching parameters) is what marks the corpus finished.
    write_json(out / MANIFEST, manifest)
    (out / PARTIAL_MARKER).unlink(missing_ok=True)

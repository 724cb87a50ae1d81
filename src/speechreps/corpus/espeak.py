"""A small ctypes binding to eSpeak NG (the library and data shipped by the ``espeakng-loader`` wheel).

Only what the synthetic corpus needs: synchronous synthesis into memory, with the word events that
eSpeak reports alongside the audio. Each ``espeakEVENT_WORD`` carries the audio position (ms) at
which a word starts, so word alignments come straight from the synthesiser instead of a forced
aligner.

eSpeak NG keeps its state in process-global variables (one voice, one callback, one set of
parameters), so there is exactly one :class:`Engine` per process (:func:`engine`), guarded by a lock.
The corpus builder runs synthesis in worker processes, which both isolates that state and gives
parallelism.
"""

from __future__ import annotations

import ctypes
import threading
from pathlib import Path
from dataclasses import dataclass

import numpy as np

from ..errors import UserError

# espeak_AUDIO_OUTPUT: synthesis into the callback, returning when done.
AUDIO_OUTPUT_SYNCHRONOUS = 2
# espeak_Initialize options: do not call exit() when the data folder is missing.
INITIALIZE_DONT_EXIT = 0x8000
# espeak_EVENT_TYPE values used here.
EVENT_LIST_TERMINATED = 0
EVENT_WORD = 1
EVENT_SENTENCE = 2
EVENT_END = 5
EVENT_MSG_TERMINATED = 6
# espeak_PARAMETER values.
PARAM_RATE = 1
PARAM_VOLUME = 2
PARAM_PITCH = 3
PARAM_RANGE = 4
PARAM_WORDGAP = 7
# espeak_Synth flags and position type.
CHARS_UTF8 = 1
POS_CHARACTER = 1

RATE_MIN, RATE_MAX = 80, 450


class _EventId(ctypes.Union):
    # The event's payload: a word/sentence number, a mark name, or a phoneme name.
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    # Layout of espeak_EVENT in speak_lib.h (API revision 12).
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),  # 1-based character offset in the text
        ("length", ctypes.c_int),  # word length in characters (word events)
        ("audio_position", ctypes.c_int),  # ms from the start of this synthesis
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))


@dataclass(frozen=True)
class WordEvent:
    """A word as eSpeak reports it: character span in the text and start time in seconds."""

    text_position: int  # 0-based character offset
    length: int
    start: float


@dataclass(frozen=True)
class Synthesis:
    """Raw synthesiser output: 16-bit samples, their rate, word events and the end-of-speech time."""

    samples: np.ndarray  # (n,) int16
    sample_rate: int
    words: list[WordEvent]
    end: float  # seconds: the last end-of-clause event, or the audio length


class Engine:
    """The process's eSpeak NG instance. Use :func:`engine` rather than constructing it."""

    def __init__(self) -> None:
        try:
            import espeakng_loader
        except ImportError as exc:  # pragma: no cover - it is a dependency
            raise UserError(f"the synthetic corpus needs the espeakng-loader package: {exc}") from None
        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = [_CALLBACK]
        lib.espeak_SetSynthCallback.restype = None
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_Synth.argtypes = [
            ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint, ctypes.c_uint,
            ctypes.c_void_p, ctypes.c_void_p,
        ]
        lib.espeak_Synth.restype = ctypes.c_int
        lib.espeak_Info.argtypes = [ctypes.c_void_p]
        lib.espeak_Info.restype = ctypes.c_char_p
        lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        lib.espeak_ng_SetRandSeed.restype = None
        self._lib = lib
        self.data_path = espeakng_loader.get_data_path()
        rate = lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, self.data_path.encode(), INITIALIZE_DONT_EXIT)
        if rate <= 0:
            raise UserError(f"eSpeak NG failed to initialise with data folder {self.data_path}")
        self.sample_rate = int(rate)
        self.version = (lib.espeak_Info(None) or b"?").decode(errors="replace")
        self._lock = threading.Lock()
        self._chunks: list[np.ndarray] = []
        self._events: list[tuple[int, int, int, int]] = []
        # Keep a reference to the ctypes callback for as long as the library may call it.
        self._callback = _CALLBACK(self._on_audio)
        lib.espeak_SetSynthCallback(self._callback)

    def _on_audio(self, wav, n, events) -> int:
        if n > 0 and wav:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        i = 0
        while events[i].type != EVENT_LIST_TERMINATED:
            e = events[i]
            self._events.append((e.type, e.text_position, e.length, e.audio_position))
            i += 1
        return 0  # continue

    def synthesize(self, text: str, voice: str, rate: int = 175, pitch: int = 50, pitch_range: int = 50,
                   volume: int = 100, seed: int = 0) -> Synthesis:
        """Speak ``text`` with ``voice`` (e.g. ``en-us+m3``, ``tn+f2``); rate in words per minute,
        pitch and pitch range 0-100 (50 = the voice's own).

        ``seed`` seeds eSpeak's own random generator (breath noise, roughness), which is otherwise
        seeded from the clock, so that voices using it are reproducible across processes.
        """
        lib = self._lib
        data = text.encode("utf-8") + b"\0"
        if "+" in voice:  # eSpeak silently ignores an unknown variant: check it exists
            variant = voice.split("+", 1)[1]
            if not (Path(self.data_path) / "voices" / "!v" / variant).is_file():
                raise UserError(f"eSpeak NG has no voice variant {variant!r} (voices/!v in {self.data_path})")
        with self._lock:
            if lib.espeak_SetVoiceByName(voice.encode()) != 0:
                raise UserError(f"eSpeak NG has no voice {voice!r}")
            for param, value in ((PARAM_RATE, max(RATE_MIN, min(RATE_MAX, int(rate)))),
                                 (PARAM_PITCH, int(pitch)), (PARAM_RANGE, int(pitch_range)),
                                 (PARAM_VOLUME, int(volume)), (PARAM_WORDGAP, 0)):
                lib.espeak_SetParameter(param, value, 0)
            lib.espeak_ng_SetRandSeed(int(seed) & 0x7FFFFFFF)
            self._chunks, self._events = [], []
            err = lib.espeak_Synth(data, len(data), 0, POS_CHARACTER, 0, CHARS_UTF8, None, None)
            if err != 0:
                raise RuntimeError(f"espeak_Synth failed with error {err}")
            chunks, events = self._chunks, self._events
            self._chunks, self._events = [], []
        samples = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)
        total = len(samples) / self.sample_rate
        words = [WordEvent(pos - 1, length, ms / 1000.0) for typ, pos, length, ms in events if typ == EVENT_WORD]
        ends = [ms / 1000.0 for typ, _, _, ms in events if typ == EVENT_END]
        end = min(max(ends), total) if ends else total
        return Synthesis(samples.astype(np.int16, copy=False), self.sample_rate, words, end)


_ENGINE: Engine | None = None
_ENGINE_LOCK = threading.Lock()


def engine() -> Engine:
    """The process's eSpeak NG engine, initialised on first use."""
    global _ENGINE
    with _ENGINE_LOCK:
        if _ENGINE is None:
            _ENGINE = Engine()
        return _ENGINE


def engine_version() -> str:
    """eSpeak NG's version string and the wheel's, without initialising the library here."""
    import espeakng_loader

    try:
        from importlib.metadata import version

        wheel = version("espeakng-loader")
    except Exception:  # pragma: no cover - metadata missing in odd installs
        wheel = "?"
    lib = ctypes.CDLL(espeakng_loader.get_library_path())
    lib.espeak_Info.argtypes = [ctypes.c_void_p]
    lib.espeak_Info.restype = ctypes.c_char_p
    return f"eSpeak NG {(lib.espeak_Info(None) or b'?').decode(errors='replace')} (espeakng-loader {wheel})"

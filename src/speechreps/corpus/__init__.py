"""The built-in synthetic corpus: multi-speaker eSpeak NG speech with exact word alignments.

``build_corpus('en')`` writes (or reuses) ``data/corpora/synth_en`` in the audio-corpus layout that
``speechreps prepare`` reads; ``synthesize(text, voice)`` speaks one text in this process.
"""

from .synth import LANGUAGES, CorpusParams, Speaker, build_corpus, default_out_dir, load_vocab, read_manifest
from .utterance import Word, synthesize

__all__ = ["LANGUAGES", "CorpusParams", "Speaker", "Word", "build_corpus", "default_out_dir", "load_vocab",
           "read_manifest", "synthesize"]

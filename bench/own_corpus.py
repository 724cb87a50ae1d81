"""A corpus of unseen voices, laid out as a user's own corpus, to measure speechreps on audio it never saw.

    python bench/own_corpus.py OUT [--minutes 15] [--speakers 8] [--jobs 2]

Voices: eSpeak NG variants that the built-in corpora (seed 0, 24 speakers per language) do not use,
with settings outside the built-in ranges: base pitch 5-22 or 78-95 (built-in 25-75), pitch range
85-99 (20-80), rate 170-195 words per minute (120-165). Words from the shipped English vocabulary;
the same random channel and noise as the built-in corpus. Layout as a user would bring it: FLAC in
``wav/``, one ``words.wrd``, a ``speakers.list``; no split lists. Then, for example::

    speechreps prepare OUT data_own --name own --zero-resource
    speechreps run --dataset own --data-paths data_own/data_paths.json --only apc,cpc,frame_ae --seeds 5

(or ``speechreps run --corpus OUT --zero-resource ...``, which does both).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np


def unseen_speakers(n: int, seed: int = 7):
    from speechreps.corpus.synth import VARIANTS, CorpusParams, Speaker, make_speakers

    used = {s.voice.split("+", 1)[1] for lang in ("en", "tn") for s in make_speakers(CorpusParams(language=lang))}
    free = [v for v in VARIANTS if v not in used]
    if len(free) < n:
        sys.exit(f"only {len(free)} unused voice variants, asked for {n}")
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(free), size=n, replace=False)
    out = []
    for i, k in enumerate(picks):
        low = i % 2 == 0
        out.append(Speaker(id=f"en{51 + i:02d}", split="train", voice=f"en-us+{free[k]}",
                           pitch=int(rng.integers(5, 23) if low else rng.integers(78, 96)),
                           pitch_range=int(rng.integers(85, 100)), rate=int(rng.integers(170, 196))))
    return out, sorted(used)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path)
    ap.add_argument("--minutes", type=float, default=15.0)
    ap.add_argument("--speakers", type=int, default=8)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()

    import soundfile as sf

    from speechreps.corpus.synth import CorpusParams, _run_jobs
    from speechreps.data.alignments import WordAlignment, write_wrd
    from speechreps.fileio import write_json, write_text

    speakers, used = unseen_speakers(args.speakers, args.seed)
    params = CorpusParams(language="en", seed=args.seed, n_speakers=args.speakers, minutes=args.minutes)
    tmp = args.out / ".wav-tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    results = _run_jobs(params, speakers, tmp, args.jobs, progress=True)
    (args.out / "wav").mkdir(exist_ok=True)
    words = []
    seconds = 0.0
    for spk in speakers:
        for u in results[spk.id]:
            audio, sr = sf.read(tmp / f"{u['utt']}.wav", dtype="float32")
            sf.write(args.out / "wav" / f"{u['utt']}.flac", audio, sr, format="FLAC")
            (tmp / f"{u['utt']}.wav").unlink()
            seconds += u["seconds"]
            words += [WordAlignment(u["utt"], s, e, w) for w, s, e in u["words"]]
    tmp.rmdir()
    write_wrd(args.out / "words.wrd", words)
    write_text(args.out / "speakers.list", "".join(f"{s.id}\n" for s in speakers))
    write_json(args.out / "voices.json", {"speakers": [s.__dict__ for s in speakers], "builtin_variants": used,
                                          "minutes": round(seconds / 60, 2), "words": len(words)})
    print(json.dumps({"out": str(args.out), "minutes": round(seconds / 60, 2), "words": len(words),
                      "voices": [s.voice for s in speakers]}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

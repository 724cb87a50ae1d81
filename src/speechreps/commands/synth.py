"""``speechreps synth``: build the built-in eSpeak NG corpus (English and/or Setswana)."""

from __future__ import annotations

import argparse

ORDER = 10


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "synth",
        help="build the built-in synthetic multi-speaker corpus (eSpeak NG; English, Setswana)",
        description="Synthesise a multi-speaker read-speech corpus with eSpeak NG (no downloads): each "
        "speaker is a voice variant with its own pitch, pitch range and rate; sentences are drawn from "
        "the shipped vocabulary with flattened Zipf frequencies; each utterance gets a rate change, a "
        "random channel filter, white or pink noise at a random SNR and a random gain. Word alignments "
        "come from eSpeak's word events. Writes OUT/audio/<spk>_<nnnn>.wav (16 kHz), OUT/words.wrd, "
        "OUT/speakers/{train,validation,test}.txt (half / quarter / quarter of the speakers), "
        "OUT/utterances.tsv (what each utterance went through) and "
        "OUT/corpus.json. The same options give identical files; an OUT already built with the same "
        "options is reused (use --force to rebuild).",
    )
    p.add_argument("--language", choices=["en", "tn", "all"], default="all",
                   help="en (English), tn (Setswana) or all (default: all)")
    p.add_argument("--out", metavar="DIR",
                   help="corpus folder (one language only; default: ROOT/synth_<language>)")
    p.add_argument("--root", metavar="DIR", default=None,
                   help="parent folder of the default corpus folders "
                        "(default: $SPEECHREPS_CORPORA or data/corpora under the current folder)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--speakers", type=int, default=24,
                   help="speakers per language, at least 3 (default: 24, split 12/6/6)")
    p.add_argument("--minutes", type=float, default=40.0,
                   help="minutes of audio per language (default: 40)")
    p.add_argument("--jobs", type=int, default=None, help="worker processes (default: all cores)")
    p.add_argument("--force", action="store_true", help="rebuild even if OUT holds the same corpus")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import time
    from pathlib import Path

    from ..corpus.synth import build_corpus, default_out_dir, read_manifest
    from ..errors import UserError

    languages = ["en", "tn"] if args.language == "all" else [args.language]
    if args.out and len(languages) > 1:
        raise UserError("--out names one corpus folder: give --language en or tn with it (or use --root)")
    for lang in languages:
        if args.out:
            out = Path(args.out)
        elif args.root:
            out = Path(args.root) / f"synth_{lang}"
        else:
            out = default_out_dir(lang)
        started = time.time()
        before = read_manifest(out)
        out = build_corpus(lang, out, seed=args.seed, n_speakers=args.speakers, minutes=args.minutes,
                           jobs=args.jobs, force=args.force)
        m = read_manifest(out) or {}
        reused = before is not None and before == m
        print(format_summary(out, m, reused, time.time() - started))
    return 0


def format_summary(out, manifest: dict, reused: bool, seconds: float) -> str:
    """A few lines on what the corpus holds."""
    lang = manifest.get("params", {}).get("language", "?")
    state = "up to date, reused" if reused else f"built in {seconds:.0f} s"
    lines = [f"synth_{lang}: {out} ({state})", f"{'split':<11}{'speakers':>9}{'utts':>7}{'minutes':>9}{'words':>7}"]
    for split, s in manifest.get("splits", {}).items():
        lines.append(f"{split:<11}{s['speakers']:>9}{s['utterances']:>7}{s['minutes']:>9.1f}{s['words']:>7}")
    t = manifest.get("totals", {})
    lines.append(f"{t.get('word_types', 0)} word types; {manifest.get('espeak', '')}")
    return "\n".join(lines)

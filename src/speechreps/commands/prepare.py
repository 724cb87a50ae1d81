"""``speechreps prepare``: an audio corpus -> feature archives and data_paths.json."""

from __future__ import annotations

import argparse

ORDER = 20


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "prepare",
        help="audio corpus -> MFCC/fbank archives, same-different sets, word pairs, data_paths.json",
        description="Compute features for an audio corpus (audio in audio/, wav/, flac/ or the folder itself; "
        "optional word alignments: *.wrd, *.ctm or TextGrids; optional speakers.list and "
        "speakers/{train,validation,test}.txt) and register it in OUT/data_paths.json. Prints one line "
        "saying what it found. Work is skipped when OUT already holds the same preparation (--force redoes it). "
        "Default split, without speaker lists (or --zero-resource): the speakers in sorted order, the last quarter "
        "for test, the quarter before it for validation (at least one each from 3 speakers on), the rest (about "
        "half) for training. Default speaker rule (auto): nchlt for NCHLT-style ids (nchlt-tso-001m-0007 -> 001m), "
        "else buckeye (the id up to its first '_': s06_02a -> s06).",
    )
    p.add_argument("corpus", help="corpus folder")
    p.add_argument("out", help="output folder (data_paths.json and one folder per dataset)")
    p.add_argument("--name", required=True, help="dataset name, e.g. synth_en (keys <name>_train_data, ...)")
    p.add_argument("--alignments", nargs="+", metavar="FILE",
                   help="alignment files: .wrd, .ctm or .TextGrid (default: CORPUS/*.wrd, else *.ctm, else TextGrids)")
    p.add_argument("--tier", default=None, help="TextGrid word tier (default: the tier named 'words')")
    p.add_argument("--zero-resource", action="store_true",
                   help="one split 'all' with every utterance and word token (train and evaluate on the same "
                        "audio, no ground-truth pairs, no validation)")
    p.add_argument("--segment", choices=["auto", "none", "alignments", "energy"], default="auto",
                   help="cut recordings into utterances at the alignments' pauses or by an energy rule "
                        "(auto: only when a file is longer than --max-utterance-seconds)")
    p.add_argument("--max-utterance-seconds", type=float, default=60.0, help="see --segment auto (60)")
    p.add_argument("--features", choices=["mfcc", "fbank"], default="mfcc",
                   help="MFCC + deltas (39-d, default) or log-mel filterbanks + deltas (72-d)")
    p.add_argument("--no-deltas", action="store_true", help="static coefficients only")
    p.add_argument("--min-frames", type=int, default=50, help="same-different tokens: minimum frames (50)")
    p.add_argument("--min-chars", type=int, default=5, help="same-different tokens: minimum characters (5)")
    p.add_argument("--pair-min-frames", type=int, default=50, help="training word pairs: minimum frames (50)")
    p.add_argument("--pair-min-chars", type=int, default=5, help="training word pairs: minimum characters (5)")
    p.add_argument("--max-pairs-per-word", type=int, default=100, help="cap on training pairs per word type")
    p.add_argument("--speaker-rule", default="auto",
                   help="how to read a speaker from an utterance id: auto (default: nchlt for NCHLT-style ids, else "
                        "buckeye), buckeye (up to the first '_': s06_02a -> s06), nchlt (nchlt-tso-001m-0007 -> "
                        "001m), or a regex with group 'speaker'")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--jobs", type=int, default=None, help="parallel processes (default: all cores)")
    p.add_argument("--strict", action="store_true", help="make skipped alignment lines an error")
    p.add_argument("--force", action="store_true", help="recompute even if the output is up to date")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..data.features import FeatureConfig
    from ..data.prepare import PrepareOptions, prepare_corpus

    options = PrepareOptions(
        features=FeatureConfig(kind=args.features, deltas=not args.no_deltas),
        min_frames=args.min_frames,
        min_chars=args.min_chars,
        pair_min_frames=args.pair_min_frames,
        pair_min_chars=args.pair_min_chars,
        max_pairs_per_word=args.max_pairs_per_word,
        speaker_rule=args.speaker_rule,
        zero_resource=args.zero_resource,
        segment=args.segment,
        max_utterance_seconds=args.max_utterance_seconds,
        tier=args.tier,
        seed=args.seed,
    )
    summary = prepare_corpus(
        args.corpus, args.out, args.name, options, alignments=args.alignments,
        strict=args.strict, jobs=args.jobs, force=args.force, log=print,
    )
    print(format_summary(summary))
    return 0


def format_summary(summary: dict) -> str:
    """A small table of what a preparation holds."""
    head = f"dataset {summary['name']}" + (" (up to date, reused)" if summary.get("reused") else "")
    lines = [head, f"{'split':<11}{'speakers':>9}{'utts':>7}{'hours':>8}{'tokens':>8}{'types':>7}"]
    for split, s in summary["splits"].items():
        lines.append(
            f"{split:<11}{len(s['speakers']):>9}{s['utterances']:>7}{s['hours']:>8.3f}{s['word_tokens']:>8}{s['word_types']:>7}"
        )
    lines.append(f"training word pairs: {summary['train_pairs']}; feature dim {summary['feature_dim']}")
    if not summary.get("word_alignments", 1):
        lines.append("no word alignments: utterance archives only (apc, cpc, frame_ae train on them; evaluation, "
                     "capc and frame_cae need word tokens or --pairs)")
    return "\n".join(lines)

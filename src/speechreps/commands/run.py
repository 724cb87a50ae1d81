"""``speechreps run``: the main job (see :mod:`speechreps.experiment`)."""

from __future__ import annotations

import argparse
from pathlib import Path

ORDER = 5


def _csv(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run",
        help="the main job: corpus -> features -> train every model -> evaluate -> extract -> report",
        description="Build (or reuse) the built-in corpus, prepare its features, train every representation "
        "type with the demo configs, evaluate and extract them, and write a report (report.md + figures). "
        "Every stage is skipped when its outputs are up to date; a changed config re-runs what depends on it.",
    )
    p.add_argument("--out", type=Path, default=Path("runs/main"), help="run folder (default: runs/main)")
    p.add_argument("--data-dir", type=Path, default=Path("data"), help="where corpora and features go (default: data)")
    p.add_argument("--config", type=Path, default=None, help="config JSON (default: the packaged configs/demo.json)")
    p.add_argument("--languages", type=_csv, default=["en", "tn"], help="built-in corpus languages (default: en,tn)")
    p.add_argument("--dataset", action="append", default=None, metavar="NAME",
                   help="use your own dataset NAME from --data-paths instead of the built-in corpus (repeatable; "
                        "the first is the training language of the cross-lingual rows)")
    p.add_argument("--data-paths", type=Path, default=None, help="data_paths.json for --dataset")
    p.add_argument("--corpus", action="append", type=Path, default=None, metavar="PATH",
                   help="your own audio corpus (the layout speechreps prepare reads): prepare it into --data-dir and "
                        "run every stage on it instead of the built-in corpus (repeatable)")
    p.add_argument("--zero-resource", action="store_true",
                   help="with --corpus: train and evaluate on all of its audio and word tokens (one split 'all'; "
                        "no validation, so the last checkpoint is used)")
    p.add_argument("--only", type=_csv, default=None, metavar="TYPES", help="e.g. apc,cpc (default: all five)")
    p.add_argument("--seeds", type=int, default=1, help="train each model with this many seeds (mean ± std)")
    p.add_argument("--seed", type=int, default=0, help="first seed (default 0)")
    p.add_argument("--corpus-minutes", type=float, default=None, help="minutes of speech per built-in language")
    p.add_argument("--corpus-speakers", type=int, default=None, help="speakers per built-in language")
    p.add_argument("--force", nargs="*", default=None, metavar="STAGE",
                   help="redo stages even if up to date: all with no argument, or kinds/names such as train, "
                        "evaluate:cpc:synth_en:synth_en:s0")
    p.add_argument("--no-cross-lingual", action="store_true", help="skip the cross-lingual rows")
    p.add_argument("--awe", action="store_true",
                   help="also train an acoustic word embedding model (the config's awe section: ContrastiveRNN or CAE-RNN) on MFCC and on each trained model's "
                        "features (the config's awe section) and add that table to the report")
    p.add_argument("--encoder", action="append", type=Path, default=[], metavar="MODEL_DIR",
                   help="also score a pretrained HuBERT / wav2vec 2.0 / WavLM from a local folder (config.json + "
                        "model.safetensors) layer by layer, its best layer as extra rows (repeatable)")
    p.add_argument("--discover", action="store_true",
                   help="the zero-resource track: also discover word pairs in each language's training audio "
                        "(speechreps discover, no transcription), train CAPC and frame CAE on them (best epoch "
                        "picked without labels) and report them beside the gold-pair models, with the "
                        "discovery's own scores")
    p.add_argument("--discover-on", metavar="TYPE", default=None,
                   help="a second round of the zero-resource track: discover again on the features of this run's "
                        "TYPE model (one trained without labels, e.g. cpc; its last.pt) and train CAPC and frame CAE "
                        "on those pairs too, beside the MFCC round's (--awe keeps the MFCC round's pairs); implies "
                        "--discover")
    p.add_argument("--jobs", type=int, default=None, help="CPU threads/processes (default: all cores)")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..errors import UserError, check_jobs
    from ..experiment import MainJobOptions, run_main_job

    check_jobs(args.jobs)
    force: set[str] | bool = False if args.force is None else (set(args.force) if args.force else True)
    if args.corpus and args.dataset:
        raise UserError("--corpus and --dataset: give one or the other")
    if args.zero_resource and not args.corpus:
        raise UserError("--zero-resource goes with --corpus (prepare a zero-resource dataset with speechreps prepare)")
    opts = MainJobOptions(
        run_dir=args.out, data_dir=args.data_dir, config=args.config, languages=tuple(args.languages),
        datasets=args.dataset, data_paths=args.data_paths, corpora=args.corpus, zero_resource=args.zero_resource,
        only=args.only, seeds=args.seeds, base_seed=args.seed,
        corpus_minutes=args.corpus_minutes, corpus_speakers=args.corpus_speakers, force=force,
        jobs=args.jobs, device=args.device, cross_lingual=not args.no_cross_lingual, awe=args.awe,
        encoders=args.encoder, discover=args.discover or args.discover_on is not None, discover_on=args.discover_on,
        progress=not args.no_progress,
    )
    report = run_main_job(opts)
    print()
    print((report.parent / "table.md").read_text())
    if args.awe:
        print((report.parent / "awe" / "awe_compare.md").read_text())
    print(f"report: {report}")
    return 0

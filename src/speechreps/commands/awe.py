"""``speechreps awe train|embed|evaluate|compare``: acoustic word embeddings (see :mod:`speechreps.awe`).

Input features (``train`` / ``evaluate``), one of:

- nothing: the dataset's own archives (MFCC);
- ``--frame-model CKPT_DIR`` [``--layer NAME``]: a trained frame-level model (``speechreps train``)
  encodes the training utterances (term pairs are cut from them) and the word tokens in context;
- ``--features SPLIT=ARCHIVE`` (repeatable; word-token archives in learned features, e.g. written by
  ``speechreps extract``) and ``--train-features ARCHIVE`` (the training *utterances* in the same
  features; needed when pairs come from term pairs).

``evaluate`` and ``embed`` reuse the inputs recorded at training (``CKPT_DIR/awe_inputs.json``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..run_options import DEFAULT_LANGUAGE

ORDER = 60


def _add_inputs(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("input features (default: the dataset's own archives, MFCC)")
    g.add_argument("--frame-model", default=None, metavar="CKPT_DIR",
                   help="a trained frame-level model whose features the AWE model reads (encoded on the fly)")
    g.add_argument("--layer", default=None, help="with --frame-model: the layer (default: the model's default)")
    g.add_argument("--frame-checkpoint", choices=("best", "last"), default="best",
                   help="with --frame-model: its best.pt (picked by its validation AP) or last.pt (default best; "
                        "last for inputs chosen without any word label)")
    g.add_argument("--features", action="append", default=[], metavar="SPLIT=ARCHIVE",
                   help="word-token archive of learned features of SPLIT (train, validation, test); repeatable")
    g.add_argument("--train-features", default=None, metavar="ARCHIVE",
                   help="the training utterances in the same learned features (for term pairs)")
    g.add_argument("--features-name", default=None, metavar="NAME", help="a name for the --features input (logs)")


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-paths", default=None, metavar="FILE",
                   help="data_paths.json (default: ./data_paths.json, else ./data/data_paths.json, else ./config/...)")
    p.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    p.add_argument("--jobs", type=int, default=None, help="CPU threads for torch")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("awe", help="acoustic word embeddings: ContrastiveRNN / CAE-RNN / downsampling on any features",
                       description="Acoustic word embeddings on top of MFCCs or learned features: train a ContrastiveRNN "
                       "(Jacobs et al. 2021) or a CAE-RNN (Kamper 2019), embed word-token archives, evaluate by same-different AP (cosine), and "
                       "compare input features.")
    s = p.add_subparsers(dest="awe_command", metavar="ACTION")

    t = s.add_parser("train", help="train a CAE-RNN (optionally after AE-RNN pre-training) or a ContrastiveRNN",
                     description="Train the config's AWE model (\"model\": \"cae_rnn\", the default, or "
                     "\"contrastive_rnn\") on word-segment pairs of dataset --language: a term-pair file "
                     "(--pairs), else the dataset's train_pairs, else same-word pairs of its training word tokens.")
    t.add_argument("config", metavar="CONFIG", help='JSON config with an "awe" section (e.g. configs/demo.json)')
    t.add_argument("ckpt_dir", metavar="CKPT_DIR", help="folder for checkpoints and metrics")
    t.add_argument("--language", default=DEFAULT_LANGUAGE,
                   help=f"dataset name in data_paths.json (default: {DEFAULT_LANGUAGE}, the built-in English corpus)")
    t.add_argument("--pairs", default=None, metavar="FILE", help="term-pair file (frames into the training utterances)")
    t.add_argument("--discovered-pairs", action="store_true",
                   help="the --pairs file comes from term discovery (speechreps discover): train with the "
                        "config's drop_hardest_discovered (implied for a dataset whose registered pairs were "
                        "discovered, such as the <dataset>_zr of speechreps run --discover, when no --pairs is given)")
    t.add_argument("--load-from-epoch", type=int, default=None, metavar="N", help="resume from CKPT_DIR/epoch_N.pt")
    t.add_argument("--resume", action="store_true", help="resume from the newest CKPT_DIR/epoch_N.pt if any")
    _add_inputs(t)
    _add_common(t)

    e = s.add_parser("embed", help="write the embeddings of a word-token archive",
                     description="Embed every token of WORDS (an .npz word-token archive in the AWE model's input "
                     "features) and write OUT.npz with the same keys, each value a float32 [1, dim] array. With "
                     "--downsample N: downsampled embeddings (no model).")
    e.add_argument("words", metavar="WORDS", help="word-token archive (.npz)")
    e.add_argument("out", metavar="OUT", help="output archive (.npz)")
    e.add_argument("--model", default=None, metavar="CKPT_DIR", help="a trained AWE model folder (awe train)")
    e.add_argument("--downsample", type=int, default=None, metavar="N", help="downsample to N frames instead")
    e.add_argument("--method", choices=("fourier", "interpolate"), default="fourier", help="downsampling method")
    e.add_argument("--checkpoint", choices=("best", "last"), default=None,
                   help="which checkpoint (default: last for a model trained on discovered pairs, whose "
                        "pseudo-labelled validation picks the wrong epoch; else best)")
    e.add_argument("--device", default=None, help="torch device")

    v = s.add_parser("evaluate", help="same-different AP of downsampled and the AWE model's embeddings",
                     description="Same-different AP (cosine; all and cross-speaker positives) of the AWE model's "
                     "(CAE-RNN or ContrastiveRNN) embeddings and of downsampled embeddings of the same input "
                     "features, on the validation and "
                     "test words; writes CKPT_DIR/awe_evaluation_<language>.json.")
    v.add_argument("ckpt_dir", metavar="CKPT_DIR", help="a trained AWE model folder")
    v.add_argument("--language", default=None, help="dataset to evaluate on (default: the training dataset)")
    v.add_argument("--checkpoint", choices=("best", "last"), default=None,
                   help="which checkpoint (default: last for a model trained on discovered pairs, whose "
                        "pseudo-labelled validation picks the wrong epoch; else best)")
    _add_inputs(v)
    _add_common(v)

    c = s.add_parser("compare", help="an AWE model on every input feature type of a main-job run: one table",
                     description="Read RUN_DIR/results.json of the main job (speechreps run), train the config's AWE model on "
                     "MFCCs and on the features of each trained frame-level model (same config, same seed), "
                     "including the cross-lingual rows, and, for a run with --discover, the same AWE model on each "
                     "dataset's discovered pairs (MFCC and label-free inputs; scored on the gold words); print one "
                     "table (also RUN_DIR/awe/awe_compare.md).")
    c.add_argument("--run-dir", type=Path, default=Path("runs/main"), help="the main job's folder (default runs/main)")
    c.add_argument("--config", default=None, help='config with an "awe" section (default: the packaged demo.json)')
    c.add_argument("--out", type=Path, default=None, help="output folder (default: RUN_DIR/awe)")
    c.add_argument("--seed", type=int, default=None, help="which seed's models, and the AWE model's seed (default: first)")
    c.add_argument("--only", default=None, metavar="TYPES", help="comma-separated feature types (default: all)")
    c.add_argument("--no-cross-lingual", action="store_true", help="skip the cross-lingual rows")
    c.add_argument("--force", action="store_true", help="retrain even when a job's result is up to date")
    c.add_argument("--device", default=None, help="torch device")
    c.add_argument("--jobs", type=int, default=None, help="CPU threads for torch")
    c.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run, _awe_parser=p)


# ---------------------------------------------------------------------------------------------


def _inputs_from_args(args, device):
    """An (InputFeatures, InputSpec) from the input options, or (None, None) when none was given."""
    from ..errors import UserError
    from ..awe.train import InputSpec

    if args.frame_model and (args.features or args.train_features):
        raise UserError("give either --frame-model or --features/--train-features, not both")
    if args.frame_model:
        spec = InputSpec(kind="model", frame_model=str(Path(args.frame_model).resolve()), layer=args.layer,
                         name=args.features_name, checkpoint=args.frame_checkpoint)
    elif args.features or args.train_features:
        words = {}
        for item in args.features:
            split, sep, path = item.partition("=")
            if not sep or split not in ("train", "validation", "test") or not path:
                raise UserError(f"--features {item!r}: expected SPLIT=ARCHIVE with SPLIT train, validation or test")
            words[split] = str(Path(path).resolve())
        spec = InputSpec(kind="archives", words=words, name=args.features_name or "features",
                         train_features=str(Path(args.train_features).resolve()) if args.train_features else None)
    else:
        return None, None
    inputs = spec.build(device)
    if spec.kind == "model":
        spec.layer = inputs.layer
        spec.name = spec.name or inputs.name
    return inputs, spec


def _setup(args):
    import torch

    from ..errors import check_jobs
    from ..train.trainer import default_device

    jobs = getattr(args, "jobs", None)
    check_jobs(jobs)
    if jobs is not None:
        torch.set_num_threads(jobs)
    return default_device(args.device)


def _train(args) -> int:
    from ..awe.config import load_awe_config
    from ..awe.train import InputSpec, train_awe
    from ..data.registry import load_dataset
    from ..errors import UserError
    from ..pipeline import resolve_data_paths

    cfg = load_awe_config(args.config)
    if args.load_from_epoch is not None and args.load_from_epoch < 0:
        raise UserError(f"--load-from-epoch must be >= 0, got {args.load_from_epoch}")
    ds = load_dataset(resolve_data_paths(args.data_paths), args.language)
    # the registry says so for a <dataset>_zr twin; a --pairs file replaces its pairs, and then only the flag does
    discovered = args.discovered_pairs or (args.pairs is None and ds.train_pairs_source == "discovered")
    if discovered:
        from ..awe.config import for_discovered_pairs

        cfg = for_discovered_pairs(cfg)
    device = _setup(args)
    inputs, spec = _inputs_from_args(args, device)
    if inputs is None:
        from ..awe.data import MFCCInput

        inputs, spec = MFCCInput(), InputSpec(kind="mfcc", name="mfcc")
    train_awe(cfg, ds, inputs, args.ckpt_dir, pairs_file=args.pairs, device=device, resume=args.resume,
              load_from_epoch=args.load_from_epoch, spec=spec, progress=not args.no_progress,
              pairs="discovered" if discovered else "gold")
    return 0


def _embed(args) -> int:
    from ..awe.embed import downsample_embeddings, model_embeddings, save_embeddings
    from ..awe.train import load_awe, scored_checkpoint
    from ..data.archive import load_archive
    from ..errors import UserError

    if not Path(args.words).is_file():
        raise UserError(f"word-token archive {args.words} does not exist")
    if (args.model is None) == (args.downsample is None):
        raise UserError("give exactly one of --model CKPT_DIR and --downsample N")
    words = load_archive(args.words)
    if args.downsample is not None:
        emb = downsample_embeddings(words, args.downsample, args.method)
    else:
        if not Path(args.model).is_dir():
            raise UserError(f"AWE model folder {args.model} does not exist")
        device = _setup(args)
        model, path = load_awe(args.model, checkpoint=args.checkpoint or scored_checkpoint(args.model), device=device)
        emb = model_embeddings(model, words, device)
    out = save_embeddings(args.out, emb)
    dim = next(iter(emb.values())).shape[1] if emb else 0
    print(f"embedded {len(emb)} tokens ({dim}-d) -> {out}")
    return 0


def _evaluate(args) -> int:
    from ..awe.train import evaluate_awe, load_awe, read_input_spec, scored_checkpoint
    from ..data.registry import load_dataset
    from ..errors import UserError
    from ..fileio import write_json
    from ..pipeline import resolve_data_paths

    ck = Path(args.ckpt_dir)
    if not ck.is_dir():
        raise UserError(f"AWE model folder {ck} does not exist")
    device = _setup(args)
    recorded, raw = read_input_spec(ck)
    data_paths = resolve_data_paths(args.data_paths or raw.get("data_paths"))
    language = args.language or raw.get("dataset")
    if not language:
        raise UserError(f"{ck} records no training dataset: give --language")
    ds = load_dataset(data_paths, language)
    inputs, spec = _inputs_from_args(args, device)
    if inputs is None:
        if recorded is None:
            from ..awe.data import MFCCInput
            from ..awe.train import InputSpec

            inputs, spec = MFCCInput(), InputSpec()
        else:
            spec = recorded
            if spec.kind == "archives" and language != raw.get("dataset"):
                raise UserError(f"{ck} was trained on feature archives of {raw.get('dataset')!r}: give --features "
                                f"for {language!r}")
            inputs = spec.build(device)
    model, path = load_awe(ck, checkpoint=args.checkpoint or scored_checkpoint(ck), device=device)
    scores = evaluate_awe(ds, inputs, model, device=device)
    report = {"checkpoint": str(path), "language": language, "inputs": inputs.describe(), "splits": scores}
    out = ck / f"awe_evaluation_{language}.json"
    write_json(out, report)
    print(f"AWEs of {inputs.describe()} on {language} (cosine same-different), {path.name}")
    print(f"{'split':<12}{'embedding':<16}{'AP':>8}{'AP x-spk':>10}{'tokens':>8}")
    for split, entry in scores.items():
        for kind in ("downsample", model.cfg.model):
            r = entry[kind]
            x = "-" if r["ap_cross_speaker"] is None else f"{r['ap_cross_speaker']:.4f}"
            print(f"{split:<12}{kind:<16}{r['ap']:>8.4f}{x:>10}{r['n_tokens']:>8}")
    print(f"written {out}")
    return 0


def _compare(args) -> int:
    from ..awe.compare import compare, discovered_from_results, format_table, plan_from_results
    from ..awe.config import load_awe_config

    data_paths, datasets, feature_sets, seed = plan_from_results(args.run_dir, args.seed)
    if args.only:
        wanted = {t.strip() for t in args.only.split(",") if t.strip()}
        feature_sets = {k: v for k, v in feature_sets.items() if k in wanted}
    # a run with --discover: the discovered-pair rows too
    discovered, label_free = discovered_from_results(args.run_dir, feature_sets, seed)
    cfg = load_awe_config(args.config)
    device = _setup(args)
    out = args.out or args.run_dir / "awe"
    rows = compare(data_paths, datasets, feature_sets, cfg, out, seed=seed, cross_lingual=not args.no_cross_lingual,
                   device=device, progress=not args.no_progress, force=args.force,
                   discovered=discovered, discovered_features=label_free)
    print(format_table(rows))
    print(f"written {out / 'awe_compare.md'}")
    return 0


def run(args: argparse.Namespace) -> int:
    actions = {"train": _train, "embed": _embed, "evaluate": _evaluate, "compare": _compare}
    if args.awe_command not in actions:
        args._awe_parser.print_help()
        return 2
    return actions[args.awe_command](args)

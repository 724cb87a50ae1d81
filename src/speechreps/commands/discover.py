"""``speechreps discover``: unsupervised term discovery on an utterance feature archive."""

from __future__ import annotations

import argparse

ORDER = 25


def _ints(value: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in value.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated frame counts, got {value!r}") from None


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "discover",
        help="unsupervised term discovery: find repeated words in untranscribed speech (pairs, terms, clusters)",
        description="Find pairs of repeated segments in an utterance feature archive (keys <utt>_<start>-<end>; "
        "MFCCs or a trained model's features) without any transcription: windows of a few lengths, "
        "chunk-mean embeddings, nearest neighbours (inverted-file index), DTW verification, clusters. Writes "
        "OUT/pairs.txt (the term-pair file that --pairs reads), OUT/terms.npz (discovered-term archive, keys "
        "<cluster>_<utt>_<start>-<end>), OUT/clusters.txt (ZeroSpeech class file) and OUT/discover.json. "
        "With --gold, also the ZeroSpeech term-discovery scores (NED, coverage, grouping, token / type / "
        "boundary precision, recall, F).",
    )
    p.add_argument("archive", help="utterance feature archive (.npz)")
    p.add_argument("out", help="output folder")
    p.add_argument("--gold", metavar="WRD", help="word alignment (.wrd, seconds) of these utterances: score the result")
    p.add_argument("--phones", metavar="PHN",
                   help="phone alignment in the same format, for NED / coverage (default: each gold word split "
                        "evenly into its letters)")
    p.add_argument("--window-lengths", type=_ints, default=None, metavar="L,L,...",
                   help="candidate segment lengths in frames (default 40,60,80)")
    p.add_argument("--hop", type=int, default=None, help="frames between window starts (default 5)")
    p.add_argument("--k", type=int, default=None, help="neighbours kept per window (default 5)")
    p.add_argument("--dtw-z", type=float, default=None,
                   help="keep pairs whose DTW cost lies this many robust standard deviations below the median "
                        "cost of random segment pairs (default 5.5; lower: more pairs, less pure)")
    p.add_argument("--dtw-threshold", type=float, default=None, help="an absolute DTW cost threshold instead")
    p.add_argument("--target-coverage", type=float, default=None, metavar="SHARE",
                   help="instead of a threshold: the best pairs (lowest DTW cost) until their segments cover this "
                        "share of all frames (no label used; the same share suits any language and feature type)")
    p.add_argument("--coverage-floor-z", type=float, default=None, metavar="Z",
                   help="with --target-coverage: pairs must still lie Z robust standard deviations below random "
                        "pairs' median cost (default 4.0)")
    p.add_argument("--trim", type=int, default=None, metavar="FRAMES",
                   help="cut each pair to the lowest-cost stretch of its DTW path at least FRAMES long on both sides "
                        "(default 0: whole windows)")
    p.add_argument("--term-inventory", action="store_true",
                   help="the operating point for a term inventory scored by the ZeroSpeech measures: "
                        "--target-coverage 0.28 --trim 40 (purer clusters; fewer pairs, fragments of words, "
                        "which train worse models than the default's)")
    p.add_argument("--index", choices=("auto", "ivf", "exact"), default=None,
                   help="nearest-neighbour search (default auto: exact below 20000 windows, else ivf)")
    p.add_argument("--extend", type=int, default=None, metavar="FRAMES",
                   help="grow each verified pair outward by up to FRAMES per side, --hop at a time, while its DTW cost "
                        "stays under the threshold (default 0: no growing)")
    p.add_argument("--extend-slack", type=float, default=None,
                   help="with --extend: how much a pair's DTW cost may rise while it grows (default 0)")
    p.add_argument("--resolution", type=float, default=None,
                   help="Louvain resolution of the clustering, relative to the pair graph's total weight (default "
                        "0.5: small, pure clusters, low NED; 0.01: larger clusters, higher grouping F, higher NED)")
    p.add_argument("--max-pairs-per-cluster", type=int, default=None, help="pair file: at most this many (100)")
    p.add_argument("--seed", type=int, default=None, help="random seed (0)")
    p.add_argument("--jobs", type=int, default=None, help="CPU threads (default: all cores)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json
    from dataclasses import replace

    from ..data.archive import load_archive
    from ..discover.config import TERM_INVENTORY, DiscoverConfig
    from ..discover.pipeline import discover_to_folder
    from ..errors import check_jobs

    check_jobs(args.jobs)
    cfg = DiscoverConfig(**(TERM_INVENTORY if args.term_inventory else {}))
    overrides = {name: getattr(args, name) for name in ("window_lengths", "hop", "k", "dtw_z", "dtw_threshold", "extend",
                                                         "extend_slack", "index", "resolution", "max_pairs_per_cluster",
                                                         "seed", "jobs", "target_coverage", "coverage_floor_z",
                                                         "trim")}
    cfg = replace(cfg, **{k: v for k, v in overrides.items() if v is not None})
    utterances = load_archive(args.archive)
    summary = discover_to_folder(utterances, args.out, cfg, gold=args.gold, phones=args.phones, log=print)
    scores = summary.get("scores")
    if scores:
        print(json.dumps({k: scores[k] for k in ("ned", "coverage")}))
    return 0

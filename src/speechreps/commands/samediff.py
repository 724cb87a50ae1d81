"""``speechreps samediff``: same-different AP / PRB of a word-token archive."""

from __future__ import annotations

import argparse

ORDER = 30


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "samediff",
        help="same-different word discrimination (AP, PRB) of a word-token archive",
        description="Average precision and precision-recall breakeven of the same-different task "
        "(Carlin et al., 2011) on a word-token archive with keys <label>_<utt>_<start>-<end>, by DTW "
        "(cosine frame distance, cost / (n + m)) and/or downsampled cosine distance. The cross-speaker "
        "AP leaves out same-word same-speaker pairs; speakers are read from the utterance ids.",
    )
    p.add_argument("archive", help="word-token .npz archive")
    p.add_argument("--distance", choices=["dtw", "downsample", "both"], default="dtw", help="distance (dtw)")
    p.add_argument("--normalize", choices=["sum", "path"], default="sum",
                   help="DTW cost divided by n + m (sum, the recipe's) or by the path length")  # fmt: skip
    p.add_argument("--jobs", type=int, default=None, help="CPU threads for DTW (default: all cores)")
    p.add_argument("--device", default=None,
                   help="cpu (numba kernel) or cuda[:K] (torch wavefront); default cuda when present")  # fmt: skip
    p.add_argument("--speaker-rule", default=None,
                   help="speaker from utterance id: buckeye, nchlt or a regex with a group 'speaker' "
                   "(default: nchlt if every id looks like one, else buckeye)")  # fmt: skip
    p.add_argument("--cross-speaker", action="store_true",
                   help="require the cross-speaker AP (error if speakers cannot be read; otherwise it "
                   "is reported when they can)")  # fmt: skip
    p.add_argument("--min-frames", type=int, default=0, help="leave out tokens shorter than this (0)")
    p.add_argument("--min-chars", type=int, default=0, help="leave out labels shorter than this (0)")
    p.add_argument("--json", metavar="OUT.json", help="write the results as JSON")
    p.add_argument("--pr-curve", metavar="OUT.png", help="plot the precision-recall curves to a PNG")
    p.set_defaults(func=run)


def format_table(results) -> str:
    def f(x):
        return "-" if x is None else f"{x:.4f}"

    head = f"{'distance':<11}{'AP':>8}{'PRB':>8}{'AP x-spk':>10}{'PRB x-spk':>11}{'tokens':>8}{'types':>7}" \
           f"{'pairs':>12}{'seconds':>9}"  # fmt: skip
    rows = [head]
    for r in results:
        rows.append(
            f"{r.distance:<11}{f(r.ap):>8}{f(r.prb):>8}{f(r.ap_cross_speaker):>10}{f(r.prb_cross_speaker):>11}"
            f"{r.n_tokens:>8}{r.n_types:>7}{r.n_pairs:>12,}{r.seconds:>9.1f}"
        )
    return "\n".join(rows)


def plot_pr_curves(results, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..evaluate.samediff import precision_recall_curve
    from ..fileio import atomic_path

    fig, ax = plt.subplots(figsize=(5, 4))
    for r in results:
        precision, recall = precision_recall_curve(r.distances, r.matches)
        step = max(1, len(recall) // 5000)  # thin out: millions of points look the same as 5,000
        ax.plot(recall[::step], precision[::step], label=f"{r.distance} (AP {r.ap:.3f})")
        if r.ap_cross_speaker is not None:
            keep = r.cross_speaker_keep
            precision, recall = precision_recall_curve(r.distances[keep], r.matches[keep])
            step = max(1, len(recall) // 5000)
            ax.plot(recall[::step], precision[::step], "--", label=f"{r.distance} cross-speaker (AP {r.ap_cross_speaker:.3f})")
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)


def run(args: argparse.Namespace) -> int:
    from ..data.archive import guess_speaker_rule, load_archive, parse_word_key, speaker_rule
    from ..errors import UserError
    from ..evaluate.samediff import samediff, word_tokens
    from ..fileio import write_json

    arrays = load_archive(args.archive)
    if args.speaker_rule is None:
        try:
            rule = guess_speaker_rule([parse_word_key(k).utt for k in arrays])
        except UserError as exc:
            raise UserError(f"archive {args.archive}: {exc}") from None
    else:
        rule = speaker_rule(args.speaker_rule)
    from ..checks import looks_like_utterances

    if looks_like_utterances(arrays, rule):
        raise UserError(f"archive {args.archive} holds utterances (keys <utt>_<start>-<end>), not word tokens "
                        f"(keys <label>_<utt>_<start>-<end>): give a word-token archive such as <name>/<split>_words.npz")
    try:
        segments, labels, speakers, _ = word_tokens(arrays, rule, args.min_frames, args.min_chars)
    except UserError as exc:
        if args.cross_speaker or "speaker" not in str(exc):
            raise UserError(f"archive {args.archive}: {exc}") from None
        # speakers cannot be read: evaluate without the cross-speaker figures
        segments, labels, _, _ = word_tokens(arrays, r"(?P<speaker>.*)", args.min_frames, args.min_chars)
        speakers = None
    if len(segments) < 2:
        raise UserError(f"archive {args.archive}: {len(segments)} word token(s) left after filtering; need at least 2")
    distances = ["dtw", "downsample"] if args.distance == "both" else [args.distance]
    results = []
    for dist in distances:
        try:
            r = samediff(segments, labels, speakers, distance=dist, n_jobs=args.jobs, device=args.device,
                         normalize=args.normalize)  # fmt: skip
        except UserError as exc:
            raise UserError(f"archive {args.archive}: {exc}") from None
        if args.cross_speaker and r.ap_cross_speaker is None:
            raise UserError(f"archive {args.archive}: no same-word pairs across speakers (speaker rule {rule.name})")
        results.append(r)
    print(format_table(results))
    if args.json:
        write_json(args.json, {
            "archive": str(args.archive),
            "speaker_rule": rule.name if speakers is not None else None,
            "normalize": args.normalize,
            "min_frames": args.min_frames,
            "min_chars": args.min_chars,
            "results": [r.to_dict() for r in results],
        })  # fmt: skip
    if args.pr_curve:
        plot_pr_curves(results, args.pr_curve)
    return 0

"""``speechreps pack ARCHIVE.npz ...``: a memory-mappable copy of feature archives, for corpora larger than memory."""

from __future__ import annotations

import argparse

ORDER = 25


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "pack",
        help="convert .npz feature archives to a memory-mappable layout (ARCHIVE.f32 + ARCHIVE.index.json)",
        description="Write ARCHIVE.f32 (all frames, float32, one member after another) and ARCHIVE.index.json "
        "(keys and frame offsets) beside each ARCHIVE.npz, reading one member at a time. Training then "
        "memory-maps the packed copy instead of reading the archive into memory (uncompressed archives, as "
        "prepare writes them, are memory-mapped in place even without packing; the frame AE and compressed "
        "archives need the packed copy). A packed copy older than its .npz is ignored. Give a data_paths.json "
        "and --language to pack every utterance archive of a dataset.",
    )
    p.add_argument("archives", nargs="*", metavar="ARCHIVE", help=".npz archives to pack")
    p.add_argument("--data-paths", metavar="FILE", help="pack the utterance archives of --language in this data_paths.json")
    p.add_argument("--language", metavar="NAME", help="dataset name in --data-paths")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..data.packed import pack_archive
    from ..errors import UserError

    paths = list(args.archives)
    if args.data_paths or args.language:
        if not (args.data_paths and args.language):
            raise UserError("--data-paths and --language go together")
        from ..data.registry import load_dataset

        ds = load_dataset(args.data_paths, args.language)
        paths += [str(p) for p in ds.data.values() if p is not None and p.is_file()]
    if not paths:
        raise UserError("nothing to pack: give ARCHIVE.npz files or --data-paths FILE --language NAME")
    for path in paths:
        data, index = pack_archive(path, progress=True)
        print(f"packed {path} -> {data} + {index}")
    return 0

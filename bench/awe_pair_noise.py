"""Why an AWE model trained on discovered pairs scores below downsampling: pair count, wrong partners, fragments.

    python bench/awe_pair_noise.py GOLD_PAIRS DISCOVERED_PAIRS OUT [--same-word 0.616] [--word-share 0.616]

Writes term-pair files (the recipe's format, frames into the training utterances) that each change
one property of the gold pairs towards the discovered ones, so that an AWE model trained on each
shows what that property costs:

- ``gold_all.txt``: every gold pair;
- ``gold_n.txt``: as many gold pairs as there are discovered pairs, drawn at random (count only);
- ``gold_noisy.txt``: those pairs with the second segment of a ``1 - same_word`` share of them replaced
  by a token of another word (wrong partners, at the discovered pairs' rate);
- ``gold_frag.txt``: those pairs with both segments cut to the same ``word_share`` of their word, at
  one random relative offset per pair (fragments, as discovered segments are);
- ``discovered.txt``: the discovered pairs themselves.

``--same-word`` (the share of discovered pairs whose two segments overlap the same word most) and
``--word-share`` (the share of its word a discovered segment covers) are measured against the gold
alignment; the defaults are synth_en's at the track's default discovery (README, "Growing pairs to
whole words"). Then, for each file, with the demo config (``drop_hardest`` as wanted)::

    speechreps awe train CFG CK --language synth_en --pairs OUT/gold_noisy.txt [--frame-model RUN/models/s0/synth_en/cpc --frame-checkpoint last] --jobs 1
    speechreps awe evaluate CK --language synth_en --checkpoint last

(``last``: no label picks the epoch). The README's table "Why AWEs on discovered pairs scored below
downsampling" was made this way.
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path


def _read(path: Path) -> list[list[str]]:
    return [line.split() for line in path.read_text().splitlines() if line.strip()]


def _write(path: Path, rows: list[list]) -> None:
    path.write_text("".join(" ".join(map(str, r)) + "\n" for r in rows))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("gold", type=Path, help="gold term-pair file (e.g. DATA/synth_en/train_pairs.txt)")
    ap.add_argument("discovered", type=Path, help="discovered term-pair file (speechreps discover's pairs.txt)")
    ap.add_argument("out", type=Path)
    ap.add_argument("--same-word", type=float, default=0.616)
    ap.add_argument("--word-share", type=float, default=0.616)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if not (0 < args.same_word <= 1 and 0 < args.word_share <= 1):
        ap.error("--same-word and --word-share are shares in (0, 1]")
    rng = random.Random(args.seed)
    gold, discovered = _read(args.gold), _read(args.discovered)
    args.out.mkdir(parents=True, exist_ok=True)
    drawn = rng.sample(gold, min(len(discovered), len(gold)))
    tokens = [(r[0], r[1], r[2], r[3]) for r in gold] + [(r[0], r[4], r[5], r[6]) for r in gold]
    noisy = []
    for r in drawn:
        if rng.random() < args.same_word:
            noisy.append(r)
            continue
        other = rng.choice([t for t in rng.sample(tokens, 50) if t[0] != r[0]])  # a random token of another word
        noisy.append([r[0], r[1], r[2], r[3], other[1], other[2], other[3]])
    fragments = []
    for r in drawn:
        offset = rng.uniform(0, 1 - args.word_share)

        def cut(start: str, end: str) -> tuple[int, int]:
            s, e = int(start), int(end)
            return s + round(offset * (e - s)), s + round((offset + args.word_share) * (e - s))

        fragments.append([r[0], r[1], *cut(r[2], r[3]), r[4], *cut(r[5], r[6])])
    for name, rows in (("gold_all", gold), ("gold_n", drawn), ("gold_noisy", noisy), ("gold_frag", fragments),
                       ("discovered", discovered)):
        _write(args.out / f"{name}.txt", rows)
    print(f"{len(drawn)} pairs each ({len(gold)} in gold_all.txt) in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

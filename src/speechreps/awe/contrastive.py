"""The ContrastiveRNN: an RNN encoder trained with NT-Xent on word-segment pairs.

Jacobs, Matusevych and Kamper, "Acoustic word embeddings for zero-resource languages using
self-supervised contrastive learning and multilingual adaptation", SLT 2021. The encoder is the
CAE-RNN's (:class:`~speechreps.awe.model.RNNEncoder`: GRU stack, linear embedding layer); there is no
decoder. A batch holds B pairs ``(a_i, b_i)`` of segments of one word (or one discovered term);
all 2B segments are embedded and L2-normalised, and each segment must pick out its partner among the
other 2B - 1 by cosine similarity divided by a temperature (softmax cross-entropy, the NT-Xent loss
of SimCLR): the other tokens in the batch are the negatives.

Two details the paper leaves open, settled here:

- a segment that occurs in two pairs of one batch (term pairs share segments) is not its own
  negative: copies of the anchor are masked out of the softmax;
- ``mask_same_label``: other tokens with the pair's label (the same word for ground-truth pairs,
  the same cluster for discovered pairs) are not used as negatives either. On the built-in corpus, with
  its small vocabulary, a batch of 64 tokens holds several tokens of one word, and pushing them apart
  works against the task. The labels are what the pairs already come with, so this uses no extra
  supervision.

Config: :class:`~speechreps.awe.config.ContrastiveRNNConfig`, the ``"awe"`` section with ``"model": "contrastive_rnn"``: the
encoder keys of :class:`~speechreps.awe.config.AWEConfig` plus ``temperature`` and ``mask_same_label``;
the decoder and AE pre-training keys do not apply (``ae_num_epochs`` must stay 0).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch.nn import functional as F

from ..data.archive import parse_word_key
from ..data.datasets import pad
from ..data.pairs import SegmentPairs
from .config import ContrastiveRNNConfig
from .data import SegmentPairDataset
from .model import RNNEncoder

@dataclass
class ContrastiveBatch:
    """B pairs: segments ``x`` / ``y`` (B, T, D) with lengths, and per row integer segment ids and labels."""

    x: torch.Tensor
    x_lengths: torch.Tensor
    y: torch.Tensor
    y_lengths: torch.Tensor
    ids: torch.Tensor  # (2B,): segment ids of x's rows, then y's
    labels: torch.Tensor  # (2B,): label ids, same order

    def to(self, device: torch.device | str) -> "ContrastiveBatch":
        return ContrastiveBatch(*(t.to(device) for t in (self.x, self.x_lengths, self.y, self.y_lengths, self.ids, self.labels)))


class ContrastivePairDataset(SegmentPairDataset):
    """Each undirected pair once (``a`` as ``x``, ``b`` as ``y``), batched with segment ids and labels."""

    def __init__(self, tp: SegmentPairs, max_frames: int = 0):
        super().__init__(tp.segments, list(tp.pairs), max_frames)
        keys = sorted(tp.segments)
        self.segment_id = {k: i for i, k in enumerate(keys)}
        labels = sorted({parse_word_key(k).label for k in keys})
        label_id = {lab: i for i, lab in enumerate(labels)}
        self.label_of = {k: label_id[parse_word_key(k).label] for k in keys}

    def collate(self, refs: Sequence[int]) -> ContrastiveBatch:
        cap = self.max_frames or None
        a_keys = [self.directed[i][0] for i in refs]
        b_keys = [self.directed[i][1] for i in refs]
        x, xl = pad([self.segments[k][:cap] for k in a_keys])
        y, yl = pad([self.segments[k][:cap] for k in b_keys])
        keys = a_keys + b_keys
        ids = torch.tensor([self.segment_id[k] for k in keys], dtype=torch.long)
        labels = torch.tensor([self.label_of[k] for k in keys], dtype=torch.long)
        return ContrastiveBatch(x, xl, y, yl, ids, labels)


def nt_xent(z: torch.Tensor, ids: torch.Tensor, labels: torch.Tensor, temperature: float,
            mask_same_label: bool = True, drop_hardest: float = 0.0) -> tuple[torch.Tensor, float]:
    """NT-Xent of 2B embeddings ``z`` where row i's positive is row (i + B) mod 2B; returns (loss, accuracy).

    The softmax of row i runs over its positive and the rows that are neither i, nor a copy of i's
    segment (``ids``), nor (``mask_same_label``) of i's label. Accuracy: how often the positive has
    the highest similarity among them. ``drop_hardest``: the loss is the mean over the pairs (both
    rows of a pair) whose loss is among the lowest ``1 - drop_hardest`` of the batch; the rest give no
    gradient (at least one pair is kept).
    """
    n = z.shape[0]
    b = n // 2
    z = F.normalize(z.float(), dim=-1)
    sim = z @ z.t() / temperature  # (2B, 2B)
    pos = torch.cat([torch.arange(b, n), torch.arange(0, b)]).to(z.device)
    excluded = ids[:, None] == ids[None, :]
    if mask_same_label:
        excluded = excluded | (labels[:, None] == labels[None, :])
    excluded[torch.arange(n, device=z.device), pos] = False  # the positive always stays
    sim = sim.masked_fill(excluded, float("-inf"))
    accuracy = (sim.argmax(dim=1) == pos).float().mean().item()
    if drop_hardest <= 0:
        return F.cross_entropy(sim, pos), accuracy
    rows = F.cross_entropy(sim, pos, reduction="none")  # (2B,)
    per_pair = rows[:b] + rows[b:]
    keep = max(1, int(round(b * (1 - drop_hardest))))
    kept = per_pair.topk(keep, largest=False).values  # the pairs the model finds easiest
    return kept.sum() / (2 * keep), accuracy


class ContrastiveRNN(RNNEncoder):
    """GRU encoder -> linear embedding, trained with NT-Xent on pairs (see the module docstring)."""

    batch_kind = "contrastive_pair"

    def __init__(self, cfg: ContrastiveRNNConfig):
        super().__init__(cfg)
        self._add_normalization()

    @classmethod
    def training_data(cls, pairs: SegmentPairs, max_frames: int = 0) -> tuple[ContrastivePairDataset, str]:
        """Each pair once; the other segments of its batch are the negatives."""
        return ContrastivePairDataset(pairs, max_frames), f"{len(pairs.pairs)} pairs, the batch's others as negatives"

    def loss(self, batch: ContrastiveBatch) -> tuple[torch.Tensor, dict[str, float]]:
        t = max(batch.x.shape[1], batch.y.shape[1])  # one encoder pass over all 2B segments
        z = self.embed(torch.cat([_pad_to(batch.x, t), _pad_to(batch.y, t)]), torch.cat([batch.x_lengths, batch.y_lengths]))
        loss, accuracy = nt_xent(z, batch.ids, batch.labels, self.cfg.temperature, self.cfg.mask_same_label,
                                 self.cfg.drop_hardest)
        return loss, {"accuracy": accuracy}


def _pad_to(x: torch.Tensor, n: int) -> torch.Tensor:
    """(B, T, D) zero-padded along time to (B, n, D), n >= T."""
    return F.pad(x, (0, 0, 0, n - x.shape[1]))

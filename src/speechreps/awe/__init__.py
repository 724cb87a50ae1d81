"""Acoustic word embeddings (AWEs) on top of any frame-level features.

- downsampling AWEs (no training): :func:`~speechreps.awe.embed.downsample_embeddings`;
- the CAE-RNN (Kamper, ICASSP 2019) with optional AE-RNN pre-training: :class:`~speechreps.awe.model.CAERNN`,
  trained by :func:`~speechreps.awe.train.train_awe` through the generic Trainer;
- embedding files and same-different evaluation with the cosine distance: :mod:`speechreps.awe.embed`;
- the comparison of input features (MFCC vs learned) for AWEs: :func:`~speechreps.awe.compare.compare`.

The command line is ``speechreps awe train|embed|evaluate|compare`` (:mod:`speechreps.commands.awe`).
Heavy modules (torch) are imported by the submodules, not here.
"""

from __future__ import annotations

from .config import AWEConfig, awe_config_from_dict, load_awe_config

__all__ = ["AWEConfig", "awe_config_from_dict", "load_awe_config"]

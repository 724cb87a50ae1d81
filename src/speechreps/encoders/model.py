"""A pretrained wav2vec 2.0-style encoder (HuBERT, wav2vec 2.0, WavLM) loaded offline from a local folder.

The folder is what ``save_pretrained`` writes (the Hugging Face layout): ``config.json`` and
``model.safetensors`` (or sharded ``model-*.safetensors`` with ``model.safetensors.index.json``), and
optionally ``preprocessor_config.json``. Nothing is ever downloaded: ``HF_HUB_OFFLINE`` and
``TRANSFORMERS_OFFLINE`` are set before ``transformers`` is imported, and every load passes
``local_files_only=True``. Weights load from safetensors only: a folder holding only
``pytorch_model.bin`` (a pickle, which can run code when read) is refused, and no code from the folder
is ever run (``trust_remote_code`` stays off).

Layers: ``L0`` is the transformer's input (the projected convolutional features with the convolutional
position embedding added), ``Lk``
the output of transformer block ``k`` (``output_hidden_states``), so a 12-block base model has 13.

Inputs are 16 kHz float waveforms, zero-mean unit-variance normalised per utterance when the
folder's ``preprocessor_config.json`` says ``do_normalize`` (without that file: when the model's
convolutions use layer norm, as the large models were trained). Models whose first convolution uses
group norm over time (``feat_extract_norm: group``: HuBERT / wav2vec 2.0 base) see padding in that
norm, so they encode one waveform at a time; layer-norm models are batched by length with an
attention mask, which gives each item exactly what it gets alone.
"""

from __future__ import annotations

import json
import os
import re
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np

from ..errors import UserError
from .frames import FrameGeometry

#: config ``model_type`` -> transformers model class
FAMILIES = {"hubert": "HubertModel", "wav2vec2": "Wav2Vec2Model", "wavlm": "WavLMModel"}
SAMPLE_RATE = 16000


def _offline_transformers():
    """Import ``transformers`` with every download switched off and its progress output silenced."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    try:
        import transformers
    except ImportError:
        raise UserError("pretrained encoders need the transformers package: pip install 'speechreps[encoders]'") from None
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    return transformers


def read_model_folder(path: str | os.PathLike) -> dict:
    """Check a model folder's layout and return its ``config.json`` (one-line errors naming the file)."""
    path = Path(path)
    if not path.is_dir():
        raise UserError(f"encoder folder {path} does not exist")
    cfg_path = path / "config.json"
    if not cfg_path.is_file():
        raise UserError(f"encoder folder {path} has no config.json (expected the Hugging Face layout)")
    try:
        cfg = json.loads(cfg_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"{cfg_path} is not valid JSON: {exc}") from None
    if not isinstance(cfg, dict):
        raise UserError(f"{cfg_path} must hold a JSON object")
    family = cfg.get("model_type")
    if family not in FAMILIES:
        raise UserError(f"{cfg_path}: model_type {family!r} is not supported (choose from {', '.join(FAMILIES)})")
    if not (path / "model.safetensors").is_file() and not (path / "model.safetensors.index.json").is_file():
        if (path / "pytorch_model.bin").is_file():
            raise UserError(f"encoder folder {path} holds only pytorch_model.bin, a pickle that can run code when "
                            f"loaded: convert it to model.safetensors first")
        raise UserError(f"encoder folder {path} has no model.safetensors")
    return cfg


def encoder_name(path: str | os.PathLike) -> str:
    """A name for tables and file names: the folder's name with ``_`` and odd characters as ``-``."""
    name = re.sub(r"[^A-Za-z0-9.-]+", "-", Path(path).resolve().name).strip("-.")
    return name or "encoder"


class PretrainedEncoder:
    """A HuBERT / wav2vec 2.0 / WavLM model in eval mode with what the pipeline needs to know about it."""

    def __init__(self, path: str | os.PathLike, device: str | None = None):
        import torch

        self.path = Path(path)
        cfg = read_model_folder(self.path)
        transformers = _offline_transformers()
        cls = getattr(transformers, FAMILIES[cfg["model_type"]])
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model, info = cls.from_pretrained(str(self.path), local_files_only=True, use_safetensors=True,
                                                  trust_remote_code=False, output_loading_info=True)
        except Exception as exc:  # malformed config values, truncated or foreign safetensors files
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UserError(f"encoder folder {self.path}: cannot load the model: {first}") from None
        missing = sorted(k for k in info.get("missing_keys", ()) if "masked_spec_embed" not in k)
        if missing or info.get("mismatched_keys"):
            what = missing[0] if missing else sorted(info["mismatched_keys"])[0]
            raise UserError(f"encoder folder {self.path}: the weights do not fit config.json "
                            f"({len(missing)} missing, e.g. {what!r})")
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model = model.to(self.device).eval()
        self.family = cfg["model_type"]
        self.name = encoder_name(self.path)
        self.config = model.config
        self.n_layers = int(self.config.num_hidden_layers) + 1
        self.dim = int(self.config.hidden_size)
        self.geometry = FrameGeometry.from_conv(list(self.config.conv_kernel), list(self.config.conv_stride))
        self.batched = self.config.feat_extract_norm == "layer"
        self.normalize = self._do_normalize()
        self.n_parameters = sum(p.numel() for p in model.parameters())

    def _do_normalize(self) -> bool:
        pre = self.path / "preprocessor_config.json"
        if pre.is_file():
            try:
                value = json.loads(pre.read_text()).get("do_normalize")
            except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError) as exc:
                raise UserError(f"{pre} is not a JSON object: {exc}") from None
            if value is not None:
                return bool(value)
        return self.batched

    @property
    def layer_names(self) -> list[str]:
        return [f"L{k}" for k in range(self.n_layers)]

    def describe(self) -> str:
        return (f"{self.family} {self.name}: {self.n_layers - 1} blocks, {self.dim}-d, "
                f"{self.n_parameters / 1e6:.1f} M parameters, {self.geometry.stride / 16:g} ms frames")

    def _prepare(self, wave: np.ndarray) -> np.ndarray:
        wave = np.asarray(wave, dtype=np.float32)
        if len(wave) < self.geometry.receptive_field:  # shorter than one frame: zero-pad to one
            wave = np.pad(wave, (0, self.geometry.receptive_field - len(wave)))
        if self.normalize:
            wave = (wave - wave.mean()) / np.sqrt(wave.var() + 1e-7)
        return wave

    def batches(self, lengths: Sequence[int], max_batch_samples: int = 80 * SAMPLE_RATE,
                max_batch_size: int = 16) -> list[list[int]]:
        """Indices grouped by length (sorted; padded samples per batch bounded); singletons for group-norm models."""
        order = [int(i) for i in np.argsort(lengths, kind="stable")]
        if not self.batched:
            return [[i] for i in order]
        out, cur = [], []
        for i in order:
            if cur and (len(cur) >= max_batch_size or lengths[i] * (len(cur) + 1) > max_batch_samples):
                out.append(cur)
                cur = []
            cur.append(i)
        return out + ([cur] if cur else [])

    def encode(self, waves: Sequence[np.ndarray], layers: Sequence[int] | None = None) -> list[np.ndarray]:
        """Hidden states of one batch of waveforms: per wave ``(len(layers), T_i, dim)`` float32."""
        import torch

        layers = list(range(self.n_layers)) if layers is None else list(layers)
        prepared = [self._prepare(w) for w in waves]
        lengths = [len(w) for w in prepared]
        x = np.zeros((len(prepared), max(lengths)), dtype=np.float32)  # (B, samples)
        mask = np.zeros_like(x, dtype=np.int64)
        for b, w in enumerate(prepared):
            x[b, : len(w)] = w
            mask[b, : len(w)] = 1
        with torch.inference_mode(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            kwargs = {"attention_mask": torch.from_numpy(mask).to(self.device)} if len(prepared) > 1 else {}
            out = self.model(torch.from_numpy(x).to(self.device), output_hidden_states=True, **kwargs)
            hidden = torch.stack([out.hidden_states[k] for k in layers], dim=1)  # (B, layers, T, dim)
            hidden = hidden.float().cpu().numpy()
        return [np.ascontiguousarray(hidden[b, :, : self.geometry.n_frames(n)]) for b, n in enumerate(lengths)]

    def encode_all(self, lengths: Sequence[int], load: Callable[[int], np.ndarray],
                   layers: Sequence[int] | None = None) -> Iterator[tuple[int, np.ndarray]]:
        """``(index, (len(layers), T, dim))`` for every waveform ``load(index)`` (``lengths``: its samples),
        batch by batch, shortest first; only one batch of audio is in memory at a time."""
        for batch in self.batches(lengths):
            for i, h in zip(batch, self.encode([load(i) for i in batch], layers)):
                yield i, h


def load_encoder(path: str | os.PathLike, device: str | None = None) -> PretrainedEncoder:
    """Load the model of a local folder (see the module docstring); one-line :class:`UserError` on a bad folder."""
    return PretrainedEncoder(path, device)

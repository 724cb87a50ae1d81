"""Extraction: keys, shapes, in-context versus isolated encoding, output files."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from speechreps.config import config_from_dict
from speechreps.data.archive import load_archive, parse_word_key
from speechreps.data.registry import load_dataset
from speechreps.extract import encode_segments, extract_split, output_path, resolve_layers, word_features
from speechreps.models import build_model

from test_datasets import TINY_CONFIG, make_toy_dataset


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    return load_dataset(make_toy_dataset(tmp_path_factory.mktemp("toy")), "toy")


def _model(rep):
    torch.manual_seed(0)
    return build_model(rep, config_from_dict(TINY_CONFIG[rep], rep)).eval()


def test_keys_and_shapes(toy, tmp_path):
    model = _model("apc")
    paths, counts = extract_split(model, "apc", toy, "validation", tmp_path, resolve_layers(model, "all"))
    words = load_archive(toy.word_tokens("validation"))
    assert counts == {"in_context": len(words), "isolated": 0}
    assert [p.name for p in paths] == [f"toy_validation_apc_{layer}.npz" for layer in model.layers]
    assert paths[-1] == output_path(tmp_path, "toy", "validation", "apc", model.layers[-1])
    for p in paths:
        out = load_archive(p)
        assert list(out) == list(words)
        for k, v in out.items():
            assert v.shape == (parse_word_key(k).n_frames, TINY_CONFIG["apc"]["hidden_dim"])
            assert v.dtype == np.float32
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_in_context_versus_isolated(toy):
    words = load_archive(toy.word_tokens("test"))
    utts = load_archive(toy.utterances("test"))
    apc = _model("apc")
    ctx, counts = word_features(apc, words, utts, ["gru2"])
    iso, counts_iso = word_features(apc, words, utts, ["gru2"], isolated=True)
    assert counts["in_context"] == len(words) and counts_iso["isolated"] == len(words)
    # in context = encode the whole utterance, then cut the word's frames
    key = next(k for k in words if parse_word_key(k).start > 0)
    k = parse_word_key(key)
    utt_key = next(u for u in utts if u.startswith(k.utt + "_"))
    whole = encode_segments(apc, [utts[utt_key]], ["gru2"])["gru2"][0]
    assert np.allclose(ctx["gru2"][key], whole[k.start : k.end], atol=1e-5)
    # a recurrent model sees the left context: the two differ; isolated = the segment alone
    assert not np.allclose(ctx["gru2"][key], iso["gru2"][key], atol=1e-4)
    alone = encode_segments(apc, [words[key]], ["gru2"])["gru2"][0]
    assert np.allclose(iso["gru2"][key], alone, atol=1e-5)
    # a per-frame model gives the same either way
    ae = _model("frame_ae")
    a, _ = word_features(ae, words, utts, ["bottleneck"])
    b, _ = word_features(ae, words, None, ["bottleneck"])
    assert all(np.allclose(a["bottleneck"][k], b["bottleneck"][k], atol=1e-5) for k in words)


def test_batched_encoding_equals_one_by_one(toy):
    utts = list(load_archive(toy.utterances("train")).values())[:7]
    model = _model("cpc")
    batched = encode_segments(model, utts, ["z", "c"], max_batch_size=3)
    for i, u in enumerate(utts):
        single = encode_segments(model, [u], ["z", "c"])
        for layer in ("z", "c"):
            assert batched[layer][i].shape == (len(u), model.cfg.c_dim if layer == "c" else model.cfg.z_dim)
            assert np.allclose(batched[layer][i], single[layer][0], atol=1e-5)


def test_missing_utterance_falls_back_to_isolated(toy):
    words = load_archive(toy.word_tokens("test"))
    utts = load_archive(toy.utterances("test"))
    first_utt = next(iter(utts))
    del utts[first_utt]
    _, counts = word_features(_model("apc"), words, utts)
    n_missing = sum(1 for k in words if first_utt.startswith(parse_word_key(k).utt + "_"))
    assert counts == {"in_context": len(words) - n_missing, "isolated": n_missing} and n_missing > 0


def test_unknown_layer_is_a_user_error():
    from speechreps.errors import UserError

    with pytest.raises(UserError, match="layers are"):
        resolve_layers(_model("apc"), "gru9")

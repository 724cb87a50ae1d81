"""The five models: masks, CPC negatives, encode() batch-vs-single, learning, and the original's bugs fixed."""

from __future__ import annotations

import math

import pytest
import torch

from speechreps.config import config_from_dict
from speechreps.errors import UserError
from speechreps.model_types import MODEL_TYPES
from speechreps.models import build_model
from speechreps.models.base import FramePairBatch, PairBatch, UtteranceBatch
from speechreps.models.cpc import UniformDropout, sample_negatives

D = 6
BASE = {"learning_rate": 0.01, "num_epochs": 1, "batch_size": 8, "input_dim": D}
TINY = {
    "apc": dict(BASE, hidden_dim=16, num_layers=3, num_pred_steps=2),
    "apc_aux": dict(BASE, hidden_dim=16, num_layers=2, num_pred_steps=2, include_aux_loss=True,
                    num_pred_steps_aux=3, num_aux_anchors=3, num_aux_steps_back=4, aux_seq_len=6, aux_loss_weight=0.5),
    "apc_residual": dict(BASE, hidden_dim=16, num_layers=3, num_pred_steps=2, residual=True),
    "capc": dict(BASE, hidden_dim=16, num_layers=2, num_pred_steps=1),
    "cpc": dict(BASE, enc_dim=32, enc_layers=2, z_dim=8, c_dim=16, num_pred_steps=2, num_negatives=4, seq_len=24,
                dropout=0.2),
    "frame_ae": dict(BASE, hidden_dim=16, num_layers=2, bottleneck_dim=4, batch_size=32),
    "frame_cae": dict(BASE, hidden_dim=16, num_layers=2, bottleneck_dim=4, batch_size=32),
}


def make(name: str):
    rep_type = "apc" if name.startswith("apc") else name
    torch.manual_seed(0)
    return build_model(rep_type, config_from_dict(TINY[name], rep_type))


def sines(n: int, T: int, seed: int = 0) -> torch.Tensor:
    """(n, T, D) smooth, predictable sequences: sums of sines with random frequencies and phases."""
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(T, dtype=torch.float32)[None, :, None]
    freq = 0.05 + 0.3 * torch.rand(n, 1, D, generator=g)
    phase = 2 * math.pi * torch.rand(n, 1, D, generator=g)
    return torch.sin(freq * t + phase)


def utt_batch(n=6, T=30, lengths=None, seed=0) -> UtteranceBatch:
    x = sines(n, T, seed)
    lengths = torch.tensor(lengths if lengths is not None else [T - 3 * i for i in range(n)])
    x[torch.arange(T)[None, :] >= lengths[:, None]] = 0
    return UtteranceBatch(x, lengths, torch.arange(n) // 2)


def pad(batch, extra: int):
    """The same batch with ``extra`` frames of garbage padding appended."""
    if isinstance(batch, UtteranceBatch):
        junk = torch.full((batch.feats.shape[0], extra, D), 7.0)
        return UtteranceBatch(torch.cat([batch.feats, junk], 1), batch.lengths, batch.speakers)
    junk = torch.full((batch.x.shape[0], extra, D), 7.0)
    return PairBatch(torch.cat([batch.x, junk], 1), torch.cat([batch.y, -junk], 1), batch.lengths)


def batch_for(name: str, seed: int = 0):
    if name in ("apc", "apc_aux", "apc_residual", "cpc"):
        return utt_batch(seed=seed)
    if name == "capc":
        b = utt_batch(seed=seed)
        return PairBatch(b.feats, torch.roll(b.feats, 1, dims=2) * 0.5, b.lengths)
    g = torch.Generator().manual_seed(seed)
    mix = torch.randn(3, D, generator=torch.Generator().manual_seed(99))
    x = torch.randn(32, 3, generator=g) @ mix  # frames on a 3-d subspace: a 4-d bottleneck can code them
    return FramePairBatch(x, x if name == "frame_ae" else x.flip(1) * 2 - 1)


def test_registry_and_interface():
    assert list(MODEL_TYPES) == ["apc", "cpc", "capc", "frame_ae", "frame_cae"]
    for name, entry in MODEL_TYPES.items():
        m = make(name)
        assert isinstance(m, entry.model_class()) and isinstance(m.cfg, entry.config) and m.default_layer in m.layers
    assert make("apc").layers == ("gru1", "gru2", "gru3") and make("apc").default_layer == "gru3"
    assert make("cpc").default_layer == "c" and make("frame_ae").default_layer == "bottleneck"
    with pytest.raises(UserError):
        build_model("vae", None)


@pytest.mark.parametrize("name", ["apc", "apc_aux", "apc_residual", "capc", "cpc"])
def test_padding_changes_no_loss(name):
    model = make(name)
    batch = batch_for(name)
    losses = []
    for b in (batch, pad(batch, 9)):
        torch.manual_seed(123)
        loss, metrics = model.loss(b)
        losses.append(loss.item())
    assert losses[0] == pytest.approx(losses[1], rel=1e-5, abs=1e-6)


def test_apc_targets_beyond_the_end_excluded():
    """Changing a frame past an utterance's end (inside the padded tensor) changes nothing."""
    model = make("apc")
    b = utt_batch(lengths=[30, 20, 10, 30, 25, 5])
    l1 = model.loss(b)[0].item()
    b.feats[1, 20:] = 100.0
    b.feats[5, 5:] = -100.0
    assert model.loss(b)[0].item() == pytest.approx(l1, rel=1e-6)


@pytest.mark.parametrize("name", ["apc", "apc_residual", "capc", "cpc", "frame_ae", "frame_cae"])
def test_encode_batch_equals_single(name):
    model = make(name).eval()
    b = utt_batch(n=4, T=25, lengths=[25, 17, 9, 3])
    with torch.no_grad():
        together = model.encode(b.feats, b.lengths)
        assert set(together) == set(model.layers)
        for i, n in enumerate(b.lengths.tolist()):
            alone = model.encode(b.feats[i : i + 1, :n], b.lengths[i : i + 1])
            for layer, out in together.items():
                torch.testing.assert_close(out[i, :n], alone[layer][0], atol=1e-5, rtol=1e-5)
                assert out[i, n:].abs().max().item() == 0 if n < out.shape[1] else True


def test_cpc_encode_has_no_dropout():
    model = make("cpc").eval()
    b = utt_batch()
    with torch.no_grad():
        a = model.encode(b.feats, b.lengths)["c"]
        c = model.encode(b.feats, b.lengths)["c"]
    assert torch.equal(a, c)


@pytest.mark.parametrize("p", [0.1, 0.5])
def test_cpc_dropout_zeroes_a_share_p_and_scales_the_rest(p):
    """CPC's dropout (a uniform draw, not bernoulli_) does what nn.Dropout does: each value zeroed with
    probability p, independently, the rest scaled by 1 / (1 - p); the identity in eval."""
    torch.manual_seed(0)
    drop = UniformDropout(p).train()
    x = torch.rand(400, 500) + 0.5
    y = drop(x)
    kept = y != 0
    n = kept.numel()
    assert abs(kept.float().mean().item() - (1 - p)) < 4 * math.sqrt(p * (1 - p) / n)
    assert torch.allclose(y[kept], x[kept] / (1 - p))
    assert abs(kept[:, 0].float().mean().item() - kept[:, 1].float().mean().item()) < 0.2  # no fixed pattern
    assert not torch.equal(drop(x) != 0, kept)  # a new mask each call
    assert drop.eval()(x) is x


@pytest.mark.parametrize("name", ["apc", "apc_aux", "apc_residual", "capc", "cpc", "frame_ae", "frame_cae"])
def test_loss_falls(name):
    model = make(name).train()
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    first = last = None
    for step in range(40):
        torch.manual_seed(step)
        loss, _ = model.loss(batch_for(name, seed=step % 4))
        opt.zero_grad()
        loss.backward()
        opt.step()
        first = loss.item() if first is None else first
        last = loss.item()
    assert last < 0.7 * first, (first, last)


def test_separate_gru_layers():
    model = make("apc")
    grus = list(model.encoder.layers)
    assert len(grus) == 3 and len({id(g) for g in grus}) == 3
    w2, w3 = grus[1].weight_hh_l0, grus[2].weight_hh_l0
    assert w2.data_ptr() != w3.data_ptr() and not torch.equal(w2, w3)
    n_params = sum(p.numel() for p in model.parameters())
    assert n_params == sum(p.numel() for g in grus for p in g.parameters()) + sum(p.numel() for p in model.predictor.parameters())


def test_apc_residual_layers_add_their_input():
    """With ``residual`` layer 1 is the plain GRU and layer k > 1 is GRU_k(h_{k-1}) + h_{k-1}, computed
    here with torch's own nn.GRU holding the same weights; the same weights without ``residual`` give
    the plain stack. No parameter is added."""
    plain, res = make("apc"), make("apc_residual")
    res.load_state_dict(plain.state_dict())
    b = utt_batch(n=3, T=20, lengths=[20, 20, 20])
    expected, x = [], b.feats
    with torch.no_grad():
        for k, layer in enumerate(plain.encoder.layers):
            gru = torch.nn.GRU(layer.input_size, 16, batch_first=True)
            gru.load_state_dict(layer.state_dict())
            h, _ = gru(x)
            x = h + x if k > 0 else h
            expected.append(x)
        got = res.encode(b.feats, b.lengths)
        unchanged = plain.encode(b.feats, b.lengths)
    for name, want in zip(res.layers, expected):
        torch.testing.assert_close(got[name], want, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(got["gru1"], unchanged["gru1"])
    assert not torch.allclose(got["gru3"], unchanged["gru3"])


def test_ae_decoder_outputs_negative_values():
    model = make("frame_ae")
    x = torch.randn(256, D)
    assert isinstance(model.decoder[-1], torch.nn.Linear)
    with torch.no_grad():
        model.decoder[-1].bias.fill_(-10.0)  # nothing after the output layer clamps it
    assert (model(x) < 0).all()
    assert (model.encode(x[None], torch.tensor([256]))["bottleneck"] < 0).any()  # linear bottleneck too


def test_frame_cae_init_from_ae():
    ae, cae = make("frame_ae"), make("frame_cae")
    with torch.no_grad():
        for p in ae.parameters():
            p.add_(1.0)
    cae.init_from({"model": ae.state_dict(), "epoch": 3})
    x = torch.randn(5, D)
    torch.testing.assert_close(cae(x), ae(x))
    cfg = config_from_dict(dict(TINY["frame_cae"], hidden_dim=8), "frame_cae")
    with pytest.raises(UserError, match="shape"):
        build_model("frame_cae", cfg).init_from(ae.state_dict())


def check_negatives(valid, speakers, N):
    torch.manual_seed(0)
    neg = sample_negatives(valid, speakers, N)
    B, T = valid.shape
    flat = torch.arange(B * T).reshape(B, T)
    return neg, flat


def test_cpc_negatives_same_speaker_never_positive():
    # 3 speakers x 2 utterances, ragged lengths
    lengths = torch.tensor([10, 7, 9, 10, 4, 6])
    valid = torch.arange(10)[None, :] < lengths[:, None]
    speakers = torch.tensor([0, 0, 1, 1, 2, 2])
    neg, flat = check_negatives(valid, speakers, 5)
    for b in range(6):
        for t in range(int(lengths[b])):
            idx = neg[b, t]
            assert (idx != flat[b, t]).all()  # never the positive itself
            nb, nt = idx // 10, idx % 10
            assert (speakers[nb] == speakers[b]).all()  # same speaker
            assert (nt < lengths[nb]).all()  # real frames only


def test_cpc_negatives_any_layout_and_fallback():
    # speaker 0 has one short utterance (3 frames <= 4 negatives): falls back to the whole batch
    lengths = torch.tensor([3, 8, 8, 8, 8])
    valid = torch.arange(8)[None, :] < lengths[:, None]
    speakers = torch.tensor([5, 9, 9, 2, 2])
    neg, flat = check_negatives(valid, speakers, 4)
    fallback = neg[0, :3]
    assert (fallback != flat[0, :3, None]).all()
    assert (valid.reshape(-1)[fallback]).all()
    # with many draws the fallback reaches other speakers' frames
    torch.manual_seed(1)
    many = sample_negatives(valid, speakers, 200)[0, :3]
    assert ((many // 8) != 0).any()
    for b in range(1, 5):
        assert (speakers[neg[b, : lengths[b]] // 8] == speakers[b]).all()
    # one utterance per speaker (n_utterances_per_speaker = 1): negatives from the same utterance
    neg, flat = check_negatives(valid[1:], torch.arange(4), 4)
    assert ((neg // 8) == torch.arange(4)[:, None, None]).all()
    assert (neg != flat[:, :, None]).all()


def test_cpc_accuracy_metric_and_any_batch_layout():
    model = make("cpc")
    for n_spk, n_utt in [(1, 6), (6, 1), (2, 3), (3, 2)]:
        b = utt_batch()
        b.speakers = torch.arange(n_spk).repeat_interleave(n_utt)
        loss, metrics = model.loss(b)
        assert torch.isfinite(loss) and 0 <= metrics["accuracy"] <= 1


@pytest.mark.parametrize("source", ["speaker", "utterance"])
def test_cpc_negatives_from_speaker_or_own_utterance(monkeypatch, source):
    from speechreps.models import cpc as cpc_module

    seen = {}

    def spy(valid, groups, n):
        neg = sample_negatives(valid, groups, n)
        seen["groups"], seen["neg"], seen["T"] = groups.clone(), neg, valid.shape[1]
        return neg

    monkeypatch.setattr(cpc_module, "sample_negatives", spy)
    cfg = config_from_dict(dict(TINY["cpc"], negatives_from=source), "cpc")
    model = build_model("cpc", cfg)
    lengths = torch.tensor([30, 25, 28, 30])
    batch = UtteranceBatch(torch.randn(4, 30, D), lengths, torch.tensor([0, 0, 1, 1]))
    model.loss(batch)
    utt_of_neg = seen["neg"] // seen["T"]  # (B, T, N) utterance of each negative
    for b in range(4):
        negs = utt_of_neg[b, : lengths[b]]
        if source == "utterance":
            assert (negs == b).all()
        else:
            assert (batch.speakers[negs] == batch.speakers[b]).all()
            assert (negs != b).any()  # the other utterance of the speaker is drawn too


def test_cpc_negatives_from_is_validated():
    with pytest.raises(UserError, match="negatives_from"):
        config_from_dict(dict(TINY["cpc"], negatives_from="batch"), "cpc")


@pytest.mark.parametrize("steps", [1, 3, 7])
def test_cpc_loss_equals_a_loop_over_frames_and_steps(monkeypatch, steps):
    """The vectorised InfoNCE loss equals the textbook one, written as plain loops: for every real target
    frame u and step k with a prediction frame u - k - 1 >= 0, cross-entropy of the prediction's scores
    against z_u (first) and the frame's negatives; mean over each step's pairs, then over the steps."""
    from speechreps.models import cpc as cpc_module

    drawn = {}

    def keep(valid, groups, n):
        drawn["neg"] = sample_negatives(valid, groups, n)
        return drawn["neg"]

    monkeypatch.setattr(cpc_module, "sample_negatives", keep)
    torch.manual_seed(0)
    model = build_model("cpc", config_from_dict(dict(TINY["cpc"], num_pred_steps=steps, dropout=0.0), "cpc"))
    lengths = torch.tensor([20, 13, 6, 20])
    batch = UtteranceBatch(torch.randn(4, 20, D), lengths, torch.tensor([0, 0, 1, 1]))
    loss, _ = model.loss(batch)
    with torch.no_grad():
        z = model.encoder(batch.feats)
        c, _ = model.context(z)
        Z = z.shape[-1]
        preds = model.predictors(c).reshape(4, 20, steps, Z)
        per_step = []
        for k in range(steps):
            terms = []
            for b in range(4):
                for u in range(k + 1, int(lengths[b])):
                    guess = preds[b, u - k - 1, k]
                    cands = torch.cat([z[b, u][None], z.reshape(-1, Z)[drawn["neg"][b, u]]])
                    scores = cands @ guess / math.sqrt(Z)
                    terms.append(torch.logsumexp(scores, 0) - scores[0])
            if terms:
                per_step.append(torch.stack(terms).mean())
        expected = torch.stack(per_step).mean()
    assert torch.allclose(loss.detach(), expected, rtol=1e-5, atol=1e-6)

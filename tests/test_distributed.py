"""DDP (2 gloo processes on CPU) against one process: identical ranks, same result for the same global batch.

Tolerance: the DDP gradient is the mean of the two ranks' batch means, the single process takes the mean
over the union; they differ only in float32 summation order, so parameters after 2 epochs (24 Adam steps)
agree to ``atol=2e-5`` (observed differences are ~1e-7).
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from speechreps.config import config_from_dict
from speechreps.data.datasets import FrameDataset, TrainingSet, make_training_set
from speechreps.data.samplers import FrameBatchSampler
from speechreps.models import build_model
from speechreps.train.distributed import ShardedBatchSampler
from speechreps.train.trainer import Trainer, seed_everything
from speechreps.model_types import MODEL_TYPES

from test_datasets import TINY_CONFIG, make_toy_dataset

N_FRAMES, GLOBAL_BATCH, WORLD = 768, 64, 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _frames() -> np.ndarray:
    return np.random.default_rng(3).standard_normal((N_FRAMES, 13)).astype(np.float32)


def _frame_ae(batch_size: int, ckpt_dir: Path, epochs: int = 2, load_from: int | None = None):
    cfg = config_from_dict({**TINY_CONFIG["frame_ae"], "batch_size": batch_size, "num_epochs": epochs}, "frame_ae")
    seed_everything(cfg.seed)
    model = build_model("frame_ae", cfg)
    data = FrameDataset(_frames())
    ts = TrainingSet(data, FrameBatchSampler(len(data), batch_size, seed=cfg.seed), "frames")
    res = Trainer(model, ts, cfg, ckpt_dir, "frame_ae", device="cpu", progress=False, log=lambda s: None,
                  tensorboard=False).fit(load_from)
    return model, res


def _worker(rank: int, world: int, port: int, root: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    root_p = Path(root)
    try:
        model, res = _frame_ae(GLOBAL_BATCH // world, root_p / "ddp")
        torch.save({"params": model.state_dict(), "history": res.history}, root_p / f"frame_ae_rank{rank}.pt")
        # resume under DDP: 1 epoch, then on to 2 from epoch_1.pt, equals the straight run
        _frame_ae(GLOBAL_BATCH // world, root_p / "ddp_resume", epochs=1)
        resumed, _ = _frame_ae(GLOBAL_BATCH // world, root_p / "ddp_resume", epochs=2, load_from=1)
        torch.save(resumed.state_dict(), root_p / f"resumed_rank{rank}.pt")
        # CPC: speaker-grouped batches, each rank gets whole batches
        from speechreps.data.registry import load_dataset

        ds = load_dataset(root_p / "data_paths.json", "toy")
        cfg = config_from_dict({**TINY_CONFIG["cpc"], "num_epochs": 2}, "cpc")
        seed_everything(cfg.seed)
        cpc = build_model("cpc", cfg)
        ts = make_training_set(MODEL_TYPES["cpc"].batch_kind, cfg, ds)
        Trainer(cpc, ts, cfg, root_p / "cpc", "cpc", device="cpu", progress=False, log=lambda s: None,
                tensorboard=False).fit()
        torch.save(cpc.state_dict(), root_p / f"cpc_rank{rank}.pt")
        # both ranks done before either tears gloo down: one CI run saw a rank abort at teardown
        # ("terminate called without an active exception"); only on success, so a failed rank never hangs the other
        import torch.distributed as dist

        if dist.is_initialized():
            dist.barrier()
    finally:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("ddp")
    make_toy_dataset(root)
    mp.spawn(_worker, args=(WORLD, _free_port(), str(root)), nprocs=WORLD, join=True)
    return root


def test_sharded_sampler_gives_each_rank_whole_batches():
    inner = [FrameBatchSampler(100, 10, seed=5) for _ in range(3)]
    shards = [ShardedBatchSampler(s, r, 3) for r, s in enumerate(inner)]
    full = list(FrameBatchSampler(100, 10, seed=5))
    got = [list(s) for s in shards]
    assert all(len(g) == len(s) == 3 for g, s in zip(got, shards))  # 10 batches // 3 ranks; 1 left out
    for r in range(3):
        assert all(np.array_equal(a, b) for a, b in zip(got[r], full[r:9:3]))
    assert all(s.state_dict()["rng"] == shards[0].state_dict()["rng"] for s in shards)


def test_ddp_ranks_identical_and_equal_single_process(ddp_run, tmp_path):
    ranks = [torch.load(ddp_run / f"frame_ae_rank{r}.pt", weights_only=False) for r in range(WORLD)]
    for k, v in ranks[0]["params"].items():
        assert torch.equal(v, ranks[1]["params"][k]), k
    torch.set_num_threads(1)
    single, res = _frame_ae(GLOBAL_BATCH, tmp_path / "single")
    for k, v in single.state_dict().items():
        torch.testing.assert_close(ranks[0]["params"][k], v, rtol=0, atol=2e-5, msg=k)
    # the logged loss curve (rank 0's metrics: mean over both ranks' batches) matches too
    assert [r["loss"] for r in ranks[0]["history"]] == pytest.approx([r["loss"] for r in res.history], abs=1e-5)
    # rank 0 alone wrote the checkpoint and metrics, and the checkpoint is the DDP model
    ck = torch.load(ddp_run / "ddp" / "epoch_2.pt", weights_only=False)
    assert len(ck["rng_per_rank"]) == WORLD and ck["world_size"] == WORLD
    for k, v in ck["model"].items():
        assert torch.equal(v, ranks[0]["params"][k]), k
    assert len((ddp_run / "ddp" / "metrics.jsonl").read_text().splitlines()) == 2


def test_ddp_resume_is_exact(ddp_run):
    straight = torch.load(ddp_run / "frame_ae_rank0.pt", weights_only=False)["params"]
    for r in range(WORLD):
        resumed = torch.load(ddp_run / f"resumed_rank{r}.pt", weights_only=False)
        for k, v in straight.items():
            assert torch.equal(v, resumed[k]), (r, k)


def test_ddp_cpc_speaker_batches_ranks_identical(ddp_run):
    a, b = (torch.load(ddp_run / f"cpc_rank{r}.pt", weights_only=False) for r in range(WORLD))
    for k in a:
        assert torch.equal(a[k], b[k]), k

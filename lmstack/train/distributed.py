"""Data-parallel training under torchrun: DDP (gloo on CPU, NCCL on GPU) or FSDP, rank 0 speaks.

Follows PyTorch's own engine (torch.distributed, DistributedDataParallel, FSDP2 `fully_shard`)
as torchrun launches it: RANK / WORLD_SIZE / LOCAL_RANK come from the environment.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import torch
import torch.distributed as dist
from torch import nn


@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def pick_device(device: str, local_rank: int = 0) -> torch.device:
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda":
        return torch.device("cuda", local_rank)
    return torch.device(device)


def init_distributed(device: str = "auto") -> DistInfo:
    """Join the process group torchrun set up, or return a single-process DistInfo."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    dev = pick_device(device, local)
    if world > 1 and not dist.is_initialized():
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    return DistInfo(rank, world, local, dev)


def wrap_model(model: nn.Module, info: DistInfo, mode: str = "ddp") -> nn.Module:
    """DDP replicates the model and averages gradients; FSDP shards parameters per block."""
    if not info.enabled:
        return model
    if mode == "ddp":
        ids = [info.device.index] if info.device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(model, device_ids=ids)
    if mode == "fsdp":
        from torch.distributed.fsdp import fully_shard

        # Shard each block separately so only one block's full weights exist at a time.
        for m in model.modules():
            if type(m).__name__.endswith(("DecoderLayer", "Block", "BertLayer")):
                fully_shard(m)
        fully_shard(model)
        return model
    raise ValueError(f"unknown distributed mode {mode!r}; use ddp or fsdp")


def all_reduce_sum(x: torch.Tensor, info: DistInfo) -> torch.Tensor:
    if info.enabled:
        dist.all_reduce(x, op=dist.ReduceOp.SUM)
    return x


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def shutdown(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()

"""torchrun / DistributedDataParallel plumbing: process group, device, per-rank seeds.

Launch multi-process training with torchrun, which sets RANK, WORLD_SIZE, LOCAL_RANK,
MASTER_ADDR and MASTER_PORT; `init_distributed` reads them and creates the process group
(NCCL on CUDA, gloo on the CPU). Without them (a plain `python` run) it is one process.
Multi-node: `torchrun --nnodes N --node-rank r --rdzv-endpoint host:port ...`.
"""
from __future__ import annotations

from dataclasses import dataclass
import logging
import os

import numpy as np
import torch
import torch.distributed as dist

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistributedContext:
    """This process's place in the job: rank, world_size, local_rank and its device."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        """Rank 0: the only process that logs, writes TensorBoard and saves files."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """'auto' | 'cpu' | 'cuda' -> torch.device (CUDA index = local rank)."""
    if name == 'cpu':
        return torch.device('cpu')
    if name == 'cuda' or (name == 'auto' and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise RuntimeError("device 'cuda' requested but CUDA is not available; use "
                               "--set loop.device=cpu (or auto)")
        return torch.device('cuda', local_rank)
    if name == 'auto':
        logger.info('CUDA not available: training on the CPU')
    return torch.device('cpu')


def init_distributed(device_name: str = 'auto') -> DistributedContext:
    """Join the process group described by torchrun's environment (or run alone)."""
    world_size = int(os.environ.get('WORLD_SIZE', '1'))
    rank = int(os.environ.get('RANK', '0'))
    local_rank = int(os.environ.get('LOCAL_RANK', '0'))
    device = resolve_device(device_name, local_rank)
    if world_size > 1 and not dist.is_initialized():
        backend = 'nccl' if device.type == 'cuda' else 'gloo'
        if device.type == 'cuda':
            torch.cuda.set_device(device)
        dist.init_process_group(backend=backend, rank=rank, world_size=world_size)
        logger.info('process group: rank %d of %d (%s, %s)', rank, world_size, backend, device)
    if dist.is_initialized():
        rank, world_size = dist.get_rank(), dist.get_world_size()
    return DistributedContext(rank, world_size, local_rank, device)


def barrier(context: DistributedContext) -> None:
    if context.distributed and dist.is_initialized():
        dist.barrier()


def step_seed(seed: int, rank: int, step: int) -> int:
    """A 63-bit seed for (run seed, rank, optimiser step): resumable per-step randomness."""
    return int(np.random.SeedSequence([seed, rank, step]).generate_state(2, np.uint64)[0]
               >> np.uint64(1))


def all_reduce_sums(values: dict[str, float], context: DistributedContext,
                    device: torch.device) -> dict[str, float]:
    """Sum each value over the ranks (identity for one process); keys must match."""
    if not context.distributed or not values:
        return dict(values)
    keys = sorted(values)
    tensor = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64, device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return {k: float(v) for k, v in zip(keys, tensor.tolist(), strict=True)}


@torch.no_grad()
def broadcast_module(module: torch.nn.Module, context: DistributedContext) -> None:
    """Copy rank 0's parameters and buffers to every rank (e.g. a teacher DDP does not
    wrap); no-op for one process."""
    if not context.distributed:
        return
    for tensor in module.state_dict().values():
        dist.broadcast(tensor, src=0)

"""DistributedDataParallel on 2 CPU processes (gloo): replicas stay identical, shards are
disjoint, only rank 0 writes."""
import json
import os
import socket

import pytest
import torch
from torch import nn
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F

from geodistill_core.models.correlation import LocationScores
from geodistill_core.training import (
    DataConfig,
    DistillConfig,
    DistillObjective,
    LoopConfig,
    ModelConfig,
    TrainConfig,
    Trainer,
    WeakConfig,
    init_distributed,
)
from geodistill_core.training.flat_world import FlatWorldDataset


class PairEstimator(nn.Module):
    """LocationScores from a ground descriptor (visible columns) and satellite features."""

    def __init__(self):
        super().__init__()
        self.ground = nn.Conv2d(3, 4, 3, padding=1)
        self.sat = nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, ground_images, satellite_images, *, sat_meters_per_px, camera_height_m,
                ground_yaw_rad=None, ground_K=None, ground_visible_cols=None, all_pairs=False):
        g = self.ground(ground_images).mean(dim=2)
        if ground_visible_cols is not None:
            g = g * ground_visible_cols.unsqueeze(1)
        g = F.normalize(g.mean(-1), dim=1)
        s = F.normalize(F.avg_pool2d(self.sat(satellite_images), 4), dim=1)
        eq = 'mchw,nc->mnhw' if all_pairs else 'bchw,bc->bhw'
        return LocationScores([torch.einsum(eq, s, g)], [sat_meters_per_px * 4])


def worker(rank, world_size, port, out_dir):
    os.environ.update({'RANK': str(rank), 'WORLD_SIZE': str(world_size), 'LOCAL_RANK': str(rank),
                       'MASTER_ADDR': '127.0.0.1', 'MASTER_PORT': str(port)})
    torch.set_num_threads(1)
    context = init_distributed('cpu')
    try:
        conf = TrainConfig(
            task='distill',
            data=DataConfig(dataset='flat_world', ground_hw=(16, 32), sat_size=32, batch_size=2,
                            min_distance_m=20.0, num_workers=0),
            model=ModelConfig(kind='pair'),
            distill=DistillConfig(ema_every_steps=1),
            loop=LoopConfig(epochs=1, steps_per_epoch=3, checkpoint_every_steps=2,
                            progress=False, tensorboard=False, device='cpu'))
        torch.manual_seed(rank)  # different inits: DDP must broadcast rank 0's weights
        model = PairEstimator()
        objective = DistillObjective(model, conf.distill, WeakConfig())
        train = FlatWorldDataset('train', size=16, ground_hw=(16, 32), sat_size=32)

        def save(path, module, provenance):
            assert context.is_main, 'only rank 0 saves models'
            path.mkdir(parents=True, exist_ok=True)
            return path
        trainer = Trainer(conf, objective, train, None, out_dir, context, save)
        trainer.train_sampler.set_epoch(0)
        batches = [list(b) for b in trainer.train_sampler]
        start = [p.detach().clone() for p in model.parameters()]
        trainer.fit()
        flat = torch.cat([p.detach().flatten() for p in model.parameters()] +
                         [p.detach().flatten() for p in objective.teacher.parameters()])
        gathered = [torch.zeros_like(flat) for _ in range(world_size)]
        dist.all_gather(gathered, flat)
        moved = any(not torch.equal(a, b) for a, b in zip(start, model.parameters(), strict=True))
        with open(os.path.join(out_dir, f'rank{rank}.json'), 'w') as handle:
            json.dump({'batches': batches, 'moved': moved,
                       'identical': all(torch.equal(gathered[0], g) for g in gathered),
                       'layout': train.sampling_layout().positions_m.tolist()}, handle)
    finally:
        dist.destroy_process_group()


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_gloo_replicas_stay_identical_on_disjoint_shards(tmp_path):
    mp.spawn(worker, args=(2, free_port(), str(tmp_path)), nprocs=2, join=True)
    results = [json.loads((tmp_path / f'rank{r}.json').read_text()) for r in range(2)]
    assert all(r['identical'] and r['moved'] for r in results)
    shards = [{i for b in r['batches'] for i in b} for r in results]
    assert shards[0] and shards[1] and not shards[0] & shards[1]
    assert len(results[0]['batches']) == len(results[1]['batches'])
    positions = torch.tensor(results[0]['layout'])
    for r in results:  # the distance rule holds inside every batch
        for batch in r['batches']:
            d = torch.cdist(positions[batch], positions[batch])
            assert (d + torch.eye(len(batch)) * 1e9 >= 20.0).all()
    assert (tmp_path / 'state' / 'meta.json').is_file()

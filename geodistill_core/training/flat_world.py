"""A procedural flat world for tests and the `tiny` preset (no files, milliseconds per item).

A smooth random RGB texture is the ground plane (and, seen from above, the satellite
image); panoramas are rendered exactly by the geometry module's conventions: pixel (v, u)
looks at elevation panorama_elevation_from_row(v) and azimuth panorama_azimuth_from_column(u)
(clockwise from the centre column, which looks along the item's yaw); rays below the
horizon hit the ground at distance camera_height / tan(-elevation); the sky is a fixed
gradient. The correlation estimator's spherical BEV projection therefore inverts the
rendering, so the weak objective can learn the task.

Items have the keys and conventions of the VIGOR reader (north-aligned panoramas, map yaw
pi/2, seeded yaw noise rolled into the panorama, the camera within the central quarter of
its satellite tile), including `eval_true_offset_en_m` for evaluation.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from geodistill_core.data.samplers import SamplingLayout
from geodistill_core.geometry import panorama_azimuth_from_column, panorama_elevation_from_row

FLAT_WORLD_SPLIT_SEEDS = {'train': 0, 'val': 1, 'test': 2}
FLAT_WORLD_SPLIT_SIZES = {'train': 64, 'val': 16, 'test': 32}
SKY_TOP_RGB = (0.35, 0.55, 0.9)
SKY_HORIZON_RGB = (0.85, 0.9, 0.95)


def smooth_texture(size_px: int, seed: int) -> torch.Tensor:
    """(3, size, size) float32 in [0, 1]: noise at three scales, bilinearly upsampled."""
    gen = torch.Generator().manual_seed(seed)
    out = torch.zeros(1, 3, size_px, size_px)
    for cells, weight in ((8, 0.5), (32, 0.3), (size_px // 4, 0.2)):
        noise = torch.rand(1, 3, cells, cells, generator=gen)
        out += weight * F.interpolate(noise, size=(size_px, size_px), mode='bilinear',
                                      align_corners=False)
    return out[0].clamp(0.0, 1.0)


class FlatWorldDataset(Dataset):
    """Panorama + north-up satellite tile pairs over a procedural flat world.

    split: 'train' | 'val' | 'test' (different worlds); size: number of items.
    ground_hw: panorama (H, W); sat_size: satellite side px at sat_meters_per_px.
    world_px: side of the world texture (metres = world_px * sat_meters_per_px).
    """

    def __init__(self, split: str = 'train', size: int | None = None,
                 ground_hw: tuple[int, int] = (32, 64), sat_size: int = 64,
                 sat_meters_per_px: float = 0.5, camera_height_m: float = 2.0,
                 yaw_noise_deg: float = 0.0, seed: int = 0, world_px: int = 512) -> None:
        if split not in FLAT_WORLD_SPLIT_SEEDS:
            raise ValueError(f'split must be one of {sorted(FLAT_WORLD_SPLIT_SEEDS)}, '
                             f'got {split!r}')
        if world_px < 2 * sat_size:
            raise ValueError(f'world_px ({world_px}) must be at least 2 sat_size ({sat_size})')
        self.split = split
        self.size = FLAT_WORLD_SPLIT_SIZES[split] if size is None else int(size)
        self.ground_hw = (int(ground_hw[0]), int(ground_hw[1]))
        self.sat_size = int(sat_size)
        self.sat_meters_per_px = float(sat_meters_per_px)
        self.camera_height_m = float(camera_height_m)
        self.yaw_noise_deg = float(yaw_noise_deg)
        self.seed = int(seed)
        world_seed = 1000 * self.seed + FLAT_WORLD_SPLIT_SEEDS[split]
        self.world = smooth_texture(world_px, world_seed)
        rng = np.random.default_rng(np.random.SeedSequence([world_seed, 7]))
        high = world_px - self.sat_size
        self.tile_origin_px = rng.integers(0, high + 1, size=(self.size, 2))
        quarter_m = self.sat_size * self.sat_meters_per_px / 4.0
        self.offset_en_m = rng.uniform(-quarter_m, quarter_m, size=(self.size, 2))
        self.yaw_noise_rad = np.radians(self.yaw_noise_deg) * rng.uniform(-1, 1, self.size)

    def __len__(self) -> int:
        return self.size

    def _tile_centre_px(self, index: int) -> tuple[float, float]:
        r0, c0 = self.tile_origin_px[index]
        return float(r0) + (self.sat_size - 1) / 2.0, float(c0) + (self.sat_size - 1) / 2.0

    def render_panorama(self, camera_rc_px: tuple[float, float], yaw_rad: float) -> torch.Tensor:
        """(3, H, W) panorama at world pixel (row, col), centre column looking along yaw."""
        H, W = self.ground_hw
        v = torch.arange(H, dtype=torch.float64).view(H, 1)
        u = torch.arange(W, dtype=torch.float64).view(1, W)
        elevation = panorama_elevation_from_row(v, H).expand(H, W)
        azimuth = panorama_azimuth_from_column(u, W).expand(H, W)
        world_side = self.world.shape[-1]
        below = elevation < 0
        tan_down = torch.tan(-elevation).clamp_min(1e-6)
        dist_m = (self.camera_height_m / tan_down).clamp(max=world_side * self.sat_meters_per_px)
        angle = yaw_rad - azimuth  # map angle, counter-clockwise from east
        col = camera_rc_px[1] + dist_m * torch.cos(angle) / self.sat_meters_per_px
        row = camera_rc_px[0] - dist_m * torch.sin(angle) / self.sat_meters_per_px
        grid = torch.stack([col, row], dim=-1) / (world_side - 1) * 2.0 - 1.0
        ground = F.grid_sample(self.world[None], grid[None].float(), mode='bilinear',
                               padding_mode='border', align_corners=True)[0]
        t = (elevation.clamp_min(0) / (math.pi / 2)).float()
        top = torch.tensor(SKY_TOP_RGB).view(3, 1, 1)
        horizon = torch.tensor(SKY_HORIZON_RGB).view(3, 1, 1)
        sky = horizon + (top - horizon) * t
        return torch.where(below, ground, sky).clamp(0.0, 1.0)

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < self.size:
            raise IndexError(f'index {index} out of range for {self.size} items')
        r0, c0 = (int(x) for x in self.tile_origin_px[index])
        S = self.sat_size
        satellite = self.world[:, r0:r0 + S, c0:c0 + S].clone()
        east_m, north_m = (float(x) for x in self.offset_en_m[index])
        centre_r, centre_c = self._tile_centre_px(index)
        camera_rc = (centre_r - north_m / self.sat_meters_per_px,
                     centre_c + east_m / self.sat_meters_per_px)
        noise = float(self.yaw_noise_rad[index])
        yaw = math.pi / 2 - noise
        return {
            'ground': self.render_panorama(camera_rc, yaw),
            'satellite': satellite,
            'sat_meters_per_px': torch.tensor(self.sat_meters_per_px),
            'camera_height_m': torch.tensor(self.camera_height_m),
            'yaw_rad': torch.tensor(yaw),
            'yaw_prior_rad': torch.tensor(math.pi / 2),
            'yaw_noise_rad': torch.tensor(noise),
            'eval_true_offset_en_m': torch.tensor([east_m, north_m]),
            'index': torch.tensor(index, dtype=torch.int64),
        }

    def sampling_layout(self) -> SamplingLayout:
        """Tile centres in metres (east, north) and one tile key per item."""
        rc = np.array([self._tile_centre_px(i) for i in range(self.size)])
        positions = np.stack([rc[:, 1], -rc[:, 0]], axis=1) * self.sat_meters_per_px
        keys = tuple(frozenset({f'{self.split}/{i}'}) for i in range(self.size))
        return SamplingLayout(positions, keys)

"""Seeded GNSS noise for the input fix of a replayed drive (no rclpy).

The noisy fix of frame k is the true position plus, in east/north/up metres,

    noise_k = bias + walk_k + white_k,   white_k ~ N(0, diag(sigma_m^2, sigma_m^2, sigma_up_m^2))
    walk_0 = 0,  walk_k = walk_{k-1} + N(0, random_walk_m_per_sqrt_s^2 * dt_k) (east, north)

with dt_k the time between fixes k-1 and k (seconds, 0 where stamps go backwards). The
stated covariance of the noisy fix is the white part only,
``diag(sigma_m^2, sigma_m^2, sigma_up_m^2)``: exact when bias and random walk are zero,
overconfident by design otherwise (like a real receiver's multipath).

Draws come from ``numpy.random.default_rng(SeedSequence([seed]))``, five normals per frame
(white east, north, up; walk east, north) in frame order, so the first k frames of a drive
get the same noise whatever the drive length (``max_frames`` does not change them).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
import math

import numpy as np

_DRAWS_PER_FRAME = 5


@dataclass(frozen=True)
class GnssNoiseConfig:
    """GNSS input noise (metres; see the module doc for the model)."""

    sigma_m: float = 5.0  # white noise per horizontal axis (east, north), 1 sigma
    sigma_up_m: float = 5.0  # white noise on the altitude, 1 sigma
    bias_east_m: float = 0.0  # constant offset
    bias_north_m: float = 0.0
    random_walk_m_per_sqrt_s: float = 0.0  # horizontal random-walk density (per axis)

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not math.isfinite(value):
                raise ValueError(f'GnssNoiseConfig.{name} must be finite, got {value}')
        for name in ('sigma_m', 'sigma_up_m', 'random_walk_m_per_sqrt_s'):
            if getattr(self, name) < 0:
                raise ValueError(f'GnssNoiseConfig.{name} must be >= 0, '
                                 f'got {getattr(self, name)}')

    def stated_covariance_enu_m2(self) -> np.ndarray:
        """(3, 3) ENU covariance published with the noisy fix (white part only)."""
        return np.diag([self.sigma_m ** 2, self.sigma_m ** 2, self.sigma_up_m ** 2])

    def to_dict(self) -> dict:
        return asdict(self)


def gnss_noise_enu_m(stamps_ns, config: GnssNoiseConfig, seed: int) -> np.ndarray:
    """Noise (N, 3) east/north/up metres for fixes at stamps_ns (N,) integer nanoseconds."""
    stamps = np.asarray(stamps_ns, dtype=np.int64).reshape(-1)
    n = stamps.size
    rng = np.random.default_rng(np.random.SeedSequence([int(seed)]))
    draws = rng.standard_normal((n, _DRAWS_PER_FRAME))
    white = draws[:, :3] * np.array([config.sigma_m, config.sigma_m, config.sigma_up_m])
    # a stamp that goes backwards (a KITTI glitch) adds no walk step
    dt_s = np.clip(np.diff(stamps, prepend=stamps[:1]), 0, None).astype(np.float64) * 1e-9
    steps = draws[:, 3:] * (config.random_walk_m_per_sqrt_s * np.sqrt(dt_s))[:, None]
    walk = np.cumsum(steps, axis=0)
    noise = white
    noise[:, :2] += walk + np.array([config.bias_east_m, config.bias_north_m])
    return noise

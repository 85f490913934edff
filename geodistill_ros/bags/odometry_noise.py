"""Seeded odometry noise for the twist topic of a converted drive (no rclpy).

The OXTS velocities of a drive (forward vf, leftward vl, yaw rate wu: an INS, nearly
exact) stand in for the vehicle's wheel odometry; each sample gets independent Gaussian
noise of ``sigma_mps`` on both velocities and ``yaw_rate_sigma_rps`` on the yaw rate, and
the message states exactly that covariance. Draws come from
``numpy.random.default_rng(SeedSequence([seed, 1]))`` (the GNSS noise uses ``[seed]``:
adding odometry does not change a drive's GNSS noise), three normals per sample in order.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
import math

import numpy as np

_UNUSED_VARIANCE = 1e6
"""Stated variance of the twist components a planar vehicle does not measure (z, roll,
pitch rates): large, as REP-105 consumers expect for unknown components."""


@dataclass(frozen=True)
class OdometryNoiseConfig:
    """Noise of the twist topic: 1-sigma velocity (m/s) and yaw-rate (rad/s) noise."""

    sigma_mps: float = 0.05
    yaw_rate_sigma_rps: float = 0.005

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f'OdometryNoiseConfig.{name} must be finite and >= 0, '
                                 f'got {value}')

    def stated_covariance_6x6(self) -> np.ndarray:
        """(6, 6) covariance of (vx, vy, vz, wx, wy, wz) stated in every message."""
        floor = 1e-6  # a zero variance would read as 'unknown'
        diag = [max(self.sigma_mps ** 2, floor)] * 2 + [_UNUSED_VARIANCE] * 3 + [
            max(self.yaw_rate_sigma_rps ** 2, floor)]
        return np.diag(diag)

    def to_dict(self) -> dict:
        return asdict(self)


def odometry_noise(n: int, config: OdometryNoiseConfig, seed: int) -> np.ndarray:
    """(n, 3) noise of (v_forward, v_left, yaw_rate) for n samples."""
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 1]))
    draws = rng.standard_normal((int(n), 3))
    return draws * np.array([config.sigma_mps, config.sigma_mps, config.yaw_rate_sigma_rps])

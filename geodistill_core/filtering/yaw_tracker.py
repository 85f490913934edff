"""Yaw tracking over a drive: a Kalman filter on (yaw, yaw rate) fed by the rotation search.

A vehicle's heading changes by a few degrees between camera frames, so once the rotation
search has found it, the next frame need not search the whole prior range (the fix
track's +-20 deg): ``window`` returns a search interval centred on the predicted yaw (not
on the frame's prior), its half-range ``window_sigmas`` predicted standard deviations (at
least ``min_range_deg``, at most the prior's range). The search costs about linearly in
its candidates, so a narrow window is what keeps the node at its camera rate (README).

Model (radians, seconds; yaw of base_link in the map frame, 0 = east, CCW):

    state x = (yaw, yaw_rate). Without odometry: constant turn rate with white yaw
    acceleration of spectral density q = yaw_accel_sigma^2: F = [[1, dt], [0, 1]],
    Q = q [[dt^3 / 3, dt^2 / 2], [dt^2 / 2, dt]]. With odometry covering the interval:
    its yaw change d (the twist samples' yaw rates integrated, motion.integrate_yaw_rate,
    variance v) moves the yaw, yaw += d, var(yaw) += v + (odometry_rate_sigma dt)^2, and
    the rate becomes d / dt (the odometry's, not the search's, turn rate).
    The rotation search's (yaw, variance) is a measurement of the yaw, H = [1, 0].

Cost: while the track is confident (its window at ``min_range_deg``) only every
``search_every``-th frame runs the search; the frames between take the predicted yaw,
which with odometry is more accurate than one search (the search costs ~35 ms on top of
the 45 ms inference of the pinhole default on 2 CPU cores, README).

Robustness: a search result is gated by its normalised innovation (chi-square, 1 dof,
``gate_chi2``) and refused when it lies at the edge of a narrowed window (the true yaw is
probably outside it). ``max_rejections`` refusals in a row mark the track lost: it is kept
(the odometry carries it) with its yaw std raised to ``lost_std_deg``, so the next
windows span the prior's range around the prediction and the next result passes the
gate. A track whose prediction disagrees with the frames' measured priors on average (circular
mean over ``prior_check_s`` beyond ``max_prior_disagreement_deg``: a lock on a wrong peak,
e.g. a street grid 90 deg off), a gap longer than ``max_gap_s``, stamps going back and
``reset()`` drop the track:
the next frame searches the prior's whole range around the prior, and the track starts
again from a search result whose standard deviation is at most ``max_start_std_deg``.
Otherwise a frame's prior does not move the window: a fix-track heading with a few metres
of GNSS noise over 1 s is off by tens of degrees per frame, far worse than the track.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
import math

import numpy as np


@dataclass(frozen=True)
class YawTrackerConfig:
    """Settings (config/localize.yaml ``fusion.yaw_*`` documents each).

    enabled: track at all (False: every frame searches the prior's range).
    yaw_accel_sigma_dps2: white yaw acceleration of the turn-rate model (deg/s^2).
    odometry_rate_sigma_dps: error of the odometry's yaw rate beyond its covariance (bias,
    slip), deg/s.
    window_sigmas, min_range_deg: the search half-range from the predicted std.
    gate_chi2: innovation gate (1 dof). edge_fraction: a result within this fraction of a
    narrowed window's half-range from its edge is refused. max_rejections: refusals in a
    row that drop the track. max_gap_s: a longer gap between frames drops the track.
    max_start_std_deg: the largest search std that starts a track.
    lost_std_deg: after max_rejections refusals in a row the track is kept but its yaw std
    raised to at least this (the window widens to the prior's range around the prediction).
    search_every: while the track is confident (its window at min_range_deg), only every
    search_every-th frame is searched; the others take the predicted yaw (``search_due``).
    prior_check_s, max_prior_disagreement_deg, prior_check_min_frames: the circular mean of
    (prior - predicted yaw) over the last prior_check_s seconds (at least that many frames,
    measured priors only: range < 90 deg) beyond this drops the track (a lock on a wrong
    peak, e.g. a street grid 90 deg off; one fix-track prior is tens of degrees off, its
    mean over seconds is not).
    start_rate_sigma_dps: the yaw rate's std when a track starts (rate unknown).
    """

    enabled: bool = True
    yaw_accel_sigma_dps2: float = 20.0
    odometry_rate_sigma_dps: float = 0.5
    window_sigmas: float = 4.0
    min_range_deg: float = 3.0
    gate_chi2: float = 10.83
    edge_fraction: float = 0.1
    max_rejections: int = 3
    max_gap_s: float = 1.0
    max_start_std_deg: float = 5.0
    lost_std_deg: float = 10.0
    prior_check_s: float = 5.0
    max_prior_disagreement_deg: float = 45.0
    prior_check_min_frames: int = 20
    search_every: int = 2
    start_rate_sigma_dps: float = 20.0

    def __post_init__(self):
        positive = {'yaw_accel_sigma_dps2': self.yaw_accel_sigma_dps2,
                    'window_sigmas': self.window_sigmas, 'min_range_deg': self.min_range_deg,
                    'gate_chi2': self.gate_chi2, 'max_gap_s': self.max_gap_s,
                    'max_start_std_deg': self.max_start_std_deg,
                    'lost_std_deg': self.lost_std_deg,
                    'prior_check_s': self.prior_check_s,
                    'max_prior_disagreement_deg': self.max_prior_disagreement_deg,
                    'start_rate_sigma_dps': self.start_rate_sigma_dps}
        for name, value in positive.items():
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f'yaw tracker {name} must be a finite number > 0, got {value!r}')
        if not (math.isfinite(self.odometry_rate_sigma_dps) and self.odometry_rate_sigma_dps >= 0):
            raise ValueError(f'yaw tracker odometry_rate_sigma_dps must be >= 0, got '
                             f'{self.odometry_rate_sigma_dps!r}')
        if not 0.0 <= self.edge_fraction < 0.5:
            raise ValueError(f'yaw tracker edge_fraction must be in [0, 0.5), got '
                             f'{self.edge_fraction!r}')
        if self.search_every < 1:
            raise ValueError(f'yaw tracker search_every must be >= 1, got '
                             f'{self.search_every!r}')
        if self.prior_check_min_frames < 1:
            raise ValueError(f'yaw tracker prior_check_min_frames must be >= 1, got '
                             f'{self.prior_check_min_frames!r}')
        if self.max_rejections < 1:
            raise ValueError(f'yaw tracker max_rejections must be >= 1, got '
                             f'{self.max_rejections!r}')


@dataclass(frozen=True)
class YawWindow:
    """The search interval for a frame: centre_rad +- range_deg; tracked: it comes from
    the track (else it is the prior's); predicted_std_rad: the track's (None untracked)."""

    centre_rad: float
    range_deg: float
    tracked: bool
    predicted_std_rad: float | None = None


@dataclass
class YawTrackerStats:
    counters: dict = field(default_factory=lambda: {
        'updates': 0, 'rejected_gate': 0, 'rejected_edge': 0, 'starts': 0, 'lost': 0,
        'drops': 0, 'odometry': 0, 'unsearched': 0})
    last_drop: str = 'none'


def _wrap(angle_rad: float) -> float:
    return math.remainder(angle_rad, math.tau)


class YawTracker:
    """The filter of the module doc for one vehicle (not thread-safe: the caller locks)."""

    def __init__(self, config: YawTrackerConfig = YawTrackerConfig()):
        self.config = config
        self.stats = YawTrackerStats()
        self._x: np.ndarray | None = None  # (yaw, rate)
        self._P: np.ndarray | None = None
        self._t_ns: int | None = None
        self._rejections = 0
        self._predicted: tuple[int, np.ndarray, np.ndarray] | None = None
        self._disagreements: deque = deque()  # (stamp_ns, prior - predicted yaw) rad
        self._mean_disagreement_rad: float | None = None
        self._unsearched = 0  # confident frames in a row that took the prediction

    @property
    def tracking(self) -> bool:
        return self._x is not None

    @property
    def last_update_ns(self) -> int | None:
        """Stamp of the state (the last fused or coasted frame), None untracked."""
        return self._t_ns

    def reset(self, reason: str = 'service') -> None:
        """Drop the track (the next frame searches the prior's whole range)."""
        if self._x is not None:
            self.stats.counters['drops'] += 1
            self.stats.last_drop = reason
        self._x = self._P = self._t_ns = self._predicted = None
        self._rejections = 0
        self._disagreements.clear()
        self._mean_disagreement_rad = None

    def prior_disagreement_deg(self) -> float | None:
        """|circular mean of (prior - predicted yaw)| over the last prior_check_s seconds of
        the current track (degrees), None untracked or before prior_check_min_frames
        measured priors: how far the track sits from what the priors say on average."""
        if self._x is None or self._mean_disagreement_rad is None:
            return None
        return abs(math.degrees(self._mean_disagreement_rad))

    def estimate(self) -> tuple[float, float] | None:
        """(yaw rad, variance rad^2) after the last update, None untracked."""
        if self._x is None:
            return None
        return float(_wrap(self._x[0])), float(self._P[0, 0])

    # --- a frame ---------------------------------------------------------------------------
    def window(self, stamp_ns: int, prior_yaw_rad: float, prior_range_deg: float,
               odometry_yaw_change: tuple[float, float] | None = None) -> YawWindow:
        """The search interval for a frame at stamp_ns, given the measured prior (yaw and
        half-range) and optionally the odometry's yaw change (rad, variance rad^2) since
        the last update. Predicts the track to the stamp (kept for ``update``)."""
        untracked = YawWindow(float(prior_yaw_rad), float(prior_range_deg), False)
        self._predicted = None
        if not self.config.enabled or self._x is None:
            return untracked
        dt = (int(stamp_ns) - self._t_ns) * 1e-9
        if dt < 0:
            self.reset('time_jump')
            return untracked
        if dt > self.config.max_gap_s:
            self.reset('gap')
            return untracked
        if odometry_yaw_change is not None and dt > 0:
            # the odometry measured the yaw change: it moves the yaw; the rate becomes its mean
            change, var = odometry_yaw_change
            drift = (math.radians(self.config.odometry_rate_sigma_dps) * dt) ** 2
            x = np.array([self._x[0] + change, change / dt])
            P = np.diag([self._P[0, 0] + var + drift, (var + drift) / dt ** 2])
            self.stats.counters['odometry'] += 1
        else:
            F = np.array([[1.0, dt], [0.0, 1.0]])
            q = math.radians(self.config.yaw_accel_sigma_dps2) ** 2
            Q = q * np.array([[dt ** 3 / 3, dt ** 2 / 2], [dt ** 2 / 2, dt]])
            x, P = F @ self._x, F @ self._P @ F.T + Q
        if prior_range_deg < 90.0 and self._prior_disagrees(int(stamp_ns),
                                                            _wrap(prior_yaw_rad - x[0])):
            self.reset('prior_disagrees')
            return untracked
        std = math.sqrt(P[0, 0])
        half = min(max(self.config.window_sigmas * math.degrees(std), self.config.min_range_deg),
                   float(prior_range_deg))
        self._predicted = (int(stamp_ns), x, P)
        return YawWindow(float(_wrap(x[0])), half, True, std)

    def update(self, stamp_ns: int, window: YawWindow, yaw_rad: float, var_rad2: float) -> str:
        """Fuse the rotation search's result for the frame whose window this was; returns
        'start' | 'fused' | 'rejected_gate' | 'rejected_edge' | 'too_uncertain' (no track
        started) | 'disabled'."""
        cfg = self.config
        if not cfg.enabled:
            return 'disabled'
        if not (math.isfinite(yaw_rad) and math.isfinite(var_rad2) and var_rad2 > 0):
            return 'rejected_gate'
        predicted = self._predicted
        self._predicted = None
        if not window.tracked or predicted is None or predicted[0] != int(stamp_ns):
            if math.sqrt(var_rad2) > math.radians(cfg.max_start_std_deg):
                return 'too_uncertain'
            self._x = np.array([float(yaw_rad), 0.0])
            self._P = np.diag([var_rad2, math.radians(cfg.start_rate_sigma_dps) ** 2])
            self._t_ns, self._rejections = int(stamp_ns), 0
            self.stats.counters['starts'] += 1
            return 'start'
        _, x, P = predicted
        offset = abs(_wrap(yaw_rad - window.centre_rad))
        if offset >= math.radians(window.range_deg) * (1 - cfg.edge_fraction):
            return self._reject('rejected_edge', x, P, stamp_ns)
        innovation = _wrap(yaw_rad - x[0])
        s = P[0, 0] + var_rad2
        if innovation ** 2 / s > cfg.gate_chi2:
            return self._reject('rejected_gate', x, P, stamp_ns)
        gain = P[:, 0] / s
        self._x = x + gain * innovation
        self._P = P - np.outer(gain, P[0, :])
        self._P = 0.5 * (self._P + self._P.T)
        self._t_ns, self._rejections = int(stamp_ns), 0
        self.stats.counters['updates'] += 1
        return 'fused'

    def search_due(self, window: YawWindow) -> bool:
        """Whether the frame of ``window`` runs the search (else it takes the predicted yaw,
        window.centre_rad with std window.predicted_std_rad): always unless the track is
        confident (window at min_range_deg), then every search_every-th frame."""
        confident = window.tracked and window.range_deg <= self.config.min_range_deg + 1e-9
        if not confident or self._unsearched + 1 >= self.config.search_every:
            self._unsearched = 0
            return True
        self._unsearched += 1
        self.stats.counters['unsearched'] += 1
        return False

    # --- internals ------------------------------------------------------------------------
    def _prior_disagrees(self, stamp_ns: int, difference_rad: float) -> bool:
        """Add a frame's (prior - prediction); whether their circular mean over the last
        prior_check_s seconds exceeds max_prior_disagreement_deg."""
        cfg = self.config
        window = self._disagreements
        window.append((stamp_ns, difference_rad))
        while window and stamp_ns - window[0][0] > cfg.prior_check_s * 1e9:
            window.popleft()
        if len(window) < cfg.prior_check_min_frames:
            self._mean_disagreement_rad = None
            return False
        mean = math.atan2(sum(math.sin(d) for _, d in window),
                          sum(math.cos(d) for _, d in window))
        self._mean_disagreement_rad = mean
        return abs(mean) > math.radians(cfg.max_prior_disagreement_deg)

    def _reject(self, reason: str, x: np.ndarray, P: np.ndarray, stamp_ns: int) -> str:
        """Keep the prediction (coasting) and count; too many in a row mean the track is
        lost: its yaw and rate become uncertain (the next windows span the prior's range
        around the prediction, which the odometry keeps carrying through turns)."""
        self.stats.counters[reason] += 1
        self._rejections += 1
        self._x, self._P, self._t_ns = x, P, int(stamp_ns)
        if self._rejections >= self.config.max_rejections:
            cfg = self.config
            self._P = np.diag([max(P[0, 0], math.radians(cfg.lost_std_deg) ** 2),
                               max(P[1, 1], math.radians(cfg.start_rate_sigma_dps) ** 2)])
            self._rejections = 0
            self.stats.counters['lost'] += 1
        return reason


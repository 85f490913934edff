"""Sequence localisation: the grid filter fed with fixes, odometry and heatmaps over time.

``SequenceFusion`` is what the node (and the offline replay) drive, with no ROS types:

    fusion.add_fix(stamp_ns, xy_m, R_xy_m2)        # every GNSS fix, map frame
    fusion.add_twist(TwistSample(...))             # optional odometry (base_link twist)
    out = fusion.step(stamp_ns, yaw_rad, heatmap)  # one camera frame -> posterior

``step`` brings the belief to the frame's stamp: every queued fix up to the stamp is fused
in time order (predict to the fix, gate it, update), then the belief is predicted to the
stamp and updated with the frame's calibrated heatmap (``HeatmapMeasurement``; None for a
GNSS-only step). Prediction uses the odometry when it covers the interval, otherwise a
constant velocity fitted to the recent fixes, otherwise a random walk; process noise is
added to each. Resets (the belief restarts around the next fix): first frame, stamps going
back (bag loop), a gap longer than ``max_gap_s``, ``fix_jump_count`` gated fixes in a row
(the fix moved and stayed), a GNSS-bias excursion (the belief explains the fixes only by a
GNSS error its model rules out: ``bias_excursion_chi2``; the camera has pulled the belief
away, e.g. heatmaps at a wrong yaw) and ``reset()`` (the node's ~/reset service, a datum
change).

Mode 'filter' uses everything; 'gnss' the fixes and motion only (no camera: the baseline
that says what the camera adds). Statistics for diagnostics: ``stats`` (counters, the last
reset reason, recent GNSS normalised innovations).
"""
from __future__ import annotations

import bisect
from collections import deque
from dataclasses import dataclass, field
import math

import numpy as np

from geodistill_core.filtering.grid_filter import (
    GnssErrorModel,
    GridEstimate,
    GridFilter,
    eig_range_2x2,
)
from geodistill_core.filtering.heatmap_likelihood import HeatmapMeasurement
from geodistill_core.filtering.motion import (
    TwistSample,
    integrate_twist,
    integrate_yaw_rate,
    track_velocity,
)

MODES = ('filter', 'gnss')


@dataclass(frozen=True)
class FusionConfig:
    """Filter settings (config/localize.yaml ``fusion.*`` documents each).

    cell_m, window_m: the grid. process_noise_m2_per_s: diffusion added to every prediction
    (m^2/s per axis), in full from process_noise_full_speed_mps of predicted speed (odometry
    or fix track) and in proportion below: a standing vehicle does not wander (a zero-velocity
    update; 0 = in full whatever the speed; unknown motion: in full).
    heading_sigma_deg: heading error rotating the odometry displacement.
    no_motion_sigma_mps: random-walk speed when there is neither odometry nor a track.
    track_window_s: fixes used for the track velocity. gnss_sigma_m: per-axis sigma of a fix
    whose covariance is unknown. gnss_bias_sigma_m, gnss_bias_correlation_s: the correlated
    GNSS error (GridFilter). gate_chi2: a fix further than this (squared Mahalanobis, 2 dof)
    from the prediction is not fused. fix_jump_count: that many gated fixes in a row reset
    the filter. max_gap_s: no fix or frame for this long resets. time_jump_s: stamps going
    back by more reset. odometry_max_hold_s: a twist sample is used for at most this long.
    min_outlier_weight: uniform floor mixed into every heatmap (robustness). camera_weight:
    exponent of each frame's heatmap likelihood (1 = frames independent; below 1 accounts
    for consecutive frames of one street making correlated errors, as the correlated GNSS
    error does for fixes; the first frame after a (re)start counts fully).
    camera_weight_distance_m: frames share camera_weight per this much net predicted motion
    (odometry or fix track; ``camera_weight_now``): a frame at least this far from the
    previous one gets camera_weight, closer ones (slow, stopped, a camera faster than 10 Hz)
    in proportion, because views of one place make one error, not one per frame. Motion
    unknown (a random walk): full weight. 0 = every frame camera_weight whatever the motion.
    bias_excursion_chi2: the belief's expected GNSS error b is tested against its stationary
    prior N(0, gnss_bias_sigma_m^2 I): |b|^2 / sigma^2 above this restarts the filter around
    the fixes (reason 'bias_excursion'; 0 = off; needs gnss_bias_sigma_m > 0). late_fix_max_s: a
    fix that arrives after a later frame was processed is moved forward by the odometry
    over the gap and fused when the gap is at most this (else counted in fixes_late).
    """

    mode: str = 'filter'
    cell_m: float = 0.5
    window_m: float = 64.0
    process_noise_m2_per_s: float = 0.05
    process_noise_full_speed_mps: float = 1.0
    heading_sigma_deg: float = 3.0
    no_motion_sigma_mps: float = 5.0
    track_window_s: float = 3.0
    gnss_sigma_m: float = 5.0
    gnss_bias_sigma_m: float = 3.0
    gnss_bias_correlation_s: float = 60.0
    gate_chi2: float = 25.0
    fix_jump_count: int = 20
    max_gap_s: float = 5.0
    time_jump_s: float = 1.0
    odometry_max_hold_s: float = 0.5
    min_outlier_weight: float = 0.02
    late_fix_max_s: float = 0.5
    camera_weight: float = 0.25
    camera_weight_distance_m: float = 0.8
    bias_excursion_chi2: float = 9.0

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f'fusion mode must be one of {MODES}, got {self.mode!r}')
        if not 0.0 < self.camera_weight <= 1.0:
            raise ValueError(f'camera_weight must be in (0, 1], got {self.camera_weight}')
        if not (self.process_noise_full_speed_mps >= 0
                and math.isfinite(self.process_noise_full_speed_mps)):
            raise ValueError('process_noise_full_speed_mps must be finite and >= 0 (0 = off), '
                             f'got {self.process_noise_full_speed_mps}')
        if not (self.camera_weight_distance_m >= 0
                and math.isfinite(self.camera_weight_distance_m)):
            raise ValueError('camera_weight_distance_m must be finite and >= 0 (0 = per frame), '
                             f'got {self.camera_weight_distance_m}')
        if not (self.bias_excursion_chi2 >= 0 and math.isfinite(self.bias_excursion_chi2)):
            raise ValueError('bias_excursion_chi2 must be finite and >= 0 (0 = off), got '
                             f'{self.bias_excursion_chi2}')
        if not (self.cell_m > 0 and self.window_m >= 8 * self.cell_m):
            raise ValueError(f'need cell_m > 0 and window_m >= 8 cells, got {self.cell_m}, '
                             f'{self.window_m}')


@dataclass(frozen=True)
class FusionOutput:
    """The posterior at a frame: mean_xy_m (2,), cov_xy_m2 (2, 2), gnss_bias_xy_m (2,),
    motion ('odometry' | 'track' | 'random_walk' | 'none'), camera_outlier_prob: the
    posterior probability that the frame's heatmap was an outlier (None without one),
    fixes_fused / fixes_gated during this step, reset: the reason when the belief restarted
    at this step ('' otherwise), belief_before_camera: the belief just before the frame's
    heatmap was fused (None when none was, or step was not asked for it): what predicts the
    frame's own estimate. camera_weight: the exponent the frame's heatmap got (0 = not
    fused: no motion since the frames before; None without a heatmap)."""

    stamp_ns: int
    mean_xy_m: np.ndarray
    cov_xy_m2: np.ndarray
    gnss_bias_xy_m: np.ndarray
    motion: str
    camera_outlier_prob: float | None
    fixes_fused: int
    fixes_gated: int
    reset: str = ''
    belief_before_camera: GridEstimate | None = None
    camera_weight: float | None = None


@dataclass
class FusionStats:
    counters: dict = field(default_factory=lambda: {
        'frames': 0, 'fixes_fused': 0, 'fixes_gated': 0, 'fixes_late': 0, 'resets': 0,
        'camera_outliers': 0, 'odometry_rejected': 0, 'motion_odometry': 0,
        'motion_track': 0, 'motion_random_walk': 0})
    last_reset: str = 'none'
    nis: deque = field(default_factory=lambda: deque(maxlen=200))

    def nis_mean(self) -> float:
        return float(np.mean(self.nis)) if self.nis else math.nan


class SequenceFusion:
    """The filter of the module doc for one vehicle."""

    def __init__(self, config: FusionConfig = FusionConfig()):
        self.config = config
        size = int(round(config.window_m / config.cell_m))
        self.grid = GridFilter(size, config.cell_m, GnssErrorModel(
            config.gnss_bias_sigma_m, config.gnss_bias_correlation_s))
        self.stats = FusionStats()
        self._fixes: list[tuple[int, np.ndarray, np.ndarray]] = []  # queued, time order
        self._track: deque = deque()  # recent (stamp, xy, R) for the track velocity
        self._twists: list[TwistSample] = []
        self._t_ns: int | None = None
        self._yaw_rad: float | None = None
        self._gated_in_row = 0
        self._pending_reset = 'start'
        self._last_fix: tuple | None = None
        self._last_frame_ns: int | None = None
        # the camera's budget (camera_weight_now): net predicted displacement since the
        # anchor frame (None = unknown motion) and the weight fused since then
        self._camera_moved_xy_m: np.ndarray | None = None
        self._camera_spent = 0.0

    # --- inputs -------------------------------------------------------------------------
    def add_fix(self, stamp_ns: int, xy_m, R_xy_m2: np.ndarray | None) -> None:
        """Queue a fix (map metres; R None, non-finite or not positive definite:
        gnss_sigma_m per axis). A fix with a non-finite position is ignored."""
        xy = np.asarray(xy_m, np.float64).reshape(2)
        if not np.isfinite(xy).all():
            return
        R = None if R_xy_m2 is None else np.asarray(R_xy_m2, np.float64).reshape(2, 2)
        if R is None or not (np.isfinite(R).all() and eig_range_2x2(R)[0] > 0):
            R = np.eye(2) * self.config.gnss_sigma_m ** 2
        if self._fixes and stamp_ns < self._fixes[-1][0] - self.config.time_jump_s * 1e9:
            self._fixes.clear()
            self._pending_reset = 'time_jump'
        bisect.insort(self._fixes, (int(stamp_ns), xy, R), key=lambda f: f[0])
        self._track.append((int(stamp_ns), xy, R))
        while self._track and stamp_ns - self._track[0][0] > self.config.track_window_s * 1e9:
            self._track.popleft()

    def add_twist(self, sample: TwistSample) -> str | None:
        """Add an odometry sample; returns why it was rejected (counted), or None."""
        problem = sample.problem()
        if problem is None and self._twists and sample.stamp_ns <= self._twists[-1].stamp_ns:
            if sample.stamp_ns < self._twists[-1].stamp_ns - self.config.time_jump_s * 1e9:
                self._twists.clear()  # a clock jump: start the odometry history again
            else:
                problem = 'stamp_not_increasing'
        if problem is not None:
            self.stats.counters['odometry_rejected'] += 1
            return problem
        self._twists.append(sample)
        horizon = sample.stamp_ns - int(max(10.0, 4 * self.config.max_gap_s) * 1e9)
        while len(self._twists) > 2 and self._twists[1].stamp_ns < horizon:
            self._twists.pop(0)
        return None

    def reset(self, reason: str = 'service') -> None:
        """Restart the belief around the next fix (the reason shows in the statistics)."""
        self._pending_reset = reason

    # --- the step -------------------------------------------------------------------------
    def step(self, stamp_ns: int, yaw_rad: float, heatmap: HeatmapMeasurement | None,
             belief_before_camera: bool = False) -> FusionOutput | None:
        """The posterior at a camera frame's stamp; None while no fix has arrived. With
        belief_before_camera the output also holds the belief just before the heatmap
        (one more grid estimate; for the single-frame covariance scale)."""
        cfg = self.config
        stamp_ns = int(stamp_ns)
        if self._t_ns is not None:
            if stamp_ns < self._t_ns - cfg.time_jump_s * 1e9:
                self._pending_reset = 'time_jump'
            elif stamp_ns - self._t_ns > cfg.max_gap_s * 1e9:
                self._pending_reset = 'gap'
        reset = ''
        if self._pending_reset:
            if not self._restart(stamp_ns):
                return None
            reset, self._pending_reset = self._pending_reset, ''
        fused = gated = 0
        motion = 'none'
        while self._fixes and self._fixes[0][0] <= stamp_ns:
            fix_stamp, xy, R = self._last_fix = self._fixes.pop(0)
            if fix_stamp < self._t_ns:  # arrived after a later frame was processed
                moved = self._late_fix(fix_stamp, xy, R, yaw_rad)
                if moved is None:
                    self.stats.counters['fixes_late'] += 1
                    continue
                xy, R = moved
            else:
                motion = self._predict(fix_stamp, yaw_rad)
            if self._fuse_fix(xy, R):
                fused += 1
            else:
                gated += 1
            if self._gated_in_row >= cfg.fix_jump_count:
                self._pending_reset = 'fix_jump'
                return self.step(stamp_ns, yaw_rad, heatmap, belief_before_camera)
        if stamp_ns > self._t_ns:
            motion = self._predict(stamp_ns, yaw_rad)
        outlier = before = weight = None
        if stamp_ns == self._last_frame_ns:
            heatmap = None  # the same frame again (a resent image): fused once only
        self._last_frame_ns = stamp_ns
        if heatmap is not None and cfg.mode == 'filter':
            # the first frame after a (re)start has no earlier frame to correlate with
            before = None if reset or not belief_before_camera else self.grid.estimate()
            weight = 1.0 if reset else self.camera_weight_now()
            if weight > 0.0:
                outlier = self._fuse_heatmap(heatmap, weight)
            self._spend_camera_weight(weight, restart=bool(reset))
        est = self.grid.estimate()
        if self._bias_excursion(est.bias_xy_m):
            # the frame's heatmap is not fused again: it may be what pulled the belief away
            self._pending_reset = 'bias_excursion'
            return self.step(stamp_ns, yaw_rad, None, belief_before_camera)
        if self.grid.recentre(mean_xy_m=est.mean_xy_m):
            est = self.grid.estimate()
        self._yaw_rad = yaw_rad
        self.stats.counters['frames'] += 1
        return FusionOutput(stamp_ns, est.mean_xy_m, est.cov_xy_m2, est.bias_xy_m, motion,
                            outlier, fused, gated, reset, before, weight)

    def estimate(self) -> GridEstimate:
        return self.grid.estimate()

    def camera_weight_now(self) -> float:
        """The exponent a heatmap fused now gets (FusionConfig.camera_weight_distance_m).

        A budget: the frames since an anchor frame share camera_weight * min(1, |net
        predicted motion| / d), d = camera_weight_distance_m; a frame gets what is left of
        it, and the next frame anchors anew once the motion reached d or half the budget is
        spent (``_spend_camera_weight``). At d or more per frame every frame gets
        camera_weight; at d / 2 per frame each gets half; a standing vehicle's odometry
        noise (a random walk of a few centimetres, whatever its path length) earns almost
        nothing. Unknown motion: camera_weight. 0: the frame is not fused."""
        cfg = self.config
        if cfg.camera_weight_distance_m <= 0 or self._camera_moved_xy_m is None:
            return cfg.camera_weight
        share = min(1.0, float(np.hypot(*self._camera_moved_xy_m))
                    / cfg.camera_weight_distance_m)
        weight = cfg.camera_weight * share - self._camera_spent
        # under 1% of a moving frame's weight adds nothing, and its outlier odds (floor
        # against evidence, both near 1) would say nothing: 0, the frame is not fused
        return weight if weight >= 0.01 * cfg.camera_weight else 0.0

    def _spend_camera_weight(self, weight: float, restart: bool) -> None:
        """After a frame: its weight is spent. A new anchor after a restart, once the motion
        reached camera_weight_distance_m or was unknown, or once half the budget is spent
        (a frame a little short of the distance, 0.79 m, must not leave the next one,
        0.95 m further on, with the remainder only; odometry jitter never spends half)."""
        moved = self._camera_moved_xy_m
        self._camera_spent += weight
        if restart or moved is None or self._camera_spent >= 0.5 * self.config.camera_weight \
                or float(np.hypot(*moved)) >= self.config.camera_weight_distance_m:
            self._camera_moved_xy_m, self._camera_spent = np.zeros(2), 0.0

    def odometry_yaw_change(self, t0_ns: int, t1_ns: int) -> tuple[float, float] | None:
        """Yaw change (rad) and its variance over [t0, t1] from the odometry's yaw rates;
        None without odometry covering the interval (the yaw tracker's input)."""
        if not self._twists:
            return None
        return integrate_yaw_rate(self._twists, int(t0_ns), int(t1_ns),
                                  self.config.odometry_max_hold_s)

    # --- internals ------------------------------------------------------------------------
    def _restart(self, stamp_ns: int) -> bool:
        """Belief around the newest fix at or before the stamp (uniform window + that fix);
        False when there is none yet."""
        candidates = [f for f in self._fixes if f[0] <= stamp_ns]
        if not candidates and self._last_fix is not None and self._pending_reset in (
                'fix_jump', 'service', 'map_change', 'bias_excursion') \
                and self._last_fix[0] <= stamp_ns:
            candidates = [self._last_fix]
        if not candidates:
            return False
        fix_stamp, xy, R = candidates[-1]
        self._fixes = [f for f in self._fixes if f[0] > fix_stamp]
        self.grid.reset(xy)
        self.grid.update_gnss(xy, R)
        self._t_ns = fix_stamp
        self._gated_in_row = 0
        self.stats.counters['resets'] += 1
        key = f'resets_{self._pending_reset}'
        self.stats.counters[key] = self.stats.counters.get(key, 0) + 1
        self.stats.last_reset = self._pending_reset
        self.stats.counters['fixes_fused'] += 1
        return True

    def _predict(self, stamp_ns: int, yaw_rad: float) -> str:
        cfg = self.config
        dt = (stamp_ns - self._t_ns) * 1e-9
        if dt <= 0:
            return 'none'
        heading = self._yaw_rad if self._yaw_rad is not None else yaw_rad
        motion = self._odometry_motion(self._t_ns, stamp_ns, heading)
        source = 'odometry'
        if motion is None:
            track = self._track_velocity()
            if track is not None:
                velocity, cov_v = track
                # the fitted velocity's error persists over the track window: diffusion
                # at cov_v * window per second bounds the drift it can cause
                motion = velocity * dt, cov_v * dt * cfg.track_window_s
                source = 'track'
            else:
                motion = np.zeros(2), np.eye(2) * cfg.no_motion_sigma_mps ** 2 * dt
                source = 'random_walk'
        delta, q = motion
        if source == 'random_walk':
            self._camera_moved_xy_m = None
        elif self._camera_moved_xy_m is not None:
            self._camera_moved_xy_m = self._camera_moved_xy_m + delta
        q = q + np.eye(2) * cfg.process_noise_m2_per_s * dt * self._process_noise_factor(
            delta, dt, source)
        self.grid.predict(delta, q, dt)
        self._t_ns = stamp_ns
        self.stats.counters[f'motion_{source}'] += 1
        return source

    def _process_noise_factor(self, delta_xy_m: np.ndarray, dt_s: float, source: str) -> float:
        """Share of the process noise at the predicted speed (FusionConfig)."""
        full = self.config.process_noise_full_speed_mps
        if full <= 0 or source == 'random_walk':
            return 1.0
        return min(1.0, float(np.hypot(*delta_xy_m)) / dt_s / full)

    def _late_fix(self, fix_stamp: int, xy: np.ndarray, R: np.ndarray, yaw_rad: float):
        """A fix older than the belief, carried to the belief's time by the odometry over
        the gap (its uncertainty added to R); None when the gap is longer than
        late_fix_max_s or the odometry does not cover it."""
        if (self._t_ns - fix_stamp) * 1e-9 > self.config.late_fix_max_s:
            return None
        motion = self._odometry_motion(fix_stamp, self._t_ns, yaw_rad)
        if motion is None:
            return None
        delta, q = motion
        return xy + delta, R + q

    def _odometry_motion(self, t0_ns: int, t1_ns: int, yaw_rad: float):
        """(displacement, covariance) over [t0, t1] from the odometry, None when it does
        not cover the interval."""
        if not self._twists:
            return None
        var_yaw = math.radians(self.config.heading_sigma_deg) ** 2
        return integrate_twist(self._twists, t0_ns, t1_ns, yaw_rad, var_yaw,
                               self.config.odometry_max_hold_s)

    def _track_velocity(self):
        if len(self._track) < 3:
            return None
        stamps = np.array([f[0] for f in self._track], np.int64)
        xy = np.stack([f[1] for f in self._track])
        R = np.mean([f[2] for f in self._track], axis=0)
        return track_velocity(stamps, xy, R)

    def _bias_excursion(self, bias_xy_m: np.ndarray) -> bool:
        """True when the expected GNSS error is implausible under its stationary prior."""
        cfg = self.config
        if cfg.bias_excursion_chi2 <= 0 or cfg.gnss_bias_sigma_m <= 0:
            return False
        nis = float(bias_xy_m @ bias_xy_m) / cfg.gnss_bias_sigma_m ** 2
        return nis > cfg.bias_excursion_chi2

    def _fuse_fix(self, xy: np.ndarray, R: np.ndarray) -> bool:
        mean, cov = self.grid.gnss_predictive(R)
        nu = xy - mean
        nis = float(nu @ np.linalg.solve(cov, nu))
        self.stats.nis.append(nis)
        if nis > self.config.gate_chi2:
            self._gated_in_row += 1
            self.stats.counters['fixes_gated'] += 1
            return False
        self._gated_in_row = 0
        self.grid.update_gnss(xy, R)
        self.stats.counters['fixes_fused'] += 1
        return True

    def _fuse_heatmap(self, heatmap: HeatmapMeasurement, weight: float) -> float:
        x, y = self.grid.cell_centres_xy_m()
        density = heatmap.density_at(x, y, self.config.min_outlier_weight)
        if weight != 1.0:
            density = density ** weight
        floor_density = heatmap.floor_density(self.config.min_outlier_weight) ** weight
        # the posterior probability that the frame said nothing: floor / evidence
        evidence = math.exp(self.grid.update_likelihood(density))
        outlier = min(1.0, floor_density / evidence)
        if outlier > 0.5:
            self.stats.counters['camera_outliers'] += 1
        return outlier

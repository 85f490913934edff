"""One camera frame through the localizer: decode, pair, crop, infer, convert, publish.

Runs on the node's inference worker thread. Every way a frame can fail raises ``Rejected``
with a reason key (counted in /diagnostics as ``rejected_<reason>_total``) and a message
naming the problem and its fix (a throttled warning). Reasons: bad_stamp, image_decode,
no_camera_info, bad_camera_info, camera_info_mismatch, fix_no_fix, fix_nan,
fix_out_of_range, fix_stale, fix_future, no_datum, map_coverage, map_source_error,
non_finite_result. Stage timings (decode, pairing, crop, inference, post, fusion, publish)
feed the latency percentiles. With fusion on (``fusion.mode`` filter | gnss), the frame's
single-frame pose and calibrated heatmap go through the node's NodeFusion (the Bayes
filter): ``pose`` is the posterior, ``pose_single`` the frame alone.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
import math
import time

import numpy as np

from geodistill_ros.node.heading import choose_yaw_prior, track_heading
from geodistill_ros.node.messages import ImageDecodeError, image_msg_to_rgb, stamp_to_ns
from geodistill_ros.node.model_loading import accepts_yaw_prior_range, estimates_orientation
from geodistill_ros.node.planar_pose import (
    base_pose_from_camera,
    camera_pose_in_map,
    camera_yaw_prior_in_crop,
)
from geodistill_ros.satellite import MapCoverageError, MapSourceError

TIME_JUMP_NS = 1_000_000_000
"""Image stamps this far behind the previous one mean a clock/bag loop."""


@dataclass(frozen=True)
class Frame:
    """An image message and when it arrived (time.perf_counter seconds)."""

    msg: object
    received_s: float


class Rejected(Exception):
    """A frame that yields no localization: reason key, detail, user-facing message."""

    def __init__(self, reason: str, detail: str, message: str):
        super().__init__(message)
        self.reason, self.detail, self.message = reason, detail, message


_FIX_ADVICE = {
    'no_fix': 'no usable NavSatFix cached (none received, or the receiver reports NO_FIX); '
              'check that the fix topic is remapped and the receiver has a fix',
    'nan': 'the NavSatFix around this image has NaN/inf latitude or longitude; check the '
           'GNSS driver',
    'out_of_range': 'the NavSatFix around this image is outside [-90, 90] x [-180, 180]',
    'stale': 'the newest fix is older than max_fix_age_s; check the fix rate and clocks '
             '(use_sim_time when replaying bags)',
    'future': 'every cached fix is newer than the image by more than max_fix_age_s; check '
              'the camera and GNSS clocks',
}


class LocalizationPipeline:
    """Processes frames for a LocalizerNode (reads its config, state, io and stats)."""

    def __init__(self, node):
        self.node = node
        self._last_stamp_ns: int | None = None
        self._pass_range = accepts_yaw_prior_range(node.localizer)
        self._estimates_yaw = estimates_orientation(node.localizer)
        rotation = getattr(node.localizer, 'yaw_search', 'none') == 'rotation'
        self._auto_search = node.config.yaw_search == 'auto' and rotation
        # the localizer runs a rotation search that takes a range (the yaw tracker's window)
        self._searches = self._pass_range and rotation

    def process(self, frame: Frame) -> None:
        node = self.node
        cfg = node.config
        stages: dict[str, float] = {}
        lap = _Laps(stages)
        stamp_ns = stamp_to_ns(frame.msg.header.stamp)
        if stamp_ns < 0:
            raise Rejected('bad_stamp', f'{stamp_ns} ns', f'image stamp {stamp_ns * 1e-9:.3f} s '
                           'is before 1970 (negative): fix the camera driver\'s clock or stamps')
        self._check_time(stamp_ns)
        try:
            rgb = image_msg_to_rgb(frame.msg, cfg.max_image_pixels)
        except ImageDecodeError as err:
            raise Rejected('image_decode', str(err),
                           f'cannot decode the image on {node.io.image_topic}: {err}; send '
                           'rgb8/bgr8/mono8/rgba8/bgra8 (raw) or jpeg/png (compressed) within '
                           'max_image_pixels') from err
        K = self._intrinsics(rgb.shape[:2]) if cfg.camera_model == 'pinhole' else None
        lap('decode')

        lookup, earlier = node.fix_lookup(stamp_ns, cfg.max_fix_age_s, cfg.track_window_s)
        if not lookup.ok:
            reason = lookup.rejection.value
            raise Rejected(f'fix_{reason}', f'age {lookup.age_s:.3g} s',
                           f'no fix for the image at {stamp_ns * 1e-9:.3f} s ({reason}, nearest '
                           f'fix {lookup.age_s:.3g} s away): {_FIX_ADVICE[reason]}')
        fix, datum = lookup.fix, node.datum
        if datum is None:
            raise Rejected('no_datum', '', 'no map datum yet (datum.from_first_fix waits '
                           'for a valid fix)')
        x_fix, y_fix, up_fix = (float(v) for v in datum.to_enu(
            fix.lat_deg, fix.lon_deg, fix.alt_m if math.isfinite(fix.alt_m) else 0.0))
        track_yaw = None
        if earlier.ok and earlier.fix.stamp_ns < stamp_ns:
            x0, y0, _ = datum.to_enu(earlier.fix.lat_deg, earlier.fix.lon_deg, 0.0)
            track_yaw = track_heading((float(x0), float(y0)), (x_fix, y_fix),
                                      (stamp_ns - earlier.fix.stamp_ns) * 1e-9,
                                      cfg.track_min_speed_mps)
        prior = choose_yaw_prior(cfg, stamp_ns, node.heading, track_yaw,
                                 node.velocity_heading)
        lap('pairing')

        try:
            crop = node.map_source.crop(fix.lat_deg, fix.lon_deg, cfg.crop_size_m,
                                        cfg.crop_size_px, datum=datum)
        except MapCoverageError as err:
            raise Rejected('map_coverage', str(err),
                           f'the map does not cover the fix ({fix.lat_deg:.7f}, '
                           f'{fix.lon_deg:.7f}): {err}') from err
        except MapSourceError as err:
            raise Rejected('map_source_error', str(err), f'map source failed: {err}') from err
        lap('crop')

        kwargs = {}
        if self._auto_search and (self._measured_heading_kept(prior)
                                  or prior.range_deg > cfg.yaw_search_auto_max_range_deg):
            # an INS heading or a GNSS course over ground better than the search (about a
            # degree): the search would only blur it; an unknown heading: a search over the
            # whole circle costs seconds per frame
            kwargs['use_yaw_search'] = False
        window, tracked_yaw = None, False
        if self._searches and kwargs.get('use_yaw_search', True) and node.fusion.tracks_yaw:
            # the yaw tracker narrows the search around the predicted yaw, and while it is
            # confident skips the search on all but every fusion.yaw_search_every-th frame
            window = node.fusion.yaw_window(stamp_ns, prior.yaw_rad, prior.range_deg)
            if not node.fusion.yaw_search_due(window):
                kwargs['use_yaw_search'], tracked_yaw = False, True
        search_yaw, search_range = ((window.centre_rad, window.range_deg) if window is not None
                                    else (prior.yaw_rad, prior.range_deg))
        if self._pass_range:
            kwargs['yaw_prior_range_deg'] = search_range
        result = single_result(node.localizer.localize(
            rgb, crop.image, crop.meters_per_px,
            yaw_prior_rad=camera_yaw_prior_in_crop(search_yaw, cfg.camera_offset, crop),
            K=K, **kwargs))
        lap('inference')

        numbers = np.concatenate([np.ravel(result['offset_en_m']),
                                  np.ravel(result['covariance_en_m2']),
                                  np.ravel([result['yaw_rad'], result['yaw_std_rad'],
                                            result['confidence']])]).astype(np.float64)
        if not np.isfinite(numbers).all():
            raise Rejected('non_finite_result', str(numbers.tolist()),
                           'the localizer returned NaN/inf (check precision and the model)')
        yaw_std_rad = float(result['yaw_std_rad'])
        yaw_source = result.get('yaw_source') or ('orientation_model' if self._estimates_yaw
                                                  else 'prior')
        if tracked_yaw:  # the localizer ran at the tracker's predicted yaw
            yaw_source, yaw_std_rad = 'yaw_tracker', float(window.predicted_std_rad)
        elif yaw_source == 'prior':  # the yaw is the prior: publish the prior's spread,
            # its stated std (a GNSS course, a heading_prior_sigma_deg) or that of its range
            yaw_std_rad = (max(yaw_std_rad, prior_std_rad(prior.range_deg))
                           if prior.std_rad is None else prior.std_rad)
            if prior.source == 'fixed' and prior.range_deg > 0.0:
                node.warn_throttled('no_heading', 'no heading for this frame and the model '
                                    'does not estimate yaw: publish heading_prior or drive '
                                    f'faster than track_min_speed_mps (yaw std '
                                    f'{math.degrees(yaw_std_rad):.0f} deg published)')
        camera = camera_pose_in_map(crop, result['offset_en_m'], result['covariance_en_m2'],
                                    float(result['yaw_rad']), yaw_std_rad ** 2)
        base = base_pose_from_camera(camera, cfg.camera_offset)
        if window is not None and yaw_source == 'rotation_search':
            node.fusion.yaw_update(stamp_ns, window, base.yaw_rad, base.var_yaw_rad2)
        confidence = float(result['confidence'])
        low = confidence < cfg.min_confidence
        publish_pose = not (low and cfg.low_confidence_policy == 'drop')
        if low and publish_pose:
            base = base.inflated(cfg.low_confidence_inflation)
        z_base = (up_fix - cfg.camera_offset.z_m) if math.isfinite(fix.alt_m) else 0.0
        lap('post')

        single = base if publish_pose else None
        fused = node.fusion.step(stamp_ns, base, crop, result if publish_pose else None,
                                 cfg.camera_offset) if node.fusion.active else None
        if single is not None and node.fusion.active:
            # the deployment's own covariance scale (fusion.single_covariance_adapt), widened
            # for a frame that disagrees with the belief (fusion.single_covariance_gate_nis)
            scale = node.fusion.single_covariance_factor()
            single = replace(single, cov_xy_m2=single.cov_xy_m2 * scale)
        lap('fusion')
        node.io.publish(stamp_ns, fused if fused is not None else single, single, z_base, fix,
                        crop, result)
        lap('publish')
        node.stats.localized(confidence, lookup.age_s, low, publish_pose,
                             time.perf_counter() - frame.received_s, stages)
        node.stats.yaw_used(yaw_source, yaw_std_rad, prior.source)
        if low:
            action = ('pose dropped' if not publish_pose else
                      f'covariance inflated x{cfg.low_confidence_inflation:g}')
            node.warn_throttled('low_confidence', f'low confidence {confidence:.3f} < '
                                f'min_confidence {cfg.min_confidence:g}: {action} '
                                '(low_confidence_policy)')

    def _measured_heading_kept(self, prior) -> bool:
        """yaw_search 'auto' keeps a heading topic or GNSS course as it is unless its stated
        std is at least yaw_search_auto_min_sigma_deg (an INS without a stated accuracy,
        heading_prior_sigma_deg 0, is kept)."""
        if prior.source not in ('topic', 'velocity'):
            return False
        min_std = math.radians(self.node.config.yaw_search_auto_min_sigma_deg)
        return prior.std_rad is None or prior.std_rad < min_std

    def _check_time(self, stamp_ns: int) -> None:
        last, self._last_stamp_ns = self._last_stamp_ns, stamp_ns
        if last is not None and stamp_ns < last - TIME_JUMP_NS:
            self.node.stats.time_jump()
            self.node.fusion.reset('time_jump')
            heading = self.node.heading  # one already on the new timeline is kept
            max_age_ns = self.node.config.heading_max_age_s * 1e9
            if heading is None or abs(heading.stamp_ns - stamp_ns) > max_age_ns:
                self.node.clear_heading()
            self.node.get_logger().info(f'image stamps jumped back {(last - stamp_ns) * 1e-9:.1f}'
                                        ' s (bag loop?): heading prior from before the jump '
                                        'cleared')

    def _intrinsics(self, hw: tuple[int, int]) -> np.ndarray:
        calibration, error = self.node.calibration
        topic = self.node.io.camera_info_topic
        if calibration is None:
            if error:
                raise Rejected('bad_camera_info', error, f'CameraInfo on {topic} unusable: '
                               f'{error}')
            raise Rejected('no_camera_info', '', f'no CameraInfo received on {topic}: pinhole '
                           'cameras need intrinsics; remap camera_info to the camera\'s topic')
        if (calibration.height_px, calibration.width_px) != tuple(hw):
            raise Rejected('camera_info_mismatch', f'{hw} vs {calibration.height_px}x'
                           f'{calibration.width_px}', f'image is {hw[1]}x{hw[0]} but '
                           f'CameraInfo on {topic} is {calibration.width_px}x'
                           f'{calibration.height_px}: remap the matching camera_info')
        return calibration.K_px


def single_result(result) -> dict:
    """A Localizer result (batch of one, torch tensors) as numpy / floats by field name."""
    if callable(getattr(result, 'item', None)):
        return result.item(0)
    return {name: getattr(result, name) for name in (
        'yaw_rad', 'yaw_std_rad', 'offset_en_m', 'covariance_en_m2', 'confidence',
        'heatmap_prob', 'heatmap_cell_m')}


def prior_std_rad(range_deg: float) -> float:
    """Standard deviation of a yaw uniform over +-range_deg (range / sqrt(3)), radians."""
    return math.radians(range_deg) / math.sqrt(3.0)


class _Laps:
    """Records the seconds since the previous lap under a stage name."""

    def __init__(self, stages: dict[str, float]):
        self.stages, self.last = stages, time.perf_counter()

    def __call__(self, stage: str) -> None:
        now = time.perf_counter()
        self.stages[stage], self.last = now - self.last, now

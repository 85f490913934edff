"""Fit a location model's heatmap calibration on drive bags (``train/calibrate.py``).

Each bag (geodistill-kitti2bag, or any bag the replay reads) runs through the node's own
pipeline offline (replay.offline, identity calibration: the fit sees the model's raw
heatmaps); every localized frame becomes a ``CalibrationSample`` in its crop's north-up
frame: the heatmap's base log-probabilities, its peak, the camera position the noisy fix
implies (the crop is centred on the fix; the camera mounting rotated by the frame's yaw)
with the fix covariance (stated, else ``fusion.gnss_sigma_m``), and, when the bag has
ground truth, the true camera position. ``method`` 'truth' maximises the likelihood of the
truth, 'gnss' is label-free (filtering.calibration_fit). The result goes into the
checkpoint's config.json (``--in-place``) or a copy of the checkpoint (``--out``).
"""
from __future__ import annotations

from dataclasses import replace
import logging
import math
from pathlib import Path

import numpy as np

from geodistill_core.filtering import CALIBRATION_KEY, HeatmapCalibration
from geodistill_core.filtering.calibration_fit import (
    CalibrationSample,
    fit_from_gnss,
    fit_with_truth,
)
from geodistill_core.models.checkpoint import update_checkpoint_config
from geodistill_ros.bags import player as bp
from geodistill_ros.replay.evaluate import node_parameters
from geodistill_ros.replay.offline import run_offline
from geodistill_ros.replay.records import ReplayConfig

LOG = logging.getLogger(__name__)


def _rot(angle_rad: float) -> np.ndarray:
    c, s = math.cos(angle_rad), math.sin(angle_rad)
    return np.array([[c, -s], [s, c]])


def collect_samples(bag_path: Path, map_path: Path, checkpoint: str, *,
                    max_frames: int | None = None, heading_noise_deg: float = 0.0,
                    seed: int = 0, device: str = 'cpu') -> list[CalibrationSample]:
    """The frames of one bag as calibration samples (module doc)."""
    bag = bp.open_drive_bag(bag_path)
    config = ReplayConfig(bag=Path(bag_path), map_path=Path(map_path), out_dir=Path('.'),
                          checkpoint=checkpoint, device=device, offline=True,
                          max_frames=max_frames, heading_noise_deg=heading_noise_deg,
                          seed=seed, plots=False,
                          params={'fusion.mode': 'none'})
    values = node_parameters(bag, config)
    frames = []

    def hook(stamp_ns, single, fix, crop, result) -> None:
        if single is None or result.get('heatmap_log_prob_base') is None:
            return
        frames.append((stamp_ns, single, fix, crop, result))

    run_offline(bag, values, config, frame_hook=hook)
    if not frames:
        return []
    mount = bag.sidecar.get('node_camera_offset', {})
    lever_base = np.array([mount.get('x_m', 0.0), mount.get('y_m', 0.0)])
    truth_xy, truth_yaw = bp.read_truth(bag).at(np.array([f[0] for f in frames], np.int64))
    gnss_sigma = float(values.get('fusion.gnss_sigma_m', 5.0))
    samples = []
    for k, (_, single, fix, crop, result) in enumerate(frames):
        to_crop = _rot(-crop.map_from_crop_yaw_rad)
        centre = np.array([crop.centre_x_map_m, crop.centre_y_map_m])
        fix_camera = centre + _rot(single.yaw_rad) @ lever_base  # the crop is on the fix
        R = (np.array(fix.covariance_enu_m2[:2, :2]) if fix.has_covariance
             else np.eye(2) * gnss_sigma ** 2)
        truth = None
        if np.isfinite(truth_xy[k]).all():
            truth_camera = truth_xy[k] + _rot(float(truth_yaw[k])) @ lever_base
            truth = to_crop @ (truth_camera - centre)
        samples.append(CalibrationSample(
            log_prob=np.asarray(result['heatmap_log_prob_base'], np.float32),
            cell_m=float(result['heatmap_cell_m']),
            peak_en_m=np.asarray(result['offset_en_m'], np.float64),
            truth_en_m=truth, fix_en_m=to_crop @ (fix_camera - centre),
            fix_cov_en_m2=to_crop @ R @ to_crop.T))
    return samples


def save_samples(path: Path, samples: list[CalibrationSample]) -> None:
    """Samples to one .npz (refit without running the model again: --samples)."""
    nan2 = np.full(2, np.nan)
    np.savez_compressed(
        path, log_prob=np.stack([s.log_prob for s in samples]),
        cell_m=np.array([s.cell_m for s in samples]),
        peak=np.stack([s.peak_en_m for s in samples]),
        truth=np.stack([nan2 if s.truth_en_m is None else s.truth_en_m for s in samples]),
        fix=np.stack([nan2 if s.fix_en_m is None else s.fix_en_m for s in samples]),
        fix_cov=np.stack([np.full((2, 2), np.nan) if s.fix_cov_en_m2 is None
                          else s.fix_cov_en_m2 for s in samples]),
        drive=np.array(['' if s.drive is None else s.drive for s in samples]))


def load_samples(path: Path) -> list[CalibrationSample]:
    with np.load(path) as npz:
        data = {key: npz[key] for key in npz.files}  # each npz[key] decompresses anew

    def opt(value):
        return None if np.isnan(value).any() else value
    drives = data.get('drive')  # absent in files saved before drives were recorded
    return [CalibrationSample(data['log_prob'][k], float(data['cell_m'][k]), data['peak'][k],
                              opt(data['truth'][k]), opt(data['fix'][k]),
                              opt(data['fix_cov'][k]),
                              None if drives is None or not drives[k] else str(drives[k]))
            for k in range(len(data['cell_m']))]


def calibrate(checkpoint: str, drives: list[tuple[Path, Path]], method: str, *,
              max_frames: int | None = None, heading_noise_deg: float = 0.0,
              device: str = 'cpu', samples_file: Path | None = None) -> HeatmapCalibration:
    """Collect samples from every (bag, map) and fit with ``method`` 'truth' | 'gnss'.

    samples_file: an .npz of samples; read when it exists (no model run), else written
    after collecting."""
    if method not in ('truth', 'gnss'):  # before minutes of collecting
        raise ValueError(f"method must be 'truth' or 'gnss', got {method!r}")
    samples = []
    if samples_file is not None and Path(samples_file).is_file():
        samples = load_samples(samples_file)
        LOG.info('%s: %d frames (saved samples)', samples_file, len(samples))
    else:
        for bag_path, map_path in drives:
            found = collect_samples(bag_path, map_path, checkpoint, max_frames=max_frames,
                                    heading_noise_deg=heading_noise_deg, device=device)
            found = [replace(s, drive=Path(bag_path).name) for s in found]
            LOG.info('%s: %d frames', bag_path, len(found))
            samples += found
        if samples_file is not None and samples:
            save_samples(samples_file, samples)
    if not samples:
        raise ValueError('no localized frame in the given bags: nothing to calibrate on')
    fitted_on = ', '.join(str(Path(b).name) for b, _ in drives)
    if samples_file is not None:
        fitted_on += f' (frames saved in {Path(samples_file).name})'
    fit = fit_with_truth if method == 'truth' else fit_from_gnss
    if method == 'truth' and any(s.truth_en_m is None for s in samples):
        raise ValueError('method truth needs ground truth in every bag (the '
                         '/geodistill/ground_truth/pose topic); use --method gnss')
    return fit(samples, fitted_on=fitted_on)


def write_calibration(checkpoint: Path, calibration: HeatmapCalibration,
                      out: Path | None = None) -> Path:
    """The calibration into checkpoint/config.json (out None) or a copy at out."""
    def set_calibration(record: dict) -> None:
        record[CALIBRATION_KEY] = calibration.to_dict()
    return update_checkpoint_config(checkpoint, set_calibration, out)

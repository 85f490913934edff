"""Saved calibration samples (train/calibrate.py --samples): a refit from the file sees the
same frames, with their drive names, as the run that collected them."""
import numpy as np
import pytest

from geodistill_core.filtering.calibration_fit import CalibrationSample
from geodistill_ros.replay.calibration import load_samples, save_samples


def frame(k, drive, truth=True, fix=True):
    rng = np.random.default_rng(k)
    lp = rng.normal(size=(5, 5)).astype(np.float32)
    return CalibrationSample(lp - np.log(np.exp(lp).sum()), 0.5, rng.normal(size=2),
                             rng.normal(size=2) if truth else None,
                             rng.normal(size=2) if fix else None,
                             np.eye(2) * 4.0 if fix else None, drive)


def test_round_trip_keeps_every_field_and_the_drive(tmp_path):
    samples = [frame(0, '2024_06_03'), frame(1, '2024_06_03', truth=False),
               frame(2, '2024_06_04', fix=False), frame(3, None)]
    save_samples(tmp_path / 's.npz', samples)
    back = load_samples(tmp_path / 's.npz')
    assert [s.drive for s in back] == ['2024_06_03', '2024_06_03', '2024_06_04', None]
    for a, b in zip(samples, back, strict=True):
        np.testing.assert_array_equal(a.log_prob, b.log_prob)
        assert a.cell_m == b.cell_m
        for field in ('peak_en_m', 'truth_en_m', 'fix_en_m', 'fix_cov_en_m2'):
            x, y = getattr(a, field), getattr(b, field)
            assert (x is None) == (y is None), field
            if x is not None:
                np.testing.assert_array_equal(x, y)


def test_files_saved_before_drives_were_recorded_still_load(tmp_path):
    sample = frame(0, 'x')
    np.savez_compressed(tmp_path / 'old.npz', log_prob=sample.log_prob[None],
                        cell_m=np.array([0.5]), peak=sample.peak_en_m[None],
                        truth=sample.truth_en_m[None], fix=sample.fix_en_m[None],
                        fix_cov=sample.fix_cov_en_m2[None])
    (back,) = load_samples(tmp_path / 'old.npz')
    assert back.drive is None
    assert back.cell_m == pytest.approx(0.5)

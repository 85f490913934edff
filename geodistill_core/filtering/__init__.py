"""Sequence localisation without ROS: heatmap calibration, motion, the grid Bayes filter.

calibration       HeatmapCalibration (temperature, outlier weight) and its checkpoint block
calibration_fit   fitting it with ground truth or label-free from the GNSS fixes
heatmap_likelihood a calibrated heatmap as a likelihood over the map-frame grid
motion            odometry (twist) integration and the fix-track velocity
grid_filter       the 2-D histogram filter with a per-cell GNSS error (Rao-Blackwellised)
sequence          SequenceFusion: fixes + odometry + heatmaps over time, resets, gating
covariance_scale  InnovationScale: the single-frame covariance scale from the innovations;
                  gate_inflation: one frame's covariance widened when it fails the gate
yaw_tracker       YawTracker: (yaw, yaw rate) Kalman filter narrowing the rotation search
"""
from geodistill_core.filtering.calibration import (
    CALIBRATION_KEY,
    HeatmapCalibration,
    calibration_from_record,
)
from geodistill_core.filtering.covariance_scale import (
    CovarianceScaleConfig,
    InnovationScale,
    gate_inflation,
)
from geodistill_core.filtering.grid_filter import GnssErrorModel, GridEstimate, GridFilter
from geodistill_core.filtering.heatmap_likelihood import HeatmapMeasurement
from geodistill_core.filtering.motion import (
    TwistSample,
    integrate_twist,
    integrate_yaw_rate,
    track_velocity,
)
from geodistill_core.filtering.sequence import (
    FusionConfig,
    FusionOutput,
    SequenceFusion,
)
from geodistill_core.filtering.yaw_tracker import YawTracker, YawTrackerConfig, YawWindow

__all__ = ['CALIBRATION_KEY', 'CovarianceScaleConfig', 'FusionConfig', 'FusionOutput',
           'GnssErrorModel', 'GridEstimate', 'GridFilter', 'HeatmapCalibration',
           'HeatmapMeasurement', 'InnovationScale', 'SequenceFusion', 'TwistSample',
           'YawTracker', 'YawTrackerConfig', 'YawWindow', 'calibration_from_record',
           'gate_inflation', 'integrate_twist', 'integrate_yaw_rate', 'track_velocity']

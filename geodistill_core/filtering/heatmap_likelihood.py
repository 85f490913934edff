"""A calibrated heatmap as a likelihood over the filter's map-frame grid (numpy).

The heatmap is the camera position's probability per cell of a north-up satellite crop
(heatmap.py convention: row 0 = north, cell (r, c) at east = (c - (w - 1) / 2) cell_m,
north = -(r - (h - 1) / 2) cell_m from the crop centre), already calibrated
(filtering.calibration: it includes the uniform floor). The filter's state is base_link,
so a grid cell x (base_link) is looked up where the camera would be, x + lever (the camera
mounting rotated into the map), in the crop's frame (rotated from the map by the meridian
convergence, ``map_from_crop_yaw_rad``). Bilinear interpolation of the density
(probability / cell area); outside the crop the density is the floor's, because the
model's output says nothing about places it did not see.
"""
from __future__ import annotations

from dataclasses import dataclass
import math

import cv2
import numpy as np


@dataclass(frozen=True)
class HeatmapMeasurement:
    """prob (h, w): calibrated per-cell probability (sums to 1). cell_m: metres per cell.
    crop_centre_xy_m (2,): the crop centre in the map. map_from_crop_yaw_rad: crop -> map
    rotation. lever_xy_m (2,): camera minus base_link position, in the map frame.
    floor_prob: the per-cell probability of the uniform floor (outlier weight / cells)."""

    prob: np.ndarray
    cell_m: float
    crop_centre_xy_m: np.ndarray
    map_from_crop_yaw_rad: float = 0.0
    lever_xy_m: tuple[float, float] = (0.0, 0.0)
    floor_prob: float = 0.0

    def floor_density(self, min_outlier_weight: float = 0.0) -> float:
        """Density (1/m^2) of the uniform floor, with the further mixture of density_at."""
        h, w = np.asarray(self.prob).shape
        floor = ((1.0 - min_outlier_weight) * self.floor_prob
                 + min_outlier_weight / (h * w))
        return floor / (self.cell_m * self.cell_m)

    def density_at(self, x_m: np.ndarray, y_m: np.ndarray,
                   min_outlier_weight: float = 0.0) -> np.ndarray:
        """Likelihood density (1/m^2) of base_link at map points x_m, y_m (any shape).

        min_outlier_weight: a further uniform mixture (1 - a) prob + a / cells, so that even
        an uncalibrated heatmap cannot veto a place (robustness of the filter).
        """
        prob = np.asarray(self.prob, np.float64)
        h, w = prob.shape
        area = self.cell_m * self.cell_m
        floor = self.floor_density(min_outlier_weight) * area
        if min_outlier_weight > 0.0:
            prob = (1.0 - min_outlier_weight) * prob + min_outlier_weight / (h * w)
        dx = np.asarray(x_m, np.float64) + (self.lever_xy_m[0] - self.crop_centre_xy_m[0])
        dy = np.asarray(y_m, np.float64) + (self.lever_xy_m[1] - self.crop_centre_xy_m[1])
        c, s = math.cos(self.map_from_crop_yaw_rad), math.sin(self.map_from_crop_yaw_rad)
        east, north = c * dx + s * dy, -s * dx + c * dy  # R(-yaw) (dx, dy)
        col = (east / self.cell_m + 0.5 * (w - 1)).astype(np.float32)
        row = (-north / self.cell_m + 0.5 * (h - 1)).astype(np.float32)
        # bilinear, constant floor outside (cv2.remap: x = column, y = row)
        value = cv2.remap(prob.astype(np.float32), col, row, interpolation=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=float(floor))
        return np.maximum(value.astype(np.float64), floor) / area

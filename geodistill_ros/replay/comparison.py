"""The replay's side-by-side table: GNSS input, single-frame and published (fused) pose.

``side_by_side`` condenses the trajectory metrics (trajectory_metrics.evaluate_trajectory
of the pose and of pose_single) into one block of report.json (``comparison``), and
``windows_against_gnss`` checks the published pose against the GNSS input window by
window (the sequence filter must never be worse than its input for long).
"""
from __future__ import annotations

import numpy as np

from geodistill_ros.replay.trajectory_metrics import FrameRecord, stack_records


def side_by_side(fused: dict, single: dict | None, records: list[FrameRecord],
                 window_s: float = 10.0) -> dict:
    """GNSS input, single-frame and published (fused) pose on one table (every frame):
    position (mean, median, R@1/3/5 m), |lateral| and |longitudinal| means, consistency
    (NEES mean, inside the 1- and 2-sigma ellipses, the effective number of independent
    frames and the intervals a consistent estimator would fall in), and the published pose
    against the GNSS over consecutive windows of window_s seconds (windows where it is
    worse)."""
    def row(m: dict | None, gnss: bool = False) -> dict | None:
        if m is None:
            return None
        block = m['gnss'] if gnss else m
        out = {k: block['position'].get(k) for k in ('mean', 'median', 'recall_1m',
                                                     'recall_3m', 'recall_5m')}
        out['frames'] = m['frames'] if gnss else m['outputs']
        out['lateral_mean'] = block['lateral'].get('mean')
        out['longitudinal_mean'] = block['longitudinal'].get('mean')
        if not gnss:
            c = m['consistency']
            out.update(nees_mean=c.get('nees_mean'), inside_68=c.get('inside_1sigma'),
                       inside_95=c.get('inside_2sigma'),
                       effective_samples=c.get('effective_samples'),
                       inside_95_interval=c.get('inside_2sigma_interval_95'),
                       nees_mean_interval=c.get('nees_mean_interval_95'))
        return out
    return {'gnss_input': row(fused, gnss=True), 'single_frame': row(single),
            'published': row(fused), 'windows': windows_against_gnss(records, window_s)}


def windows_against_gnss(records: list[FrameRecord], window_s: float = 10.0) -> dict:
    """Mean published error against mean GNSS error over consecutive windows."""
    a = stack_records(records)
    if not a.stamps_ns.size:
        return {'window_s': window_s, 'count': 0, 'worse_than_gnss': 0, 'worst_ratio': None}
    t = (a.stamps_ns - a.stamps_ns.min()) * 1e-9
    err = np.linalg.norm(a.estimate_xy_m - a.truth_xy_m, axis=1)
    gnss = np.linalg.norm(a.gnss_xy_m - a.truth_xy_m, axis=1)
    ratios = []
    for k in range(int(t.max() // window_s) + 1):
        inside = (t >= k * window_s) & (t < (k + 1) * window_s) & np.isfinite(err)
        if inside.sum() >= 2 and np.isfinite(gnss[inside]).all():
            ratios.append(float(err[inside].mean() / max(gnss[inside].mean(), 1e-9)))
    return {'window_s': window_s, 'count': len(ratios),
            'worse_than_gnss': int(sum(r > 1.0 for r in ratios)),
            'worst_ratio': max(ratios, default=None)}

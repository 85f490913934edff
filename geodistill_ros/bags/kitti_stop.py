"""A KITTI raw drive with a stop inserted: the vehicle parks at one frame for a while.

Vehicles stop (traffic lights, junctions); the synthetic drives do not. ``insert_stop``
writes a copy of a drive in which the vehicle stands at frame ``at_frame`` for ``stop_s``
seconds: that frame's image is repeated at the drive's frame interval (a parked camera sees
the same street) and every later frame is shifted by the stop. A frame's velocities move
the vehicle to the next frame (a twist integrated forward, zero-order hold, as the node's
filter does), so the frames that stand before another standing frame get the OXTS record
with every velocity, acceleration and angular rate zero, and the last standing frame keeps
the original record of ``at_frame``: the motion to the next frame. (An instant stop and
start: the odometry agrees with the ground truth on every interval.) Frames are renumbered
from 0, and ``image_02/timestamps.txt`` and ``oxts/timestamps.txt`` keep their per-frame
offsets. The copy lives next to the original (``<date>/<other drive>_sync``) so it shares
the date's ``calib_cam_to_cam.txt``; a panorama drive's ``image_02/camera.json`` marker is
copied. The ground truth of a bag converted from it (``geodistill-kitti2bag``) is therefore
exact during the stop, and its GNSS noise is drawn per frame as on any drive.

    python -m geodistill_ros.bags.kitti_stop DRIVE_DIR OUT_DRIVE_DIR --at-frame 150 --stop-s 30
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
import os
from pathlib import Path
import shutil

import numpy as np

from geodistill_core.data.oxts import OxtsRecord, format_kitti_timestamp, format_oxts_line
from geodistill_ros.bags.kitti_drive import read_kitti_drive

logger = logging.getLogger(__name__)

_MOTION_FIELDS = ('vn', 've', 'vf', 'vl', 'vu', 'ax', 'ay', 'az', 'af', 'al', 'au', 'wx', 'wy',
                  'wz', 'wf', 'wl', 'wu')


def parked(record: OxtsRecord) -> OxtsRecord:
    """The same pose with every velocity, acceleration and angular rate zero."""
    return dataclasses.replace(record, **{name: 0.0 for name in _MOTION_FIELDS})


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:  # another file system, or links not allowed
        shutil.copyfile(src, dst)


def insert_stop(drive_dir: str | Path, out_dir: str | Path, at_frame: int,
                stop_s: float) -> Path:
    """Write the drive with a stop of stop_s seconds at frame index at_frame (module doc)
    to out_dir, a new folder beside drive_dir (same date folder); returns out_dir."""
    drive = read_kitti_drive(drive_dir)
    frames = drive.frames
    src, out = Path(drive_dir), Path(out_dir)
    if not 0 <= at_frame < len(frames):
        raise ValueError(f'at_frame must index one of the {len(frames)} frames, got {at_frame}')
    if not (stop_s > 0 and np.isfinite(stop_s)):
        raise ValueError(f'stop_s must be a positive number of seconds, got {stop_s}')
    if out.resolve().parent != src.resolve().parent:
        raise ValueError(f'{out} must sit beside {src} (same date folder: the drive reads '
                         'its calib_cam_to_cam.txt from there)')
    if out.exists():
        raise FileExistsError(f'{out} exists; remove it or choose another name')
    stamps = np.array([f.image_stamp_ns for f in frames], np.int64)
    if len(frames) < 2 or not (np.diff(stamps) > 0).all():
        raise ValueError(f'{src}: need at least two frames with increasing image stamps')
    period_ns = int(np.median(np.diff(stamps)))
    n_stop = max(1, int(round(stop_s * 1e9 / period_ns)))
    # (source frame, oxts record, shift of its stamps) for every output frame
    stand = frames[at_frame]
    plan = [(f, f.oxts, 0) for f in frames[:at_frame]]
    plan += [(stand, parked(stand.oxts), k * period_ns) for k in range(n_stop)]
    plan += [(stand, stand.oxts, n_stop * period_ns)]   # drives off to the next frame
    plan += [(f, f.oxts, n_stop * period_ns) for f in frames[at_frame + 1:]]
    for sub in ('image_02/data', 'oxts/data'):
        (out / sub).mkdir(parents=True)
    marker = src / 'image_02' / 'camera.json'
    if marker.is_file():
        shutil.copyfile(marker, out / 'image_02' / 'camera.json')
    width = len(frames[0].name)
    image_lines, oxts_lines = [], []
    for index, (frame, record, shift_ns) in enumerate(plan):
        name = f'{index:0{width}d}'
        _link_or_copy(frame.image_path, out / 'image_02' / 'data' / f'{name}.png')
        (out / 'oxts' / 'data' / f'{name}.txt').write_text(format_oxts_line(record) + '\n')
        image_lines.append(format_kitti_timestamp(frame.image_stamp_ns + shift_ns))
        oxts_lines.append(format_kitti_timestamp(frame.oxts_stamp_ns + shift_ns))
    (out / 'image_02' / 'timestamps.txt').write_text('\n'.join(image_lines) + '\n')
    (out / 'oxts' / 'timestamps.txt').write_text('\n'.join(oxts_lines) + '\n')
    logger.info('%s: %d frames, parked %d frames (%.1f s) at frame %d of %s', out, len(plan),
                n_stop, n_stop * period_ns * 1e-9, at_frame, src)
    return out


def main(args=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('drive_dir', type=Path)
    p.add_argument('out_dir', type=Path, help='a new drive folder beside drive_dir')
    p.add_argument('--at-frame', type=int, required=True, help='the frame index to stop at')
    p.add_argument('--stop-s', type=float, required=True, help='how long to stand, seconds')
    ns = p.parse_args(args)
    logging.basicConfig(level=logging.INFO, format='%(levelname)s %(name)s: %(message)s')
    insert_stop(ns.drive_dir, ns.out_dir, ns.at_frame, ns.stop_s)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())

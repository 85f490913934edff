"""KITTI raw drive -> rosbag2 for replaying through the localizer (no rclpy needed).

``geodistill-kitti2bag <drive_dir> <out_bag>`` (or ``convert_drive``) writes, with the
rosbags library (format version 8, sqlite3 by default: plays on Humble and newer; mcap on
request):

=============================================  ===============================  ==========
topic                                          type (frame_id)                  stamp
=============================================  ===============================  ==========
/kitti/camera_color_left/image_raw             sensor_msgs/Image rgb8           image_02
                                               (camera_color_left)
/kitti/camera_color_left/image_raw/compressed  sensor_msgs/CompressedImage      image_02
                                               JPEG (camera_color_left)
/kitti/camera_color_left/camera_info           sensor_msgs/CameraInfo           image_02
                                               (camera_color_left)
/kitti/oxts/gps/fix                            sensor_msgs/NavSatFix (gps),     oxts
                                               ground truth
/kitti/oxts/gps/fix_noisy                      sensor_msgs/NavSatFix (gps),     oxts
                                               the input
/tf_static                                     tf2_msgs/TFMessage, once:        first
                                               base_link -> gps, camera         stamp
/geodistill/ground_truth/pose                  geometry_msgs/PoseStamped (map)  oxts
/kitti/oxts/twist                              geometry_msgs/                   oxts
                                               TwistWithCovarianceStamped
                                               (base_link), odometry
=============================================  ===============================  ==========

(``image_raw`` or, with ``--compressed``, ``image_raw/compressed`` (JPEG), never both.)
Stamps are the drive's ``timestamps.txt`` read as UTC to the nanosecond; the bag's log time
of each message equals its header stamp. ``/clock`` is not recorded: ``ros2 bag play
--clock`` generates it. ``/tf_static`` is offered TRANSIENT_LOCAL (depth 1) in the bag's
``offered_qos_profiles`` so the player republishes it latched; the other topics are offered
RELIABLE / VOLATILE.

Ground truth: the fix is the OXTS position with covariance pos_accuracy^2; the pose is
``base_link`` (the OXTS GPS/IMU point, see ``geodistill_ros.bags.kitti_drive``) in ``map``, ENU
metres about the datum (the first fix, or ``--datum lat,lon[,alt]``), with the OXTS
roll/pitch/yaw. The noisy fix is the true fix plus seeded ``gnss_noise`` applied in the map
frame. The twist is the OXTS forward/leftward velocity and yaw rate plus seeded
``odometry_noise`` (the node's odometry input, fusion.odometry twist), its covariance the
noise's. ``<out_bag>/geodistill_drive.json`` records the datum, noise, seed, frames, the
camera model and the camera mount so a replay can reproduce and configure the node.

Panorama drives (``--camera-model``, default auto: the drive's ``image_02/camera.json``
marker, see ``bags.camera``) get the same topics; their ``camera_info`` is uncalibrated
(K = 0, distortion_model 'equirectangular') and the sidecar says ``camera_model:
panorama``.
"""
from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
import shutil

import numpy as np
from rosbags.interfaces import (
    Qos,
    QosDurability,
    QosHistory,
    QosLiveliness,
    QosReliability,
    QosTime,
)
from rosbags.rosbag2 import StoragePlugin, Writer
from tqdm import tqdm

from geodistill_core.data.transforms import read_rgb_uint8
from geodistill_core.geodesy import LocalEnu
from geodistill_ros.bags import messages as bm
from geodistill_ros.bags.camera import CAMERA_CHOICES, BagCamera, resolve_bag_camera
from geodistill_ros.bags.gnss_noise import GnssNoiseConfig, gnss_noise_enu_m
from geodistill_ros.bags.kitti_drive import (
    BASE_FRAME,
    CAMERA_FRAME,
    GPS_FRAME,
    MAP_FRAME,
    KittiDrive,
    fix_covariance_enu_m2,
    quaternion_xyzw_from_rpy,
    read_kitti_drive,
)
from geodistill_ros.bags.odometry_noise import OdometryNoiseConfig
from geodistill_ros.bags.odometry_noise import odometry_noise as odometry_noise_draws

logger = logging.getLogger(__name__)

BAG_VERSION = 8
STORAGES = {'sqlite3': StoragePlugin.SQLITE3, 'mcap': StoragePlugin.MCAP}
SIDECAR_NAME = 'geodistill_drive.json'
TOPICS = {
    'image': '/kitti/camera_color_left/image_raw',
    'image_compressed': '/kitti/camera_color_left/image_raw/compressed',
    'camera_info': '/kitti/camera_color_left/camera_info',
    'fix': '/kitti/oxts/gps/fix',
    'fix_noisy': '/kitti/oxts/gps/fix_noisy',
    'tf_static': '/tf_static',
    'ground_truth_pose': '/geodistill/ground_truth/pose',
    'twist': '/kitti/oxts/twist',
}
_MSGTYPES = {'image': bm.IMAGE, 'image_compressed': bm.COMPRESSED_IMAGE,
             'camera_info': bm.CAMERA_INFO, 'fix': bm.NAV_SAT_FIX, 'fix_noisy': bm.NAV_SAT_FIX,
             'tf_static': bm.TF_MESSAGE, 'ground_truth_pose': bm.POSE_STAMPED,
             'twist': bm.TWIST_WITH_COVARIANCE_STAMPED}


def offered_qos(transient_local: bool) -> Qos:
    """RELIABLE KEEP_LAST; TRANSIENT_LOCAL depth 1 (latched) or VOLATILE depth 10.

    Durations (0, 0) are RMW_DURATION_UNSPECIFIED, i.e. the defaults (infinite).
    """
    default = QosTime(0, 0)
    return Qos(QosHistory.KEEP_LAST, 1 if transient_local else 10, QosReliability.RELIABLE,
               QosDurability.TRANSIENT_LOCAL if transient_local else QosDurability.VOLATILE,
               default, default, QosLiveliness.AUTOMATIC, default, False)


def parse_datum(text: str) -> tuple[float, float, float]:
    """'lat,lon' or 'lat,lon,alt' (degrees, degrees, metres) -> (lat, lon, alt)."""
    try:
        values = [float(v) for v in text.split(',')]
    except ValueError:
        raise ValueError(f'datum must be "lat,lon[,alt]" in degrees/metres, got {text!r}') \
            from None
    if len(values) not in (2, 3):
        raise ValueError(f'datum must be "lat,lon[,alt]", got {text!r}')
    return values[0], values[1], values[2] if len(values) == 3 else 0.0


def drive_sidecar(drive: KittiDrive, *, storage: str, compressed: bool,
                  noise: GnssNoiseConfig, seed: int, datum: tuple[float, float, float],
                  datum_source: str, jpeg_quality: int, camera: BagCamera,
                  odometry_noise: OdometryNoiseConfig | None = None) -> dict:
    """What a replay needs to reproduce and interpret the bag (JSON-ready)."""
    frames = drive.frames
    return {
        'format': 'geodistill_drive', 'format_version': 1,
        'source_drive': str(drive.drive_dir.resolve()), 'date': drive.date,
        'drive': drive.drive, 'frame_count': len(frames),
        'first_frame': frames[0].name, 'last_frame': frames[-1].name,
        'first_stamp_ns': min(frames[0].image_stamp_ns, frames[0].oxts_stamp_ns),
        'last_stamp_ns': max(frames[-1].image_stamp_ns, frames[-1].oxts_stamp_ns),
        'bag_version': BAG_VERSION, 'storage': storage, 'compressed': compressed,
        'jpeg_quality': jpeg_quality if compressed else None,
        'seed': int(seed), 'noise': noise.to_dict(),
        'odometry_noise': (odometry_noise or OdometryNoiseConfig()).to_dict(),
        'datum': {'lat_deg': datum[0], 'lon_deg': datum[1], 'alt_m': datum[2],
                  'source': datum_source},
        'frames': {'map': MAP_FRAME, 'base': BASE_FRAME, 'gps': GPS_FRAME,
                   'camera': CAMERA_FRAME},
        'base_link': 'the OXTS GPS/IMU point, OXTS attitude (x forward, y left, z up)',
        'camera_model': camera.camera_model,
        'node_camera_offset': camera.mount.node_camera_offset(),
        'topics': {role: topic for role, topic in TOPICS.items()
                   if role != ('image' if compressed else 'image_compressed')},
    }


def _existing_sidecar(out: Path) -> dict | None:
    path = out / SIDECAR_NAME
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def convert_drive(drive_dir: str | Path, out_bag: str | Path, *, storage: str = 'sqlite3',
                  compressed: bool = False, jpeg_quality: int = 90,
                  noise: GnssNoiseConfig | None = None, seed: int = 0,
                  datum: tuple[float, float, float] | None = None,
                  max_frames: int | None = None, overwrite: bool = False,
                  camera_model: str = 'auto',
                  odometry_noise: OdometryNoiseConfig | None = None) -> Path:
    """Convert one KITTI raw drive to a rosbag2 at ``out_bag`` (module doc); returns it.

    A bag already at ``out_bag`` with the same ``geodistill_drive.json`` is kept (rerun:
    nothing to do); a different one is an error unless ``overwrite``. ``noise``: None is
    ``GnssNoiseConfig()`` (5 m white noise). The bag is written under
    ``<parent>/.<name>.partial/`` and moved to ``out_bag`` when complete (removed when the
conversion fails). camera_model:
    'auto' (the drive's marker, else pinhole), 'pinhole' or 'panorama' (``bags.camera``).
    """
    noise = GnssNoiseConfig() if noise is None else noise
    odometry_noise = OdometryNoiseConfig() if odometry_noise is None else odometry_noise
    if storage not in STORAGES:
        raise ValueError(f'storage must be one of {sorted(STORAGES)}, got {storage!r}')
    camera = resolve_bag_camera(drive_dir, camera_model)
    drive = read_kitti_drive(drive_dir, max_frames)
    first = drive.frames[0].oxts
    datum_source = 'first_fix' if datum is None else 'given'
    datum = (first.lat, first.lon, first.alt) if datum is None else tuple(map(float, datum))
    sidecar = drive_sidecar(drive, storage=storage, compressed=compressed, noise=noise,
                            seed=seed, datum=datum, datum_source=datum_source,
                            jpeg_quality=jpeg_quality, camera=camera,
                            odometry_noise=odometry_noise)
    out = Path(out_bag)
    if out.exists():
        if not overwrite and _existing_sidecar(out) == sidecar:
            logger.info('%s already holds this conversion; nothing to do', out)
            return out
        if not overwrite:
            raise FileExistsError(f'{out} exists and holds a different conversion; remove it '
                                  'or pass overwrite=True (--overwrite)')
        if not (out / 'metadata.yaml').is_file():
            raise FileExistsError(f'{out} exists and is not a rosbag2 (no metadata.yaml); '
                                  'refusing to delete it')
        shutil.rmtree(out)
    staging = out.parent / f'.{out.name}.partial'  # the bag's files keep out's name
    if staging.exists():
        logger.warning('removing the unfinished conversion %s', staging)
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    partial = staging / out.name
    try:
        _write_bag(drive, partial, storage=storage, compressed=compressed,
                   jpeg_quality=jpeg_quality, noise=noise, seed=seed, datum=LocalEnu(*datum),
                   camera=camera, odometry_noise=odometry_noise)
        (partial / SIDECAR_NAME).write_text(json.dumps(sidecar, indent=2) + '\n')
        partial.rename(out)
    finally:  # a failed or interrupted conversion leaves nothing behind
        shutil.rmtree(staging, ignore_errors=True)
    logger.info('wrote %s: %d %s frames (%s, %s)', out, len(drive.frames),
                camera.camera_model, storage, 'jpeg' if compressed else 'rgb8')
    return out


def _write_bag(drive: KittiDrive, path: Path, *, storage: str, compressed: bool,
               jpeg_quality: int, noise: GnssNoiseConfig, seed: int, datum: LocalEnu,
               camera: BagCamera, odometry_noise: OdometryNoiseConfig) -> None:
    frames = drive.frames
    oxts_stamps = np.array([f.oxts_stamp_ns for f in frames], np.int64)
    lat, lon, alt = (np.array([getattr(f.oxts, k) for f in frames]) for k in ('lat', 'lon',
                                                                               'alt'))
    east, north, up = datum.to_enu(lat, lon, alt)
    noise_enu = gnss_noise_enu_m(oxts_stamps, noise, seed)
    noisy_lat, noisy_lon, noisy_alt = datum.to_geodetic(
        east + noise_enu[:, 0], north + noise_enu[:, 1], up + noise_enu[:, 2])
    noisy_cov = noise.stated_covariance_enu_m2()
    odo_noise = odometry_noise_draws(len(frames), odometry_noise, seed)
    odo_cov = odometry_noise.stated_covariance_6x6()
    image_role = 'image_compressed' if compressed else 'image'
    roles = [image_role, 'camera_info', 'fix', 'fix_noisy', 'tf_static', 'ground_truth_pose',
             'twist']
    mount = camera.mount
    with Writer(path, version=BAG_VERSION, storage_plugin=STORAGES[storage]) as writer:
        conns = {role: writer.add_connection(
            TOPICS[role], _MSGTYPES[role], typestore=bm.TYPESTORE,
            offered_qos_profiles=[offered_qos(role == 'tf_static')]) for role in roles}
        first_ns = min(frames[0].image_stamp_ns, frames[0].oxts_stamp_ns)
        tf = bm.tf_message([
            bm.transform_stamped(first_ns, BASE_FRAME, GPS_FRAME, (0.0, 0.0, 0.0),
                                 (0.0, 0.0, 0.0, 1.0)),
            bm.transform_stamped(first_ns, BASE_FRAME, CAMERA_FRAME,
                                 (mount.x_m, mount.y_m, mount.z_m), mount.quaternion_xyzw)])
        writer.write(conns['tf_static'], first_ns, bm.serialize(tf))
        image_hw = drive.calib.image_hw
        for i, frame in enumerate(tqdm(frames, desc='kitti2bag', unit='frame',
                                       disable=None)):
            rgb = read_rgb_uint8(frame.image_path)
            if image_hw is None:
                image_hw = tuple(rgb.shape[:2])
            if tuple(rgb.shape[:2]) != tuple(image_hw):
                raise ValueError(f'{frame.image_path} is {rgb.shape[:2]} (H, W) but the drive '
                                 f'(S_rect_02 or its first image) says {image_hw}')
            t_img, t_oxts, oxts = frame.image_stamp_ns, frame.oxts_stamp_ns, frame.oxts
            image = (bm.compressed_image_msg(rgb, t_img, CAMERA_FRAME, jpeg_quality)
                     if compressed else bm.image_msg(rgb, t_img, CAMERA_FRAME))
            messages = [
                (t_img, image_role, image),
                (t_img, 'camera_info',
                 camera.camera_info(drive.calib.P_rect_02, image_hw, t_img, CAMERA_FRAME)),
                (t_oxts, 'fix', bm.nav_sat_fix_msg(t_oxts, GPS_FRAME, oxts.lat, oxts.lon,
                                                   oxts.alt, fix_covariance_enu_m2(oxts))),
                (t_oxts, 'fix_noisy', bm.nav_sat_fix_msg(
                    t_oxts, GPS_FRAME, noisy_lat[i], noisy_lon[i], noisy_alt[i], noisy_cov)),
                (t_oxts, 'ground_truth_pose', bm.pose_stamped_msg(
                    t_oxts, MAP_FRAME, (east[i], north[i], up[i]),
                    quaternion_xyzw_from_rpy(oxts.roll, oxts.pitch, oxts.yaw))),
                (t_oxts, 'twist', bm.twist_with_covariance_stamped_msg(
                    t_oxts, BASE_FRAME, oxts.vf + odo_noise[i, 0], oxts.vl + odo_noise[i, 1],
                    oxts.wu + odo_noise[i, 2], odo_cov)),
            ]
            for stamp_ns, role, msg in sorted(messages, key=lambda m: m[0]):
                writer.write(conns[role], stamp_ns, bm.serialize(msg))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='geodistill-kitti2bag',
        description='Convert a KITTI raw drive (official layout) to a rosbag2 for replay.')
    parser.add_argument('drive_dir', type=Path,
                        help='raw_data/<date>/<date>_drive_<nnnn>_sync')
    parser.add_argument('out_bag', type=Path,
                        help='output bag folder (a rerun with the same settings keeps it)')
    parser.add_argument('--storage', choices=sorted(STORAGES), default='sqlite3',
                        help='rosbag2 storage plugin (default sqlite3: plays on Humble+)')
    parser.add_argument('--compressed', action=argparse.BooleanOptionalAction, default=False,
                        help='write image_raw/compressed (JPEG) instead of raw rgb8 images')
    parser.add_argument('--jpeg-quality', type=int, default=90, help='with --compressed')
    parser.add_argument('--camera-model', choices=CAMERA_CHOICES, default='auto',
                        help="image_02's camera (default auto: the drive's "
                        "image_02/camera.json marker, else pinhole)")
    defaults = GnssNoiseConfig()
    parser.add_argument('--sigma-m', type=float, default=defaults.sigma_m,
                        help='GNSS white noise per horizontal axis, metres (1 sigma)')
    parser.add_argument('--sigma-up-m', type=float, default=defaults.sigma_up_m,
                        help='GNSS white noise on the altitude, metres (1 sigma)')
    parser.add_argument('--bias-east-m', type=float, default=defaults.bias_east_m)
    parser.add_argument('--bias-north-m', type=float, default=defaults.bias_north_m)
    parser.add_argument('--random-walk-m-per-sqrt-s', type=float,
                        default=defaults.random_walk_m_per_sqrt_s,
                        help='horizontal random-walk density, m/sqrt(s) per axis')
    odometry = OdometryNoiseConfig()
    parser.add_argument('--odometry-sigma-mps', type=float, default=odometry.sigma_mps,
                        help='noise on the twist topic velocities, m/s (1 sigma)')
    parser.add_argument('--odometry-yaw-rate-sigma-rps', type=float,
                        default=odometry.yaw_rate_sigma_rps,
                        help='noise on the twist topic yaw rate, rad/s (1 sigma)')
    parser.add_argument('--seed', type=int, default=0, help='GNSS and odometry noise seed')
    parser.add_argument('--datum', type=parse_datum, default=None,
                        help='map origin "lat,lon[,alt]" (default: the first fix)')
    parser.add_argument('--max-frames', type=int, default=None,
                        help='convert only the first N frames')
    parser.add_argument('--overwrite', action=argparse.BooleanOptionalAction, default=False,
                        help='replace an existing bag at out_bag')
    parser.add_argument('--log-level', default='INFO',
                        choices=('DEBUG', 'INFO', 'WARNING', 'ERROR'))
    return parser


def main(args=None) -> None:
    ns = build_parser().parse_args(args)
    logging.basicConfig(level=ns.log_level, format='%(levelname)s %(name)s: %(message)s')
    try:
        noise = GnssNoiseConfig(sigma_m=ns.sigma_m, sigma_up_m=ns.sigma_up_m,
                                bias_east_m=ns.bias_east_m, bias_north_m=ns.bias_north_m,
                                random_walk_m_per_sqrt_s=ns.random_walk_m_per_sqrt_s)
        convert_drive(ns.drive_dir, ns.out_bag, storage=ns.storage, compressed=ns.compressed,
                      jpeg_quality=ns.jpeg_quality, noise=noise, seed=ns.seed,
                      datum=ns.datum, max_frames=ns.max_frames, overwrite=ns.overwrite,
                      camera_model=ns.camera_model, odometry_noise=OdometryNoiseConfig(
                          ns.odometry_sigma_mps, ns.odometry_yaw_rate_sigma_rps))
    except (FileNotFoundError, FileExistsError, ValueError) as err:
        raise SystemExit(f'geodistill-kitti2bag: error: {err}') from None


if __name__ == '__main__':
    main()

"""A drive with a stop: the parked frames repeat one place, later frames shift in time, and
a bag converted from it carries exact ground truth and zero odometry while parked."""
import numpy as np
import pytest
from test_kitti2bag import FIRST_STAMP_NS, make_drive, read_bag, stamp_ns

from geodistill_ros.bags.kitti2bag import TOPICS, convert_drive
from geodistill_ros.bags.kitti_drive import read_kitti_drive
from geodistill_ros.bags.kitti_stop import insert_stop, main


@pytest.fixture
def drive(tmp_path):
    return make_drive(tmp_path, 6)


def test_the_vehicle_stands_at_the_frame_then_drives_on(drive):
    src = drive['drive_dir']
    out = insert_stop(src, src.parent / '2011-09-26_drive_0002_sync', at_frame=2, stop_s=0.5)
    stopped = read_kitti_drive(out)
    period = int(np.median(np.diff(drive['image_ns'])))
    n_stop = round(0.5e9 / period)   # 5 frames at 103.6 ms
    assert len(stopped.frames) == 6 + n_stop
    image_ns = [f.image_stamp_ns for f in stopped.frames]
    assert (np.diff(image_ns) > 0).all()
    # before the stop: the drive as it was
    assert image_ns[:3] == drive['image_ns'][:3]
    assert [f.oxts for f in stopped.frames[:2]] == drive['records'][:2]
    # standing: frame 2's pose and pixels, stamps one period apart; a frame's velocity is
    # the motion to the next frame, so every standing frame but the last has none, and the
    # last drives off with frame 2's original record
    for k in range(2, 3 + n_stop):
        f = stopped.frames[k]
        assert (f.oxts.lat, f.oxts.lon, f.oxts.yaw) == (drive['records'][2].lat,
                                                         drive['records'][2].lon,
                                                         drive['records'][2].yaw)
        assert f.image_path.read_bytes() == stopped.frames[2].image_path.read_bytes()
        if k > 2:
            assert image_ns[k] - image_ns[k - 1] == period
        if k < 2 + n_stop:
            assert f.oxts.vf == f.oxts.vl == f.oxts.wu == f.oxts.ve == f.oxts.vn == 0.0
    assert stopped.frames[2 + n_stop].oxts == drive['records'][2]
    # after it: the next frames of the drive, shifted by the stop (image and oxts alike)
    shift = n_stop * period
    assert image_ns[3 + n_stop:] == [t + shift for t in drive['image_ns'][3:]]
    assert [f.oxts_stamp_ns for f in stopped.frames[3 + n_stop:]] == \
        [t + shift for t in drive['oxts_ns'][3:]]
    assert stopped.frames[3 + n_stop].oxts == drive['records'][3]


def test_a_bag_of_the_stopped_drive_has_zero_odometry_and_the_parked_truth(drive, tmp_path):
    src = drive['drive_dir']
    out = insert_stop(src, src.parent / '2011-09-26_drive_0002_sync', at_frame=1, stop_s=0.3)
    bag = read_bag(convert_drive(out, tmp_path / 'bag', seed=3))
    twists = [m for _, m in bag['messages'][TOPICS['twist']]]
    truth = [m.pose.position for _, m in bag['messages'][TOPICS['ground_truth_pose']]]
    assert len(twists) == len(truth) == 9
    # frame 1 stands for 3 more frames: frames 1-3 have only the odometry's own noise left
    # of the motion, frame 4 drives off to the next one (1 m per frame, about 10 m/s)
    assert all(abs(twists[k].twist.twist.linear.x) < 1.0 for k in (1, 2, 3))
    assert twists[0].twist.twist.linear.x > 5.0 and twists[4].twist.twist.linear.x > 5.0
    for k in (2, 3, 4):
        assert (truth[k].x, truth[k].y) == pytest.approx((truth[1].x, truth[1].y), abs=1e-6)
    assert np.hypot(truth[5].x - truth[4].x, truth[5].y - truth[4].y) == pytest.approx(
        1.0, abs=0.05)
    stamps = [stamp_ns(m) for _, m in bag['messages'][TOPICS['image']]]
    assert stamps[0] == FIRST_STAMP_NS


@pytest.mark.parametrize('kwargs, match', [
    ({'at_frame': 6, 'stop_s': 1.0}, 'at_frame'),
    ({'at_frame': -1, 'stop_s': 1.0}, 'at_frame'),
    ({'at_frame': 1, 'stop_s': 0.0}, 'stop_s'),
    ({'at_frame': 1, 'stop_s': float('nan')}, 'stop_s'),
])
def test_bad_stops_are_refused(drive, kwargs, match):
    src = drive['drive_dir']
    with pytest.raises(ValueError, match=match):
        insert_stop(src, src.parent / 'x_sync', **kwargs)
    assert not (src.parent / 'x_sync').exists()


def test_the_copy_must_sit_beside_the_drive_and_be_new(drive, tmp_path):
    src = drive['drive_dir']
    with pytest.raises(ValueError, match='beside'):
        insert_stop(src, tmp_path / 'elsewhere_sync', at_frame=1, stop_s=1.0)
    with pytest.raises(FileExistsError):
        insert_stop(src, src, at_frame=1, stop_s=1.0)


def test_command_line(drive):
    src = drive['drive_dir']
    out = src.parent / '2011-09-26_drive_0003_sync'
    assert main([str(src), str(out), '--at-frame', '0', '--stop-s', '1']) == 0
    assert len(read_kitti_drive(out).frames) == 6 + 10

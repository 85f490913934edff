"""geodistill-kitti2bag leaves nothing behind when a conversion fails or is interrupted."""
import cv2
import numpy as np
import pytest
from test_kitti2bag import make_drive

from geodistill_ros.bags import kitti2bag as kitti_bag
from geodistill_ros.bags.kitti2bag import main


def test_failed_conversion_removes_its_partial_folder(tmp_path):
    drive = make_drive(tmp_path / 'kitti', 4)
    bad = drive['drive_dir'] / 'image_02' / 'data' / '0000000002.png'
    cv2.imwrite(str(bad), np.zeros((7, 9, 3), np.uint8))  # not the drive's image size
    out_dir = tmp_path / 'bags'
    out_dir.mkdir()
    with pytest.raises(SystemExit, match=r'0000000002.png is \(7, 9\)'):
        main([str(drive['drive_dir']), str(out_dir / 'drive')])
    assert list(out_dir.iterdir()) == []  # no bag, no .drive.partial


def test_interrupted_conversion_removes_its_partial_folder(tmp_path, monkeypatch):
    drive = make_drive(tmp_path / 'kitti', 3)
    out_dir = tmp_path / 'bags'
    out_dir.mkdir()
    real_read = kitti_bag.read_rgb_uint8
    calls = []

    def read_then_interrupt(path):
        calls.append(path)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_read(path)

    monkeypatch.setattr(kitti_bag, 'read_rgb_uint8', read_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        kitti_bag.convert_drive(drive['drive_dir'], out_dir / 'drive')
    assert len(calls) == 2 and list(out_dir.iterdir()) == []

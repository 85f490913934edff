"""Tests for KITTI OXTS parsing/formatting and KITTI timestamps."""
import dataclasses
import math
import time

import pytest

from geodistill_core.data.oxts import (
    OXTS_FIELD_NAMES,
    format_kitti_timestamp,
    format_oxts_line,
    oxts_yaw_to_map_yaw_rad,
    parse_kitti_timestamp,
    parse_oxts_line,
    read_kitti_timestamps_ns,
    read_oxts_file,
)

# A KITTI-style line (%.14g, one exponent value): a car near Karlsruhe driving forward at
# 10 m/s with yaw 0.5236 rad (30 deg north of east), so vn = 10 sin(yaw), ve = 10 cos(yaw).
LINE = (
    '49.015003823272 8.4342971002335 116.43032836914 0.035752 0.00903 0.5236 '
    '5.000010603626 8.6602479158294 10 0 -0.016497015009224 -0.22134441426802 '
    '0.35107707118582 9.7755508097954 -0.58722041358848 -0.00054958103549917 '
    '9.7852226282524 -0.0056096097519043 -0.0030519733862174 0.0080458312295003 '
    '-0.0056436826917188 -2.7993349266052e-05 0.0080934640054651 0.47072300626803 '
    '0.41079124435924 4 10 4 4 0')


def test_field_order_is_the_official_one():
    assert OXTS_FIELD_NAMES == (
        'lat', 'lon', 'alt', 'roll', 'pitch', 'yaw', 'vn', 've', 'vf', 'vl', 'vu',
        'ax', 'ay', 'az', 'af', 'al', 'au', 'wx', 'wy', 'wz', 'wf', 'wl', 'wu',
        'pos_accuracy', 'vel_accuracy', 'navstat', 'numsats', 'posmode', 'velmode', 'orimode')


def test_parse_realistic_line():
    rec = parse_oxts_line(LINE + '\n')
    assert (rec.lat, rec.lon, rec.alt) == (49.015003823272, 8.4342971002335, 116.43032836914)
    assert rec.yaw == 0.5236 and rec.vf == 10.0 and rec.wl == -2.7993349266052e-05
    assert rec.vel_accuracy == 0.41079124435924
    ints = (rec.navstat, rec.numsats, rec.posmode, rec.velmode, rec.orimode)
    assert ints == (4, 10, 4, 4, 0) and all(type(v) is int for v in ints)
    assert type(rec.vl) is float
    with pytest.raises(dataclasses.FrozenInstanceError):
        rec.lat = 0.0


def test_format_round_trips_in_kitti_style():
    rec = parse_oxts_line(LINE)
    assert format_oxts_line(rec) == LINE  # byte-identical to the KITTI-style input
    odd = dataclasses.replace(rec, lat=0.1 + 0.2, alt=1e-20, roll=-123456789.123456789)
    assert parse_oxts_line(format_oxts_line(odd)) == odd  # exact even beyond 14 digits


def test_wrong_field_count_and_bad_values():
    tokens = LINE.split()
    with pytest.raises(ValueError, match='30 fields, got 29'):
        parse_oxts_line(' '.join(tokens[:-1]))
    with pytest.raises(ValueError, match='got 31'):
        parse_oxts_line(LINE + ' 1')
    bad = tokens.copy()
    bad[6] = 'north'
    with pytest.raises(ValueError, match="'vn' is not a number"):
        parse_oxts_line(' '.join(bad))
    bad = tokens.copy()
    bad[26] = '10.5'
    with pytest.raises(ValueError, match="'numsats' must be an integer"):
        parse_oxts_line(' '.join(bad))


def test_read_oxts_file(tmp_path):
    path = tmp_path / '0000000000.txt'
    path.write_text(LINE + '\n')
    assert read_oxts_file(path) == parse_oxts_line(LINE)
    path.write_text(LINE + '\n' + LINE + '\n')
    with pytest.raises(ValueError, match='0000000000.txt: expected one OXTS line, found 2'):
        read_oxts_file(path)
    path.write_text('1 2 3\n')
    with pytest.raises(ValueError, match='0000000000.txt: OXTS line must have 30'):
        read_oxts_file(path)


def test_oxts_yaw_is_map_yaw():
    rec = parse_oxts_line(LINE)
    # Driving forward (vl = 0), the ENU velocity direction atan2(vn, ve) is the map yaw.
    velocity_yaw = math.atan2(rec.vn, rec.ve)
    assert oxts_yaw_to_map_yaw_rad(rec.yaw) == pytest.approx(velocity_yaw, abs=1e-6)
    # Counter-example: reading yaw as a compass heading would point 60 deg north of east.
    assert math.pi / 2 - rec.yaw != pytest.approx(velocity_yaw, abs=0.1)
    assert oxts_yaw_to_map_yaw_rad(-math.pi) == pytest.approx(math.pi)


@pytest.fixture
def pacific_tz(monkeypatch):
    monkeypatch.setenv('TZ', 'America/Los_Angeles')
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_timestamp_is_exact_ns_in_utc(pacific_tz):
    assert time.timezone != 0  # the local zone really is not UTC during this test
    ns = parse_kitti_timestamp('2011-09-26 13:02:25.964389445')
    assert type(ns) is int
    assert ns == 1317042145 * 10**9 + 964389445  # 2011-09-26T13:02:25Z
    # Nanoseconds survive (a float of this size only resolves ~256 ns).
    assert ns - parse_kitti_timestamp('2011-09-26 13:02:25.964389444') == 1
    assert parse_kitti_timestamp('2011-09-26 13:02:25.5\n') == 1317042145 * 10**9 + 5 * 10**8
    assert parse_kitti_timestamp('2011-09-26 13:02:25') == 1317042145 * 10**9


@pytest.mark.parametrize('text', [
    '2011-09-26 13:02:25.964389445', '1969-12-31 23:59:59.999999999',
    '2000-02-29 00:00:00.000000000'])
def test_timestamp_round_trip(text):
    assert format_kitti_timestamp(parse_kitti_timestamp(text)) == text
    assert parse_kitti_timestamp('1969-12-31 23:59:59.999999999') == -1


@pytest.mark.parametrize('text', [
    '2011-09-26', '2011-13-26 13:02:25.1', '2011-09-26 13:02:25.1234567891', 'garbage'])
def test_timestamp_rejects_bad_text(text):
    with pytest.raises(ValueError, match='timestamp'):
        parse_kitti_timestamp(text)


def test_timestamps_file_skips_blank_lines_and_names_the_bad_line(tmp_path):
    path = tmp_path / 'timestamps.txt'
    path.write_text('2011-09-26 13:02:25.5\n\n2011-09-26 13:02:26\n')
    assert read_kitti_timestamps_ns(path) == [1317042145 * 10**9 + 5 * 10**8,
                                              1317042146 * 10**9]
    path.write_text('2011-09-26 13:02:25.5\ngarbage\n')
    with pytest.raises(ValueError, match=r'timestamps\.txt:2: .*timestamp'):
        read_kitti_timestamps_ns(path)

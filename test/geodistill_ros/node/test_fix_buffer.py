"""FixBuffer: interpolation, bounded extrapolation, typed rejections, order, bag loops."""
import math

import numpy as np
import pytest

from geodistill_ros.node.fix_buffer import FixBuffer, FixRejection, GnssFix

S = 1_000_000_000  # ns per second
T0 = 1317046945 * S  # a KITTI stamp (2011)


def fix(t_s, lat=49.0, lon=8.4, alt=110.0, var=4.0, status=0, cov_type=2):
    return GnssFix(stamp_ns=T0 + int(round(t_s * S)), lat_deg=lat, lon_deg=lon, alt_m=alt,
                   covariance_enu_m2=np.diag([var, var, 2 * var]), covariance_type=cov_type,
                   status=status)


def filled(*fixes, **kwargs):
    buffer = FixBuffer(**kwargs)
    for f in fixes:
        assert buffer.insert(f) is None
    return buffer


def test_exact_stamp_returns_that_fix():
    a = fix(1.0, lat=49.1)
    result = filled(fix(0.0), a, fix(2.0)).at(a.stamp_ns, max_age_s=0.1)
    assert result.ok and result.fix is a and result.age_s == 0.0 and result.rejection is None


def test_linear_interpolation_between_neighbours():
    buffer = filled(fix(0.0, lat=49.0, lon=8.0, alt=100.0, var=1.0),
                    fix(1.0, lat=49.001, lon=8.002, alt=110.0, var=9.0, status=1))
    result = buffer.at(T0 + S // 4, max_age_s=0.5)
    assert result.ok and result.age_s == pytest.approx(0.25)
    f = result.fix
    assert f.stamp_ns == T0 + S // 4
    assert (f.lat_deg, f.lon_deg, f.alt_m) == pytest.approx((49.00025, 8.0005, 102.5))
    np.testing.assert_allclose(np.diag(f.covariance_enu_m2), [3.0, 3.0, 6.0])
    assert f.status == 0  # the worse of the two


def test_interpolation_across_the_antimeridian_takes_the_short_way():
    buffer = filled(fix(0.0, lon=179.9995), fix(1.0, lon=-179.9995))
    lon = buffer.at(T0 + S // 2, max_age_s=1.0).fix.lon_deg
    assert abs(abs(lon) - 180.0) < 1e-9  # not 0.0, the naive average


def test_linear_extrapolation_only_within_max_age():
    buffer = filled(fix(0.0, lat=49.0), fix(1.0, lat=49.001))
    ahead = buffer.at(T0 + int(1.2 * S), max_age_s=0.3)
    assert ahead.ok and ahead.fix.lat_deg == pytest.approx(49.0012)
    assert ahead.age_s == pytest.approx(0.2)
    behind = buffer.at(T0 - int(0.2 * S), max_age_s=0.3)
    assert behind.ok and behind.fix.lat_deg == pytest.approx(48.9998)
    stale = buffer.at(T0 + int(1.4 * S), max_age_s=0.3)
    assert not stale.ok and stale.rejection is FixRejection.STALE
    assert stale.age_s == pytest.approx(0.4)
    future = buffer.at(T0 - int(0.4 * S), max_age_s=0.3)
    assert not future.ok and future.rejection is FixRejection.FUTURE


def test_hold_extrapolation():
    buffer = filled(fix(0.0, lat=49.0), fix(1.0, lat=49.001), extrapolation='hold')
    result = buffer.at(T0 + int(1.2 * S), max_age_s=0.3)
    assert result.fix.lat_deg == 49.001 and result.fix.stamp_ns == T0 + int(1.2 * S)


def test_gap_in_the_fix_stream_is_stale():
    buffer = filled(fix(0.0), fix(10.0), max_gap_s=2.0)
    assert buffer.at(T0 + 5 * S, max_age_s=1.0).rejection is FixRejection.STALE
    assert buffer.at(T0 + int(9.5 * S), max_age_s=1.0).ok


def test_slow_receiver_is_interpolated_across_its_period():
    """1 Hz GNSS with max_age 0.2 s: mid-period images are bracketed, hence usable."""
    buffer = filled(fix(0.0, lat=49.0), fix(1.0, lat=49.001), max_gap_s=1.5)
    result = buffer.at(T0 + S // 2, max_age_s=0.2)
    assert result.ok and result.fix.lat_deg == pytest.approx(49.0005)
    assert result.age_s == pytest.approx(0.5)
    strict = filled(fix(0.0), fix(1.0), max_gap_s=0.5)
    assert strict.at(T0 + S // 2, max_age_s=0.2).rejection is FixRejection.STALE


def test_empty_buffer_is_no_fix():
    result = FixBuffer().at(T0, max_age_s=1.0)
    assert not result.ok and result.rejection is FixRejection.NO_FIX
    assert result.age_s == math.inf


@pytest.mark.parametrize('bad, reason', [
    (dict(lat=math.nan), FixRejection.NAN),
    (dict(lon=math.inf), FixRejection.NAN),
    (dict(lat=91.0), FixRejection.OUT_OF_RANGE),
    (dict(lon=-180.5), FixRejection.OUT_OF_RANGE),
    (dict(status=-1), FixRejection.NO_FIX),
    (dict(status=-2), FixRejection.NO_FIX),  # STATUS_UNKNOWN (Jazzy+)
])
def test_bad_fixes_are_rejected_at_insert_and_counted(bad, reason):
    buffer = FixBuffer()
    assert buffer.insert(fix(0.0, **bad)) is reason
    assert buffer.insert(fix(0.1, **bad)) is reason
    assert len(buffer) == 0 and buffer.rejected_counts[reason.value] == 2
    # the image at that time is rejected with the receiver's reason, not a generic one
    assert buffer.at(T0 + S // 20, max_age_s=0.5).rejection is reason
    assert buffer.at(T0 + 5 * S, max_age_s=0.5).rejection is FixRejection.NO_FIX


def test_nan_fixes_between_good_ones_report_nan_in_the_gap():
    buffer = filled(fix(0.0), fix(10.0))
    buffer.insert(fix(5.0, lat=math.nan))
    assert buffer.at(T0 + 5 * S, max_age_s=1.0).rejection is FixRejection.NAN


def test_nan_altitude_is_allowed():
    """NavSatFix documents NaN altitude as 'no altitude available': the fix stays usable."""
    buffer = filled(fix(0.0, alt=math.nan), fix(1.0, alt=math.nan))
    result = buffer.at(T0 + S // 2, max_age_s=1.0)
    assert result.ok and math.isnan(result.fix.alt_m)


def test_out_of_order_inserts_are_sorted_and_duplicates_replaced():
    buffer = filled(fix(2.0, lat=49.002), fix(0.0, lat=49.0), fix(1.0, lat=49.0))
    buffer.insert(fix(1.0, lat=49.001))  # same stamp again: latest wins
    assert len(buffer) == 3
    assert buffer.at(T0 + int(1.5 * S), max_age_s=1.0).fix.lat_deg == pytest.approx(49.0015)
    assert buffer.newest.lat_deg == 49.002


def test_capacity_drops_the_oldest():
    buffer = FixBuffer(max_fixes=5)
    for k in range(8):
        buffer.insert(fix(0.1 * k, lat=49.0 + k * 1e-4))
    assert len(buffer) == 5
    assert buffer.at(T0 + int(0.3 * S), max_age_s=0.05).ok
    assert buffer.at(T0 + int(0.1 * S), max_age_s=0.05).rejection is FixRejection.FUTURE


def test_clock_jump_backwards_resets_the_cache():
    """A bag loop: fixes restart 60 s earlier; the old drive must not be paired with them."""
    buffer = filled(fix(60.0, lat=49.1), fix(61.0, lat=49.1))
    assert buffer.insert(fix(0.0, lat=49.0)) is None
    assert buffer.resets == 1 and len(buffer) == 1
    buffer.insert(fix(1.0, lat=49.0))
    assert buffer.at(T0 + S // 2, max_age_s=0.2).fix.lat_deg == pytest.approx(49.0)
    slightly_late = filled(fix(5.0), fix(6.0))
    slightly_late.insert(fix(4.0))  # out of order but within backwards_reset_s
    assert slightly_late.resets == 0 and len(slightly_late) == 3


def test_gnss_fix_fields():
    f = GnssFix(stamp_ns=5, lat_deg=49.0, lon_deg=8.4)
    assert f.ok and not f.has_covariance and math.isnan(f.alt_m)
    assert f.covariance_enu_m2.shape == (3, 3) and not f.covariance_enu_m2.flags.writeable
    assert fix(0.0).has_covariance
    assert not fix(0.0, var=math.nan).has_covariance
    with pytest.raises(ValueError):
        FixBuffer(max_fixes=1)
    with pytest.raises(ValueError, match='extrapolation'):
        FixBuffer(extrapolation='cubic')

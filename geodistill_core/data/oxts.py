"""KITTI OXTS (GPS/IMU) records and KITTI timestamps.

An OXTS file ``oxts/data/<frame>.txt`` holds one line of 30 space-separated values, in the
order of ``OxtsRecord``'s fields (KITTI raw data devkit, ``dataformat.txt``). OXTS yaw is
already map yaw (radians, 0 = east, counter-clockwise positive; docs/method.md section 6).
Timestamps (``timestamps.txt``) are UTC wall-clock strings with nanosecond precision.
"""
from dataclasses import astuple, dataclass, fields
import datetime as dt
import math
from pathlib import Path
import re

from geodistill_core.geodesy import wrap_angle_rad


@dataclass(frozen=True)
class OxtsRecord:
    """One OXTS sample. Body axes: f = forward, l = left, u = up; x, y, z = vehicle axes."""

    lat: float  # latitude, deg (WGS 84)
    lon: float  # longitude, deg
    alt: float  # altitude, m
    roll: float  # rad, 0 = level, positive = left side up
    pitch: float  # rad, 0 = level, positive = front down
    yaw: float  # rad, 0 = east, positive = counter-clockwise, in [-pi, pi]
    vn: float  # velocity towards north, m/s
    ve: float  # velocity towards east, m/s
    vf: float  # forward velocity, m/s
    vl: float  # leftward velocity, m/s
    vu: float  # upward velocity, m/s
    ax: float  # acceleration along x, m/s^2
    ay: float  # acceleration along y, m/s^2
    az: float  # acceleration along z, m/s^2
    af: float  # forward acceleration, m/s^2
    al: float  # leftward acceleration, m/s^2
    au: float  # upward acceleration, m/s^2
    wx: float  # angular rate around x, rad/s
    wy: float  # angular rate around y, rad/s
    wz: float  # angular rate around z, rad/s
    wf: float  # angular rate around forward axis, rad/s
    wl: float  # angular rate around leftward axis, rad/s
    wu: float  # angular rate around upward axis, rad/s
    pos_accuracy: float  # position accuracy (north/east), m
    vel_accuracy: float  # velocity accuracy (north/east), m/s
    navstat: int  # navigation status
    numsats: int  # number of satellites tracked by the primary GPS receiver
    posmode: int  # position mode of the primary GPS receiver
    velmode: int  # velocity mode of the primary GPS receiver
    orimode: int  # orientation mode of the primary GPS receiver


OXTS_FIELD_NAMES = tuple(f.name for f in fields(OxtsRecord))
_INT_FIELDS = frozenset(('navstat', 'numsats', 'posmode', 'velmode', 'orimode'))


def _parse_value(name: str, token: str) -> float | int:
    try:
        value = float(token)
    except ValueError:
        raise ValueError(f'OXTS field {name!r} is not a number: {token!r}') from None
    if name not in _INT_FIELDS:
        return value
    if not value.is_integer():
        raise ValueError(f'OXTS field {name!r} must be an integer, got {token!r}')
    return int(value)


def parse_oxts_line(text: str) -> OxtsRecord:
    """Parse one OXTS line (30 whitespace-separated values) into an ``OxtsRecord``."""
    tokens = text.split()
    if len(tokens) != len(OXTS_FIELD_NAMES):
        raise ValueError(
            f'OXTS line must have {len(OXTS_FIELD_NAMES)} fields, got {len(tokens)}: '
            f'{text.strip()[:80]!r}')
    return OxtsRecord(*(_parse_value(n, t) for n, t in zip(OXTS_FIELD_NAMES, tokens, strict=True)))


def _format_float(value: float) -> str:
    """KITTI writes ``%.14g``; fall back to the shortest exact repr if that loses bits."""
    text = f'{value:.14g}'
    return text if float(text) == value or math.isnan(value) else repr(float(value))


def format_oxts_line(record: OxtsRecord) -> str:
    """Format a record as one KITTI OXTS line (no newline); ``parse_oxts_line`` inverts it."""
    return ' '.join(
        str(int(v)) if n in _INT_FIELDS else _format_float(v)
        for n, v in zip(OXTS_FIELD_NAMES, astuple(record), strict=True))


def read_oxts_file(path: str | Path) -> OxtsRecord:
    """Read a KITTI ``oxts/data/<frame>.txt`` file, which holds exactly one record."""
    lines = [ln for ln in Path(path).read_text().splitlines() if ln.strip()]
    if len(lines) != 1:
        raise ValueError(f'{path}: expected one OXTS line, found {len(lines)}')
    try:
        return parse_oxts_line(lines[0])
    except ValueError as err:
        raise ValueError(f'{path}: {err}') from None


def oxts_yaw_to_map_yaw_rad(yaw_rad: float) -> float:
    """OXTS yaw -> map yaw (rad). Both are 0 = east, CCW: this only wraps to (-pi, pi]."""
    return wrap_angle_rad(yaw_rad)


_TIMESTAMP_RE = re.compile(
    r'(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?')
_EPOCH_UTC = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
_NS_PER_S = 1_000_000_000


def parse_kitti_timestamp(text: str) -> int:
    """``'2011-09-26 13:02:25.964389445'`` (UTC) -> integer nanoseconds since the Unix epoch.

    Exact integer arithmetic: never goes through a float nor the local time zone.
    """
    match = _TIMESTAMP_RE.fullmatch(text.strip())
    if match is None:
        raise ValueError(f'not a KITTI timestamp (YYYY-MM-DD hh:mm:ss.fffffffff): {text!r}')
    *date_time, frac = match.groups()
    try:
        stamp = dt.datetime(*map(int, date_time), tzinfo=dt.timezone.utc)
    except ValueError as err:
        raise ValueError(f'invalid KITTI timestamp {text!r}: {err}') from None
    delta = stamp - _EPOCH_UTC
    seconds = delta.days * 86400 + delta.seconds
    return seconds * _NS_PER_S + int((frac or '0').ljust(9, '0'))


def read_kitti_timestamps_ns(path: Path) -> list[int]:
    """A KITTI timestamps.txt -> integer UTC nanoseconds per non-blank line; a malformed
    line raises ValueError naming file:line."""
    stamps = []
    for number, text in enumerate(Path(path).read_text().splitlines(), start=1):
        if not text.strip():
            continue
        try:
            stamps.append(parse_kitti_timestamp(text))
        except ValueError as err:
            raise ValueError(f'{path}:{number}: {err}') from None
    return stamps


def format_kitti_timestamp(ns: int) -> str:
    """Integer nanoseconds since the Unix epoch -> ``'YYYY-MM-DD hh:mm:ss.fffffffff'`` (UTC)."""
    seconds, frac_ns = divmod(int(ns), _NS_PER_S)
    stamp = _EPOCH_UTC + dt.timedelta(seconds=seconds)
    return f'{stamp:%Y-%m-%d %H:%M:%S}.{frac_ns:09d}'

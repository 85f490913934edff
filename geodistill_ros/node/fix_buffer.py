"""A bounded, time-ordered cache of GNSS fixes, queried at image stamps (no ROS import).

Each camera image is paired with the fix at its own stamp: linear interpolation between
the neighbouring fixes, or linear extrapolation from the nearest two when the stamp lies
within ``max_age_s`` outside the cached span. Anything else is a typed rejection the node
counts and reports in diagnostics:

- ``no_fix``: nothing usable cached (or the receiver reports NO_FIX around that stamp);
- ``nan``: the fixes around that stamp had NaN/inf latitude or longitude;
- ``out_of_range``: ... or latitude/longitude outside [-90, 90] / [-180, 180];
- ``stale``: the nearest fix is more than ``max_age_s`` older than the image, or the
  image falls in a gap of the fix stream longer than ``max_gap_s`` and more than
  ``max_age_s`` from both ends (a 1 Hz receiver is interpolated, an outage is not);
- ``future``: every cached fix is more than ``max_age_s`` newer than the image.

Fixes may arrive out of order; a fix more than ``backwards_reset_s`` older than the newest
cached one means the clock jumped back (bag loop): the cache is cleared and the reset
counted, so the replayed drive is paired with its own fixes.
"""
from __future__ import annotations

import bisect
from collections import Counter, deque
from dataclasses import dataclass, replace
import enum
import math

import numpy as np

STATUS_NO_FIX = -1
"""sensor_msgs/NavSatStatus.STATUS_NO_FIX; every status below 0 means no fix."""
COVARIANCE_TYPE_UNKNOWN = 0
"""sensor_msgs/NavSatFix.COVARIANCE_TYPE_UNKNOWN."""


class FixRejection(str, enum.Enum):
    """Why a fix was not accepted or no fix could be given for a stamp."""

    NO_FIX = 'no_fix'
    NAN = 'nan'
    OUT_OF_RANGE = 'out_of_range'
    STALE = 'stale'
    FUTURE = 'future'


@dataclass(frozen=True, eq=False)
class GnssFix:
    """One GNSS fix in named fields.

    stamp_ns: header stamp (ns). lat_deg, lon_deg: WGS 84. alt_m: ellipsoidal height
    (NaN when the receiver gives none, as NavSatFix allows). covariance_enu_m2: (3, 3)
    position covariance in east-north-up metres^2. covariance_type: NavSatFix
    COVARIANCE_TYPE_* (0 unknown .. 3 known). status: NavSatStatus STATUS_* (< 0 no fix).
    """

    stamp_ns: int
    lat_deg: float
    lon_deg: float
    alt_m: float = math.nan
    covariance_enu_m2: np.ndarray = None
    covariance_type: int = COVARIANCE_TYPE_UNKNOWN
    status: int = 0

    def __post_init__(self):
        cov = (np.zeros((3, 3)) if self.covariance_enu_m2 is None
               else np.array(self.covariance_enu_m2, dtype=np.float64).reshape(3, 3))
        cov.flags.writeable = False
        object.__setattr__(self, 'covariance_enu_m2', cov)
        object.__setattr__(self, 'stamp_ns', int(self.stamp_ns))

    def problem(self) -> FixRejection | None:
        """The reason this fix is unusable, or None: NO_FIX status, NaN/inf or bad range."""
        if self.status < 0:
            return FixRejection.NO_FIX
        if not (math.isfinite(self.lat_deg) and math.isfinite(self.lon_deg)):
            return FixRejection.NAN
        if not (-90.0 <= self.lat_deg <= 90.0 and -180.0 <= self.lon_deg <= 180.0):
            return FixRejection.OUT_OF_RANGE
        return None

    @property
    def ok(self) -> bool:
        return self.problem() is None

    @property
    def has_covariance(self) -> bool:
        return (self.covariance_type != COVARIANCE_TYPE_UNKNOWN
                and bool(np.isfinite(self.covariance_enu_m2).all()))


@dataclass(frozen=True)
class FixLookup:
    """Result of ``FixBuffer.at``: a fix at the stamp, or the reason there is none.

    age_s: time from the stamp to the nearest cached fix used (inf when none).
    """

    fix: GnssFix | None
    rejection: FixRejection | None
    age_s: float

    @property
    def ok(self) -> bool:
        return self.fix is not None


def _blend(a: GnssFix, b: GnssFix, weight_b: float, stamp_ns: int) -> GnssFix:
    """(1 - w) a + w b in lat, lon (shortest way round the antimeridian), alt, covariance.

    For extrapolation w lies outside [0, 1]; the covariance is then the nearer fix's.
    """
    d_lon = (b.lon_deg - a.lon_deg + 180.0) % 360.0 - 180.0
    lon = (a.lon_deg + weight_b * d_lon + 180.0) % 360.0 - 180.0
    if 0.0 <= weight_b <= 1.0:
        cov = (1.0 - weight_b) * a.covariance_enu_m2 + weight_b * b.covariance_enu_m2
    else:
        cov = (a if weight_b < 0.5 else b).covariance_enu_m2
    return GnssFix(stamp_ns=stamp_ns,
                   lat_deg=a.lat_deg + weight_b * (b.lat_deg - a.lat_deg), lon_deg=lon,
                   alt_m=a.alt_m + weight_b * (b.alt_m - a.alt_m), covariance_enu_m2=cov,
                   covariance_type=min(a.covariance_type, b.covariance_type),
                   status=min(a.status, b.status))


class FixBuffer:
    """Bounded time-ordered cache of GNSS fixes; ``at(stamp_ns, max_age_s)`` pairs images.

    max_fixes: capacity; the oldest fixes are dropped first. max_gap_s: longest gap between
    two fixes interpolated regardless of ``max_age_s`` (receivers at 1 Hz and slower).
    backwards_reset_s: a fix this much older than the newest cached one clears the cache
    (clock/bag loop); None disables.
    extrapolation: 'linear' (from the two nearest fixes) or 'hold' (nearest fix).
    Not thread-safe: call from one executor thread, or guard it.
    """

    def __init__(self, max_fixes: int = 256, max_gap_s: float = 2.0,
                 backwards_reset_s: float | None = 10.0, extrapolation: str = 'linear'):
        if max_fixes < 2:
            raise ValueError(f'max_fixes must be >= 2, got {max_fixes}')
        if extrapolation not in ('linear', 'hold'):
            raise ValueError(f"extrapolation must be 'linear' or 'hold', got {extrapolation!r}")
        self.max_fixes = int(max_fixes)
        self.max_gap_ns = int(round(max_gap_s * 1e9))
        self.backwards_reset_ns = (None if backwards_reset_s is None
                                   else int(round(backwards_reset_s * 1e9)))
        self.extrapolation = extrapolation
        self._stamps: list[int] = []
        self._fixes: list[GnssFix] = []
        self._rejected: deque[tuple[int, FixRejection]] = deque(maxlen=64)
        self.rejected_counts: Counter[str] = Counter()
        self.accepted = 0
        self.resets = 0

    def __len__(self) -> int:
        return len(self._fixes)

    @property
    def newest(self) -> GnssFix | None:
        return self._fixes[-1] if self._fixes else None

    def clear(self) -> None:
        self._stamps.clear()
        self._fixes.clear()
        self._rejected.clear()

    def insert(self, fix: GnssFix) -> FixRejection | None:
        """Cache a fix (any arrival order); returns the rejection reason or None."""
        if (self.backwards_reset_ns is not None and self._stamps
                and fix.stamp_ns < self._stamps[-1] - self.backwards_reset_ns):
            self.clear()
            self.resets += 1
        problem = fix.problem()
        if problem is not None:
            self.rejected_counts[problem.value] += 1
            self._rejected.append((fix.stamp_ns, problem))
            return problem
        i = bisect.bisect_left(self._stamps, fix.stamp_ns)
        if i < len(self._stamps) and self._stamps[i] == fix.stamp_ns:
            self._fixes[i] = fix  # same stamp again: the latest message wins
        else:
            self._stamps.insert(i, fix.stamp_ns)
            self._fixes.insert(i, fix)
        self.accepted += 1
        while len(self._fixes) > self.max_fixes:
            del self._stamps[0], self._fixes[0]
        return None

    def at(self, stamp_ns: int, max_age_s: float) -> FixLookup:
        """The fix at ``stamp_ns``: interpolated, extrapolated within max_age_s, or rejected."""
        stamp_ns = int(stamp_ns)
        max_age_ns = int(round(max_age_s * 1e9))
        n = len(self._stamps)
        if n == 0:
            return self._reject(stamp_ns, max_age_ns, FixRejection.NO_FIX, math.inf)
        i = bisect.bisect_left(self._stamps, stamp_ns)
        if i < n and self._stamps[i] == stamp_ns:
            return FixLookup(self._fixes[i], None, 0.0)
        if 0 < i < n:  # between two fixes
            t0, t1 = self._stamps[i - 1], self._stamps[i]
            age_ns = min(stamp_ns - t0, t1 - stamp_ns)
            if age_ns > max_age_ns and t1 - t0 > self.max_gap_ns:
                return self._reject(stamp_ns, max_age_ns, FixRejection.STALE, age_ns / 1e9)
            fix = _blend(self._fixes[i - 1], self._fixes[i], (stamp_ns - t0) / (t1 - t0),
                         stamp_ns)
            return FixLookup(fix, None, age_ns / 1e9)
        nearest = n - 1 if i == n else 0
        age_ns = abs(stamp_ns - self._stamps[nearest])
        if age_ns > max_age_ns:
            reason = FixRejection.STALE if i == n else FixRejection.FUTURE
            return self._reject(stamp_ns, max_age_ns, reason, age_ns / 1e9)
        if self.extrapolation == 'hold' or n == 1:
            fix = replace(self._fixes[nearest], stamp_ns=stamp_ns)
        else:
            j0, j1 = (n - 2, n - 1) if i == n else (0, 1)
            t0, t1 = self._stamps[j0], self._stamps[j1]
            fix = _blend(self._fixes[j0], self._fixes[j1], (stamp_ns - t0) / (t1 - t0),
                         stamp_ns)
        return FixLookup(fix, None, age_ns / 1e9)

    def _reject(self, stamp_ns: int, max_age_ns: int, reason: FixRejection,
                age_s: float) -> FixLookup:
        """Prefer the receiver's own verdict (NO_FIX / NaN) near the stamp when there is one."""
        near = [r for t, r in self._rejected if abs(t - stamp_ns) <= max_age_ns]
        if near:
            reason = near[-1]
        return FixLookup(None, reason, age_s)

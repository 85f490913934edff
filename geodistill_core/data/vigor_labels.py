"""VIGOR split lines, file names and the pixel-offset <-> metre conventions.

A split line (e.g. ``splits__corrected/<City>/same_area_balanced_train__corrected.txt``) is
``<pano> <sat1> <dr1> <dc1> <sat2> <dr2> <dc2> <sat3> <dr3> <dc3> <sat4> <dr4> <dc4>``: the
positive satellite tile first, then three semi-positives. Offsets (dr, dc) are in pixels of
the 640-px tile; VIGOR's continuous pixel of the camera is (320 + dr, 320 - dc), so dr > 0
means south of the tile centre and dc > 0 means west (docs/method.md section 6). In our index
convention pixel i's centre sits at index i and the image centre at (n - 1) / 2.
The offset helpers are plain arithmetic and work on floats, numpy arrays and torch tensors.
"""
from dataclasses import dataclass
from pathlib import PurePath
import re
from types import MappingProxyType

VIGOR_TILE_SIZE_PX = 640
VIGOR_METERS_PER_PX_640 = MappingProxyType({
    'NewYork': 0.113248,
    'Seattle': 0.100817,
    'SanFrancisco': 0.118141,
    'Chicago': 0.111262,
})
"""Ground resolution (m/px) of the 640-px satellite tiles per city."""


def vigor_meters_per_px(city: str, tile_size_px: int = VIGOR_TILE_SIZE_PX) -> float:
    """Metres per pixel of a ``city`` tile resampled from 640 px to ``tile_size_px``."""
    if city not in VIGOR_METERS_PER_PX_640:
        raise ValueError(f'unknown VIGOR city {city!r}; known: {sorted(VIGOR_METERS_PER_PX_640)}')
    return VIGOR_METERS_PER_PX_640[city] * VIGOR_TILE_SIZE_PX / tile_size_px


def vigor_offset_to_east_north_m(dr_px, dc_px, meters_per_px_640):
    """VIGOR (dr, dc) in 640-px pixels -> camera (east_m, north_m) from the tile centre."""
    return -dc_px * meters_per_px_640, -dr_px * meters_per_px_640


def east_north_m_to_vigor_offset(east_m, north_m, meters_per_px_640):
    """Camera (east_m, north_m) from the tile centre -> VIGOR (dr, dc) in 640-px pixels."""
    return -north_m / meters_per_px_640, -east_m / meters_per_px_640


def vigor_offset_to_pixel_index(dr_px, dc_px, tile_size_px: int = VIGOR_TILE_SIZE_PX):
    """VIGOR (dr, dc) -> camera (row, col) pixel index in a ``tile_size_px`` square tile."""
    scale = tile_size_px / VIGOR_TILE_SIZE_PX
    centre = (tile_size_px - 1) / 2
    return centre + dr_px * scale, centre - dc_px * scale


def pixel_index_to_vigor_offset(row, col, tile_size_px: int = VIGOR_TILE_SIZE_PX):
    """Camera (row, col) pixel index in a ``tile_size_px`` tile -> VIGOR (dr, dc)."""
    scale = VIGOR_TILE_SIZE_PX / tile_size_px
    centre = (tile_size_px - 1) / 2
    return (row - centre) * scale, (centre - col) * scale


def _parse_float(value: str, what: str, name: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise ValueError(f'{what} {value!r} in {name!r} is not a number') from None


@dataclass(frozen=True)
class VigorPanoName:
    """Panorama file ``<panoid>,<lat>,<lon>,.jpg``: camera position in WGS 84 degrees."""

    file_name: str
    pano_id: str
    lat_deg: float
    lon_deg: float


def parse_vigor_pano_name(name: str | PurePath) -> VigorPanoName:
    """Parse a panorama file name (a leading directory is ignored)."""
    file_name = PurePath(name).name
    parts = file_name.split(',')
    if len(parts) != 4 or parts[3] != '.jpg' or not parts[0]:
        raise ValueError(f'not a VIGOR panorama name <panoid>,<lat>,<lon>,.jpg: {file_name!r}')
    return VigorPanoName(file_name, parts[0], _parse_float(parts[1], 'latitude', file_name),
                         _parse_float(parts[2], 'longitude', file_name))


@dataclass(frozen=True)
class VigorSatName:
    """Satellite file ``satellite_<lat>_<lon>.png``: tile centre in WGS 84 degrees."""

    file_name: str
    lat_deg: float
    lon_deg: float


_SAT_RE = re.compile(r'satellite_([^_]+)_([^_]+)\.png')


def parse_vigor_sat_name(name: str | PurePath) -> VigorSatName:
    """Parse a satellite tile file name (a leading directory is ignored)."""
    file_name = PurePath(name).name
    match = _SAT_RE.fullmatch(file_name)
    if match is None:
        raise ValueError(f'not a VIGOR satellite name satellite_<lat>_<lon>.png: {file_name!r}')
    return VigorSatName(file_name, _parse_float(match[1], 'latitude', file_name),
                        _parse_float(match[2], 'longitude', file_name))


@dataclass(frozen=True)
class VigorSatOffset:
    """A satellite tile and the camera's VIGOR offset (dr_px, dc_px) in its 640-px frame."""

    sat_name: str
    dr_px: float
    dc_px: float


@dataclass(frozen=True)
class VigorSplitLine:
    """One split line: the panorama, its positive tile and three semi-positive tiles."""

    pano_name: str
    positive: VigorSatOffset
    semi_positives: tuple[VigorSatOffset, VigorSatOffset, VigorSatOffset]


_SPLIT_TOKENS = 13


def parse_vigor_split_line(text: str) -> VigorSplitLine:
    """Parse ``<pano> <sat1> <dr1> <dc1> ... <sat4> <dr4> <dc4>`` (13 tokens)."""
    tokens = text.split()
    if len(tokens) != _SPLIT_TOKENS:
        raise ValueError(f'VIGOR split line must have {_SPLIT_TOKENS} tokens, '
                         f'got {len(tokens)}: {text.strip()[:80]!r}')
    pano, rest = tokens[0], tokens[1:]
    parse_vigor_pano_name(pano)  # fail early, naming the token, if columns are shifted
    for sat in rest[0::3]:
        parse_vigor_sat_name(sat)
    sats = tuple(
        VigorSatOffset(rest[i], _parse_float(rest[i + 1], 'dr', rest[i]),
                       _parse_float(rest[i + 2], 'dc', rest[i]))
        for i in range(0, 12, 3))
    return VigorSplitLine(pano, sats[0], sats[1:])

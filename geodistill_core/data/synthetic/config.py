"""Configuration of the synthetic world: size, style, lighting and the domain gap.

Everything a world depends on is in `WorldConfig`; `generate_world(config, seed)` is a
pure function of it. Angles in these configs are in degrees (suffix `_deg`) because they
are written by people; poses use radians.

Sun direction: `azimuth_deg` is the map-frame bearing *towards* the sun, ENU convention
(0 = east, counter-clockwise positive; -90 = the sun stands in the south).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from geodistill_core.data.synthetic.styles import CityStyle

RGB = tuple[float, float, float]


@dataclass(frozen=True)
class SunConfig:
    """Directional sun plus a uniform sky (ambient) term, linear RGB."""

    azimuth_deg: float = -60.0
    elevation_deg: float = 50.0
    sun_rgb: RGB = (1.0, 0.97, 0.90)
    ambient_rgb: RGB = (0.34, 0.37, 0.44)

    def __post_init__(self):
        if not 5.0 <= self.elevation_deg <= 90.0:
            raise ValueError(f'sun elevation must be in [5, 90] deg, got {self.elevation_deg}')


@dataclass(frozen=True)
class ViewLook:
    """Photometric model of one camera: colour response, then sensor degradations.

    Applied to a linear RGB render in [0, 1]: exposure * white balance (plus a seeded
    per-image jitter), saturation, contrast around mid-grey, gamma (out = in ** gamma
    after the sRGB encoding), Gaussian blur, additive Gaussian noise (std in [0, 1]
    units), then an actual JPEG round trip at `jpeg_quality` (0 = off).
    """

    exposure: float = 1.0
    white_balance_rgb: RGB = (1.0, 1.0, 1.0)
    saturation: float = 1.0
    contrast: float = 1.0
    gamma: float = 1.0
    exposure_jitter: float = 0.0  # std of log-exposure per image
    white_balance_jitter: float = 0.0  # std of log-gain per channel per image
    blur_sigma_px: float = 0.0
    noise_std: float = 0.0
    jpeg_quality: int = 0

    def __post_init__(self):
        if not 0 <= self.jpeg_quality <= 100:
            raise ValueError(f'jpeg_quality must be in [0, 100], got {self.jpeg_quality}')
        if self.exposure <= 0 or self.gamma <= 0:
            raise ValueError('exposure and gamma must be > 0')


IDENTITY_LOOK = ViewLook()
GROUND_LOOK = ViewLook(exposure=1.05, white_balance_rgb=(1.04, 1.0, 0.94), saturation=1.1,
                       contrast=1.05, exposure_jitter=0.12, white_balance_jitter=0.03,
                       blur_sigma_px=0.4, noise_std=0.012, jpeg_quality=88)
SATELLITE_LOOK = ViewLook(exposure=0.95, white_balance_rgb=(0.95, 1.0, 1.06), saturation=0.8,
                          contrast=0.9, gamma=1.08, exposure_jitter=0.06,
                          white_balance_jitter=0.02, blur_sigma_px=0.6, noise_std=0.008,
                          jpeg_quality=90)


@dataclass(frozen=True)
class DomainGapConfig:
    """How the ground and satellite views of one world differ. `disabled()` removes all.

    transient_car_fraction: fraction of the moving (in-lane) cars that exist in only one
        view (half of them ground-only, half satellite-only); parked cars are in both.
    satellite_sun / ground_sun: lighting (and cast shadows) of each view.
    satellite_look / ground_look: default photometric model of each renderer.
    """

    transient_car_fraction: float = 0.8
    satellite_sun: SunConfig = SunConfig(azimuth_deg=-60.0, elevation_deg=55.0)
    ground_sun: SunConfig = SunConfig(azimuth_deg=-120.0, elevation_deg=40.0,
                                      sun_rgb=(1.0, 0.93, 0.82))
    satellite_look: ViewLook = SATELLITE_LOOK
    ground_look: ViewLook = GROUND_LOOK

    def __post_init__(self):
        if not 0.0 <= self.transient_car_fraction <= 1.0:
            raise ValueError('transient_car_fraction must be in [0, 1], got '
                             f'{self.transient_car_fraction}')

    @classmethod
    def disabled(cls) -> DomainGapConfig:
        """Both views identical: same sun, no transient cars, identity looks, no noise."""
        sun = SunConfig(azimuth_deg=-60.0, elevation_deg=55.0)
        return cls(transient_car_fraction=0.0, satellite_sun=sun, ground_sun=sun,
                   satellite_look=IDENTITY_LOOK, ground_look=IDENTITY_LOOK)


@dataclass(frozen=True)
class WorldConfig:
    """A square world of size_m x size_m metres on a grid of cell_m metres.

    The map frame's origin is the world's south-west corner: east in [0, size_m],
    north in [0, size_m]. `style` is a name in CITY_STYLES or a CityStyle.
    """

    style: str | CityStyle = 'grid_downtown'
    size_m: float = 320.0
    cell_m: float = 0.125
    domain_gap: DomainGapConfig = field(default_factory=DomainGapConfig)

    def __post_init__(self):
        if not 0.02 <= self.cell_m <= 1.0:
            raise ValueError(f'cell_m must be in [0.02, 1] m, got {self.cell_m}')
        if not 20.0 <= self.size_m <= 4000.0:
            raise ValueError(f'size_m must be in [20, 4000] m, got {self.size_m}')

    @property
    def cells(self) -> int:
        """Number of grid cells along each axis."""
        return int(round(self.size_m / self.cell_m))

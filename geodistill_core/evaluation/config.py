"""Typed evaluation config (what defines the numbers) and paths (where things are).

`EvalConfig` holds everything that changes a result; it is written into results.json and
into the done-marker, so a rerun with identical arguments is skipped and a rerun with
other arguments into the same folder is refused (or overwritten on request).
`EvalPaths` only locates things on this machine.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

PRECISIONS = ('float32', 'bfloat16', 'float16')
YAW_SEARCHES = ('none', 'rotation')
# Fields that do not change any reported number (ignored when comparing done-markers).
VOLATILE_FIELDS = ('num_workers', 'progress')


@dataclass(frozen=True)
class EvalConfig:
    """One evaluation run.

    dataset: a registered reader ('vigor', 'kitti', 'flat_world').
    split: the reader's split ('test', 'test1', 'test2', 'val', ...).
    yaw_noise_deg: test-time yaw prior noise r: each item's prior = true yaw + n, with n
        drawn by the reader (VIGOR, flat world: U(-r, r); KITTI: the split line's dtheta
        times r, or a seeded draw for lines without one). 0 = known orientation.
    seed: the readers' noise seed (VIGOR and KITTI draw per item from
        numpy SeedSequence([seed, index]); the flat world seeds its world with it too).
    max_items: evaluate only the first N items of the split (None = all).
    data_overrides: 'field=value' overrides of the reader's DataConfig, applied after the
        checkpoint's training data config (e.g. 'area=same', 'cities=["Chicago"]').
    vehicle_frame_errors: lateral/longitudinal errors in the true vehicle frame;
        None = KITTI only.
    num_heatmaps: heatmaps drawn over their satellite images (evenly spaced items).
    yaw_search: 'none' = the location model runs at the prior's yaw (or the orientation
        model's); 'rotation' = the Localizer's rotation search over the prior +-
        yaw_noise_deg (the range the test-time noise can reach) with the camera's measured
        settings (localizer.DEFAULT_YAW_SEARCH), as the node's `yaw_search: rotation` and
        Localizer.default() do: the deployed pipeline's numbers, yaw errors included.
    """

    dataset: str = 'vigor'
    split: str = 'test'
    yaw_noise_deg: float = 0.0
    seed: int = 0
    max_items: int | None = None
    batch_size: int = 8
    num_workers: int = 2
    device: str = 'auto'
    precision: str = 'float32'
    data_overrides: tuple[str, ...] = ()
    vehicle_frame_errors: bool | None = None
    num_heatmaps: int = 4
    progress: bool = True
    yaw_search: str = 'none'

    def __post_init__(self):
        if not 0.0 <= self.yaw_noise_deg <= 180.0:
            raise ValueError(f'yaw_noise_deg must lie in [0, 180], got {self.yaw_noise_deg}')
        if self.max_items is not None and self.max_items < 1:
            raise ValueError(f'max_items must be >= 1 or None, got {self.max_items}')
        if self.batch_size < 1 or self.num_workers < 0 or self.num_heatmaps < 0:
            raise ValueError('batch_size must be >= 1, num_workers and num_heatmaps >= 0')
        if self.yaw_search not in YAW_SEARCHES:
            raise ValueError(f'yaw_search must be one of {YAW_SEARCHES}, got {self.yaw_search!r}')
        if self.precision not in PRECISIONS:
            raise ValueError(f'precision must be one of {PRECISIONS}, got {self.precision!r}')

    @property
    def with_vehicle_frame(self) -> bool:
        """Whether lateral/longitudinal errors are reported."""
        if self.vehicle_frame_errors is None:
            return self.dataset == 'kitti'
        return self.vehicle_frame_errors


@dataclass(frozen=True)
class EvalPaths:
    """Checkpoint folders, the dataset root and the output folder.

    checkpoint: the location model evaluated (after distillation).
    orientation_checkpoint: optional orientation estimator (panoramas).
    compare_checkpoint: optional second location model run on the same items with the
        same noise (before distillation); plots then show both.
    output_dir: None = default_output_dir(...).
    """

    checkpoint: Path
    data_root: Path | None = None
    orientation_checkpoint: Path | None = None
    compare_checkpoint: Path | None = None
    output_dir: Path | None = None


def default_output_dir(conf: EvalConfig, checkpoint: Path) -> Path:
    """<checkpoint's parent>/eval/<checkpoint name>_<dataset>_<split>_yaw<r>_seed<s>
    (beside the checkpoint, never inside it: checkpoint folders are replaced on save)."""
    checkpoint = Path(checkpoint)
    name = (f'{checkpoint.name}_{conf.dataset}_{conf.split}_yaw{conf.yaw_noise_deg:g}'
            f'_seed{conf.seed}')
    if conf.yaw_search != 'none':
        name += f'_{conf.yaw_search}search'
    if conf.max_items is not None:
        name += f'_first{conf.max_items}'
    return checkpoint.parent / 'eval' / name

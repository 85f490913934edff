"""Choose a correlation model's template energy floor on validation data.

The masked cosine correlation normalises the BEV template by its whole energy unless
`template_energy_floor` (models/correlation/sliding_correlation.py) says otherwise; a
pinhole template reaching past the satellite crop is then penalised, which pulls estimates
behind the vehicle. The floor is an inference-time setting of the saved model (its
hyper_parameters.model), so, like the heatmap calibration, it is chosen after training on
validation drives with ground truth: every candidate is evaluated on the given splits and
the one with the lowest mean error over all their items is written into the checkpoint.
Never choose it on a test split or on the drive you report.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
import json
import logging
from pathlib import Path
import tempfile
from typing import Any

from geodistill_core.evaluation.config import EvalConfig, EvalPaths
from geodistill_core.evaluation.run import evaluate
from geodistill_core.models.checkpoint import update_checkpoint_config

logger = logging.getLogger(__name__)

FLOOR_KEY = 'template_energy_floor'


def write_template_floor(checkpoint: str | Path, floor: float,
                         out: str | Path | None = None) -> Path:
    """Set hyper_parameters.model.template_energy_floor in checkpoint/config.json (out None)
    or in a copy of the checkpoint at `out` (which must not exist). Returns the folder."""
    if not 0.0 <= floor <= 1.0:
        raise ValueError(f'template_energy_floor must be in [0, 1], got {floor}')

    def set_floor(record: dict[str, Any]) -> None:
        model = (record.get('hyper_parameters') or {}).get('model')
        if model is None or model.get('kind', 'correlation') != 'correlation':
            raise ValueError(f'{checkpoint}: not a correlation location model (the floor '
                             'only applies to the masked cosine correlation)')
        model[FLOOR_KEY] = float(floor)
    return update_checkpoint_config(checkpoint, set_floor, out)


def choose_template_floor(checkpoint: str | Path, conf: EvalConfig, data_root: str | Path | None,
                          splits: Sequence[str], candidates: Sequence[float],
                          work_dir: str | Path | None = None) -> dict[str, Any]:
    """Evaluate `checkpoint` with each candidate floor on `splits` of `data_root` (conf's
    noise, seed and search settings); returns {'chosen', 'candidates': [{floor, mean_m,
    median_m, items, per_split}]}, the chosen floor having the lowest item-weighted mean
    error."""
    if not candidates:
        raise ValueError('give at least one candidate floor')
    if not splits:
        raise ValueError('give at least one validation split')
    rows = []
    with tempfile.TemporaryDirectory(dir=work_dir) as tmp:
        for floor in candidates:
            candidate = write_template_floor(checkpoint, floor, Path(tmp) / f'floor_{floor:g}')
            per_split, total, items = {}, 0.0, 0
            for split in splits:
                results = json.loads(Path(evaluate(
                    replace(conf, split=split, num_heatmaps=0),
                    EvalPaths(candidate, None if data_root is None else Path(data_root),
                              output_dir=Path(tmp) / f'eval_{floor:g}_{split}'),
                    overwrite=True)).read_text())
                loc = results['metrics']['localization_m']
                per_split[split] = {'mean_m': loc['mean'], 'median_m': loc['median'],
                                    'items': loc['count']}
                total += loc['mean'] * loc['count']
                items += loc['count']
            rows.append({'floor': float(floor), 'mean_m': total / items, 'items': items,
                         'per_split': per_split})
            logger.info('template_energy_floor %.2f: mean %.3f m over %d items', floor,
                        total / items, items)
    best = min(rows, key=lambda row: row['mean_m'])
    return {'chosen': best['floor'], 'candidates': rows,
            'config': {'yaw_noise_deg': conf.yaw_noise_deg, 'seed': conf.seed,
                       'yaw_search': conf.yaw_search, 'splits': list(splits),
                       'data_root': None if data_root is None else str(data_root)}}

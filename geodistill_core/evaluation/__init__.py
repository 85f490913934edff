"""Offline evaluation (method.md section 7): `evaluate(conf, paths) -> Path`.

config.py (EvalConfig, EvalPaths), checkpoints.py (provenance, the never-on-the-selection-
split guard, the reader config), predict.py (localizers over a split), summary.py
(metrics, per-item CSV), run.py (outputs, done-marker). CLI: train/evaluate.py.
"""
from geodistill_core.evaluation.checkpoints import (
    SelectionSplitError,
    check_not_selected_on,
    eval_data_config,
)
from geodistill_core.evaluation.config import EvalConfig, EvalPaths, default_output_dir
from geodistill_core.evaluation.predict import (
    ModelPredictions,
    SplitPredictions,
    heatmap_rows,
    predict_split,
)
from geodistill_core.evaluation.run import (
    DONE_FILE,
    NOISE_FILE,
    PER_ITEM_FILE,
    RESULTS_FILE,
    EvaluationExistsError,
    evaluate,
    run_evaluation,
)
from geodistill_core.evaluation.summary import model_errors, model_metrics, write_per_item_csv

__all__ = [
    'DONE_FILE', 'EvalConfig', 'EvalPaths', 'EvaluationExistsError', 'ModelPredictions',
    'NOISE_FILE', 'PER_ITEM_FILE', 'RESULTS_FILE', 'SelectionSplitError', 'SplitPredictions',
    'check_not_selected_on', 'default_output_dir', 'eval_data_config', 'evaluate',
    'heatmap_rows', 'model_errors', 'model_metrics', 'predict_split', 'run_evaluation',
    'write_per_item_csv',
]

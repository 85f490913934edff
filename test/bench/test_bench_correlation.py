"""bench_correlation: runs, writes its JSON, and the two implementations agree."""
import importlib.util
import json
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / 'bench' / 'bench_correlation.py'


def load_bench():
    spec = importlib.util.spec_from_file_location('bench_correlation', BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bench_writes_both_cases_and_the_implementations_agree(tmp_path):
    out = load_bench().main(['--out', str(tmp_path / 'c.json'), '--repeats', '1'])
    report = json.loads(out.read_text())
    assert set(report['cases']) == {'search_1x21', 'training_8x8'}
    for case in report['cases'].values():
        assert case['max_abs_difference'] < 1e-5 * case['max_abs_value']
        assert case['ms_median']['current'] > 0 and case['speedup'] > 0

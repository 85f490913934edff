"""bench_correlation: runs, writes its JSON, and the two implementations agree."""
import json

from bench_module import load_bench


def test_bench_writes_both_cases_and_the_implementations_agree(tmp_path):
    bench = load_bench('bench_correlation')
    out = bench.main(['--out', str(tmp_path / 'c.json'), '--repeats', '1'])
    report = json.loads(out.read_text())
    assert set(report['cases']) == {'search_1x21', 'training_8x8'}
    for case in report['cases'].values():
        assert case['max_abs_difference'] < 1e-5 * case['max_abs_value']
        assert case['ms_median']['current'] > 0 and case['speedup'] > 0

"""bench/bench_fusion.py: the table states each consistency figure with the interval a
consistent estimator would fall in, and reprints saved runs."""
import json

from bench_module import load_bench

bench = load_bench('bench_fusion')


def _block(nees, interval, inside=0.95, n_eff=40.0):
    return {'mean': 1.0, 'median': 0.9, 'recall_1m': 0.5, 'recall_3m': 0.9, 'recall_5m': 1.0,
            'nees_mean': nees, 'nees_mean_interval': interval, 'inside_95': inside,
            'inside_95_interval': [0.88, 0.99], 'effective_samples': n_eff}


def _row(fused, single):
    return {'camera': 'pinhole', 'drive': 's1', 'noise': 'white 3 m', 'mode': 'filter',
            'comparison': {'gnss_input': {'mean': 5.0}, 'single_frame': single,
                           'published': fused,
                           'windows': {'worse_than_gnss': 0, 'count': 3}},
            'fusion_cost_ms': {'p50': 1.1, 'p95': 1.6}, 'yaw': {'median': 0.4}}


def test_nees_inside_its_interval_is_plain_and_outside_is_starred():
    assert bench._nees({'nees_mean': 1.1, 'nees_mean_interval': [0.43, 3.5]}) == \
        '1.10 [0.43-3.50]'
    assert bench._nees({'nees_mean': 0.3, 'nees_mean_interval': [0.43, 3.5]}) == \
        '0.30 [0.43-3.50]*'
    assert bench._nees({'nees_mean': 4.0, 'nees_mean_interval': [0.43, 3.5]}).endswith('*')
    assert bench._nees({'nees_mean': 1.1, 'nees_mean_interval': None}) == '1.10'
    assert bench._nees({'nees_mean': float('nan')}) == 'n/a'


def test_table_reprints_saved_results(tmp_path, capsys):
    rows = [_row(_block(1.1, [0.43, 3.5]), _block(5.0, [1.6, 2.5]))]
    saved = tmp_path / 'fusion.json'
    saved.write_text(json.dumps({'benchmark': 'fusion', 'rows': rows}))
    assert bench.main(['--table', str(saved), str(saved)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4   # header, rule, the two runs' rows
    cells = [c.strip() for c in lines[2].split('|')[1:-1]]
    assert len(cells) == lines[0].count('|') - 1 == 16
    assert cells[9] == '1.10 [0.43-3.50]' and cells[11] == '5.00 [1.60-2.50]*'
    assert cells[10] == '95% [88-99] (40)'


def test_stop_phases_split_the_drive_at_the_stop(tmp_path):
    """10 Hz, parked from frame 3 for 0.5 s (frames 4-8), then driving: errors 1 m while
    parked and 3 m after, stated std 1 m: NEES 1 and 9, inside the 2-sigma ellipse (NEES
    6.18) and outside it."""
    rows = ['stamp_ns,truth_x_m,truth_y_m,est_x_m,est_y_m,cov_xx_m2,cov_xy_m2,cov_yy_m2']
    for k in range(20):
        err = 1.0 if 4 <= k <= 8 else 3.0 if k > 8 else 0.0
        rows.append(f'{k * 100_000_000},0,0,{err},0,1,0,1')
    frames = tmp_path / 'frames.csv'
    frames.write_text('\n'.join(rows) + '\n')
    out = bench.stop_phases(frames, tmp_path / 'bag', bench.Stop(at_frame=3, seconds=0.5))
    assert out['parked']['frames'] == 5 and out['after']['frames'] == 11
    assert out['parked']['mean_m'] == 1.0 and out['parked']['nees_mean'] == 1.0
    assert out['parked']['inside_95'] == 1.0 and out['after']['inside_95'] == 0.0
    assert out['after']['nees_max'] == 9.0 and out['after']['std_m_end'] == 1.0

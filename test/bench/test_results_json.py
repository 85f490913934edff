"""bench/results_json.py: the benchmarks' JSON writer creates the folder and round-trips."""
import json

from bench_module import load_bench

results_json = load_bench('results_json')


def test_write_json_creates_the_folder_and_writes_indented_json_with_a_newline(tmp_path):
    path = tmp_path / 'deep' / 'er' / 'result.json'
    written = results_json.write_json(str(path), {'b': [1, 2.5], 'a': None})
    assert written == path
    text = path.read_text()
    assert text.endswith('}\n') and '\n  "b": [' in text  # indent 2 by default
    assert json.loads(text) == {'b': [1, 2.5], 'a': None}


def test_write_json_passes_dumps_options(tmp_path):
    path = results_json.write_json(tmp_path / 'rows.json', [{'p': tmp_path}], indent=1,
                                   default=str)
    assert path.read_text() == json.dumps([{'p': str(tmp_path)}], indent=1) + '\n'

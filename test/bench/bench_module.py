"""Import a bench/ script as a module: the benchmarks are scripts, not a package."""
import importlib.util
from pathlib import Path
import sys

BENCH_DIR = Path(__file__).resolve().parents[2] / 'bench'


def load_bench(name: str):
    """bench/<name>.py as module `name` (registered in sys.modules first: dataclasses look
    their module up while the script is executed), with bench/ on sys.path."""
    if name in sys.modules:
        return sys.modules[name]
    if str(BENCH_DIR) not in sys.path:  # as when run as a script: its siblings import
        sys.path.insert(0, str(BENCH_DIR))
    spec = importlib.util.spec_from_file_location(name, BENCH_DIR / f'{name}.py')
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module

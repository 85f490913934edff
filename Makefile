# Two commands for users: `make demo` and `make test`. Everything runs from .venv.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: setup test test-fast lint demo bench bench-geodistill bench-train-accuracy clean

setup: $(STAMP)

# Idempotent: reinstalls only when requirements.txt, setup.py or package.xml change.
$(STAMP): requirements.txt setup.py package.xml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	@touch $(STAMP)
	@echo "geodistill: environment ready in $(VENV)"

test: setup
	$(PY) -m pytest test

test-fast: setup
	$(PY) -m pytest test -m "not slow"

lint: setup
	$(PY) -m ruff check geodistill_core geodistill_ros train test launch

# Speed and memory targets: each bench/bench_*.py writes JSON under bench/results/
# (minutes). The accuracy benchmark (about 90 min on a 2-core CPU) is its own target.
bench: setup
	@mkdir -p bench/results
	@for script in bench/bench_*.py; do \
		[ "$$script" = bench/bench_geodistill.py ] && continue; \
		[ "$$script" = bench/bench_train_accuracy.py ] && continue; \
		echo "== $$script"; $(PY) $$script || exit 1; \
	done

# The paper's GeoDistill experiments on the synthetic VIGOR-layout split: base, GeoDistill,
# Table 3 ablations, Table 4 scratch control, continued-training control; same and cross
# area (bench/results/geodistill.json; about 3-4 h on a 2-core CPU; resumable).
bench-geodistill: setup
	@mkdir -p bench/results
	$(PY) bench/bench_geodistill.py --out outputs/bench

# The same short training runs with the plain loop and with each speed option (CPU
# bfloat16, frozen BatchNorm), compared on the validation error: Lite0 on the flat world
# (3 seeds), VGG16 (bf16 only: no BatchNorm), and the embedded pinhole default's setting on
# a small synthetic KITTI export (2 seeds). JSON in bench/results/; about 1 h on 2 cores.
bench-train-accuracy: setup
	@mkdir -p bench/results
	$(PY) bench/bench_train_accuracy.py --models lite0 \
		--out bench/results/train_accuracy_lite0.json
	$(PY) bench/bench_train_accuracy.py --models vgg --variants fp32 bf16 --seeds 0 \
		--out bench/results/train_accuracy_vgg.json
	$(PY) bench/bench_train_accuracy.py --models pinhole --seeds 0 1 --base-epochs 6 \
		--distill-epochs 2 --steps 80 --work-dir outputs/train_accuracy \
		--out bench/results/train_accuracy_pinhole.json

# Synthetic KITTI drive -> rosbag -> the node over DDS -> error table (outputs/demo).
# CI shortens it: make demo DEMO_ARGS='--frames 40'
DEMO_ARGS ?=
demo: setup
	$(PY) -m geodistill_ros.replay.demo $(DEMO_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache

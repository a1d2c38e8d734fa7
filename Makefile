# The verbs a newcomer needs. Everything runs inside .venv (made by `make setup`).
VENV      ?= .venv
PY        := $(VENV)/bin/python -P
TEST_TIMEOUT ?= 600
# a per-test timeout when pytest-timeout is installed (a hung ROS test then fails, not the job)
PYTEST_TIMEOUT := $(shell $(PY) -c "import pytest_timeout" 2>/dev/null && echo --timeout=$(TEST_TIMEOUT))
PYTEST_ARGS ?=

.PHONY: setup demo test test-unit test-ros test-reliability test-faults test-faults-all mutation bench train train-shapes train-names eval lint clean

setup:  ## .venv with pinned wheels, msg/ built and the package installed into it (idempotent)
	bash scripts/setup.sh

demo: setup  ## the main job end to end (scripts/demo.sh)
	bash scripts/demo.sh

test: setup  ## every test (unit, model, world, training, bag, ROS integration, quality); not the reliability probes
	@rc=0; $(PY) -m pytest test -q $(PYTEST_TIMEOUT) $(PYTEST_ARGS) || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests" >&2; fi; \
	if [ "$$HYPERSEG_RELIABILITY" != 1 ]; then \
	echo "make test: left out test/reliability (slow probes of the node process; run: make test-reliability)" \
	"and the fault list (faults each test must catch; run: make test-faults)"; fi; exit $$rc

test-unit: setup  ## the fast ROS-free tests only
	$(PY) -m pytest test/unit -q $(PYTEST_TIMEOUT) $(PYTEST_ARGS)

test-ros: setup  ## the node over real Fast DDS, in separate processes
	$(PY) -m pytest test/ros -q $(PYTEST_TIMEOUT) $(PYTEST_ARGS)

RELIABILITY_REPORT ?= out/reliability.json
test-reliability: setup  ## slow probes of the node process (60 s floods, bad input, signals); prints the JSON report
	@rm -f $(RELIABILITY_REPORT); rc=0; HYPERSEG_RELIABILITY=1 HYPERSEG_RELIABILITY_REPORT=$(RELIABILITY_REPORT) \
	$(PY) -m pytest test/reliability -q $(PYTEST_TIMEOUT) $(PYTEST_ARGS) || rc=$$?; \
	cat $(RELIABILITY_REPORT) 2>/dev/null || echo "make test-reliability: no report written" >&2; exit $$rc

test-faults: setup  ## each fault of test/faults/faults.yaml applied alone to a copy of the tree: its tests must fail
	$(PY) scripts/test_faults.py

test-faults-all: setup  ## test-faults and the slow faults (ROS tests)
	$(PY) scripts/test_faults.py --slow

mutation:  ## mutation scores of the ROS-free logic modules (docs/TESTING.md; needs mutmut, see scripts/mutation.sh)
	bash scripts/mutation.sh

bench: setup  ## tables (per task: model ms, node fps, latency, stages; 1/2/4 cameras; speech), then the JSON medians
	$(PY) scripts/bench.py

train: setup  ## train the embedded default model on the procedural world
	$(PY) -m hyperseg_ros.training.train

SHAPES_OUT ?= out/shape-model
train-shapes: setup  ## teach the default model the mask-shape encoder alone, into SHAPES_OUT (~15 min on 2 cores)
	$(PY) -m hyperseg_ros.training.train_mask_shape --init-from models/hyperseg-world --out $(SHAPES_OUT)

# after train-shapes: make train-names NAMES_FROM=out/shape-model (the scorer reads the encoder it is fitted on)
NAMES_FROM ?= models/hyperseg-world
NAMES_OUT ?= out/name-model
train-names: setup  ## fit the open-vocabulary name scorer on NAMES_FROM's evidence, into NAMES_OUT (~8 min on 2 cores)
	$(PY) -m hyperseg_ros.training.train_name_scorer --init-from $(NAMES_FROM) --out $(NAMES_OUT)

# make eval SPLIT=val SAMPLES=10 CLIPS=2: a few minutes (defaults: all three splits, ~20 min on 2 cores)
SPLIT   ?= all
SAMPLES ?= 200
CLIPS   ?= 32
STILL   ?= $(shell [ $(SAMPLES) -lt 50 ] && echo $(SAMPLES) || echo 50)
eval: setup  ## evaluate a model on held-out scenes of the procedural world (knobs SPLIT, SAMPLES, CLIPS, STILL)
	$(PY) -m hyperseg_ros.training.evaluate --split $(SPLIT) --samples $(SAMPLES) --clips $(CLIPS) --still $(STILL)

lint:  ## syntax + pyflakes-level checks (ruff when installed)
	@if $(PY) -c "import ruff" 2>/dev/null; then $(VENV)/bin/ruff check hyperseg_ros test scripts launch; \
	else $(PY) -m compileall -q hyperseg_ros test scripts launch && echo "lint: compileall ok (install ruff for more)"; fi

clean:  ## build outputs (keeps .venv)
	rm -rf build build.*.log .pytest_cache

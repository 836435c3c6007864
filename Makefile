# microgen: the two commands a newcomer needs are `make demo` and `make test` (see README.md).
PYTHON ?= python3
PYTEST ?= $(PYTHON) -m pytest
# Small float64 matmuls in the reference executor are much slower with threaded BLAS on 2 cores.
export OPENBLAS_NUM_THREADS ?= 1
JOBS ?= 2
MODEL ?=
BOARD ?= qemu-cortex-m4
OUT ?= out

.PHONY: setup setup-python test test-all demo bench clean

setup:
	scripts/setup.sh all

setup-python:
	scripts/setup.sh python

# Fast tests (slow cases are marked and left to test-all). The emulated-board tests need the cross
# toolchains and QEMU: `setup` installs them with apt-get when missing.
test: setup
	$(PYTEST) -q -n $(JOBS)

# Everything, slow cases included.
test-all: setup
	$(PYTEST) -q -n $(JOBS) -m ""

# The main job on a model the project makes itself (or MODEL=path/to/model.tflite).
demo: setup
	scripts/demo.sh "$(MODEL)" "$(BOARD)" "$(OUT)"

# Speed and memory figures, printed as a table.
bench: setup
	$(PYTHON) benchmarks/run.py

clean:
	rm -rf $(OUT) .pytest_cache .hypothesis build *.egg-info

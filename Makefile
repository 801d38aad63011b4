# The two commands of the README: `make reproduce` (the main job: the cpu preset of the paper pipeline) and
# `make test` (notebook tests + pytest). Both create and fill the virtual environment on first use.
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
PRESET ?= cpu
JOBS ?= 2

.PHONY: setup test test-nbs test-py reproduce smoke bench export clean-nbs nbs

setup: $(VENV)/.installed

$(VENV)/.installed: settings.ini setup.py
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install -q -e ".[dev]"
	# imagecorruptions only provides the frost overlay pictures; its own dependencies (opencv, Wand) are not needed
	$(PY) -m pip install -q --no-deps imagecorruptions==1.1.2
	touch $@

test: setup
	$(BIN)/augflat data prepare cifar10 tinyimagenet pacs || echo "some datasets are absent: tests that need them will skip"
	$(MAKE) test-nbs test-py

test-nbs: setup
	$(BIN)/nbdev_test --n_workers 2 --skip_folder_re '^paper$$' --timing

test-py: setup
	$(BIN)/pytest -q tests

reproduce: setup
	$(BIN)/augflat reproduce --preset $(PRESET) --jobs $(JOBS)

smoke: setup
	$(BIN)/augflat reproduce --preset smoke

bench: setup
	for b in benchmarks/*/run.py; do $(PY) $$b; done

export: setup
	$(BIN)/nbdev_export && $(BIN)/nbdev_clean

# re-execute the notebooks of nbs/ (the cells nbdev_test runs) and keep their outputs, then clean their metadata
nbs: setup
	$(PY) tools/run_notebooks.py --n-workers 2
	$(BIN)/nbdev_clean

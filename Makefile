# cropassets: two commands, `make demo` and `make test`. See README.md.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home
WORLD ?= data/demo
HOST ?= 127.0.0.1
UI_PORT ?= 3000
MAP_PORT ?= 8080

.PHONY: demo test test-fast test-slow test-portability install web ui serve maps lint bench clean-data

# Tests whose float results depend on BLAS/oneDNN kernels and thread counts (docs/testing.md).
FLOAT_TESTS := tests/core/test_smoothing.py tests/core/test_crop_map.py tests/ml/test_cwt.py \
	tests/core/test_composite.py tests/ml/test_prepare.py tests/ml/test_train_predict.py \
	tests/ml/test_served.py tests/core/test_served_maps.py tests/ml/test_time_in_days.py \
	tests/ml/test_refit.py tests/ml/test_pair.py

# Virtual environment with the project (editable) and its test extras.
$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check --upgrade pip
	$(BIN)/pip install -q --disable-pip-version-check -e '.[test]'
	$(BIN)/pip check
	touch $@

install: $(BIN)/.installed

# The web map's browser dependency (MapLibre GL), served locally by the tiler.
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

web: node_modules/.installed

$(DAGSTER_HOME)/dagster.yaml: deploy/dagster.yaml
	mkdir -p $(DAGSTER_HOME)
	cp deploy/dagster.yaml $@

demo: install web $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/cropassets demo-world --out $(WORLD)
	@echo "Demo world:        $(abspath $(WORLD))  (STAC catalog in $(WORLD)/stac)"
	@echo "Assets:            $(abspath data)/{raw_scenes,weekly_cube}/<tile>/<week>.zarr"
	@echo "Maps (COG):        $(abspath data)/{crop_map,sos_map,coverage_map}/<tile>/<week>.tif"
	@echo "Checkpoints:       $(abspath data)/cnn2d_checkpoint/k<week>.pt"
	@echo "Knee report:       $(abspath data)/knee_report/knee.json (+ knee.png)"
	@echo "Dagster instance:  $(DAGSTER_HOME)"
	@# serves the web map and the UI first, then materializes the season week by week
	$(BIN)/cropassets demo --host $(HOST) --ui-port $(UI_PORT) --map-port $(MAP_PORT)

# Crop and coverage maps of the current season and the week layers the tiler serves.
maps: install $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/cropassets materialize week_model --weeks current --missing
	$(BIN)/cropassets materialize crop_map --weeks current --missing
	$(BIN)/cropassets materialize coverage_map --weeks current --missing
	$(BIN)/cropassets materialize week_layers --weeks current

# The web map (tiler) in the background and the Dagster UI in the foreground; Ctrl-C stops both.
serve: install web $(DAGSTER_HOME)/dagster.yaml
	@echo "Web map:     http://$(HOST):$(MAP_PORT)/"
	@echo "Dagster UI:  http://$(HOST):$(UI_PORT)/"
	$(BIN)/python -m tiler --data data --host $(HOST) --port $(MAP_PORT) & tiler=$$!; \
	trap 'kill $$tiler 2>/dev/null' EXIT INT TERM; \
	$(BIN)/dagster dev -w workspace.yaml -h $(HOST) -p $(UI_PORT)

ui: install $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/dagster dev -w workspace.yaml -h $(HOST) -p $(UI_PORT)

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy

# Lint and types, then the whole suite (fast and slow tests) in one pytest-xdist session on
# three workers (the Dagster-services tests mostly wait on daemon ticks, so a third worker
# fills the two cores), the slowest files first; beside it, one portability variant: the
# float-sensitive tests with one OpenMP thread (other kernels), printed at the end.
test: install web
	$(BIN)/ruff check .
	@# type check of cropassets/core, cropassets/ml and tiler ([tool.mypy] in pyproject.toml)
	$(BIN)/mypy
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q -p no:cacheprovider $(FLOAT_TESTS) \
	  > .float-variant.log 2>&1 & fv=$$!; \
	$(BIN)/python -m pytest -q -p no:cacheprovider -n 3 --dist loadfile --no-loadscope-reorder \
	  -m "slow or not slow" --durations=20; rc=$$?; \
	wait $$fv; frc=$$?; echo "--- float-sensitive tests with OMP_NUM_THREADS=1:"; \
	if [ $$frc -eq 0 ]; then tail -n 1 .float-variant.log; else cat .float-variant.log; fi; \
	[ $$rc -eq 0 ] && [ $$frc -eq 0 ]

# The fast suite alone (slow tests deselected), on both cores: on every change.
test-fast: install web
	$(BIN)/mypy
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

# The float-sensitive tests under other OpenBLAS kernels and thread counts (before CI does).
test-portability: install
	@fail=0; for v in "" OPENBLAS_CORETYPE=Haswell OPENBLAS_CORETYPE=Sandybridge \
	    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1; do \
	  echo "--- $${v:-as set}"; env $$v $(BIN)/python -m pytest -q -p no:cacheprovider \
	    $(FLOAT_TESTS) || { echo "FAILED with: $$v"; fail=1; }; done; exit $$fail

bench: install
	$(BIN)/python bench/bench_ingest.py
	$(BIN)/python bench/bench_smoothing.py
	$(BIN)/python bench/bench_tile_memory.py
	$(BIN)/python bench/bench_cwt.py
	$(BIN)/python bench/bench_cnn.py
	$(BIN)/python bench/bench_predict.py
	$(BIN)/python bench/bench_tiles.py

clean-data:
	rm -rf data .dagster_home

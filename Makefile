# Two commands for a fresh machine: `make test` and `make demo`. Both create the venv when missing.
#   make test                 # Airflow 3.3 (default)
#   make test AIRFLOW=2.11    # Airflow 2.11, in its own venv
PYTHON ?= python3
AIRFLOW ?= 3.3
ifeq ($(AIRFLOW),2.11)
AIRFLOW_SPEC := apache-airflow==2.11.*
VENV ?= .venv-2.11
else
AIRFLOW_SPEC := apache-airflow==3.3.2
VENV ?= .venv
endif
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(AIRFLOW)
PYTEST_ARGS ?=
DIST ?= dist

.PHONY: venv test demo bench lint dist clean

venv: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(AIRFLOW_SPEC)" apache-airflow-providers-http -e ".[dev]"
	touch $@

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

demo: $(STAMP)
	$(BIN)/python example_dags/demo.py

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

# wheel + sdist into $(DIST)/ (install one with: pip install dist/airflow_provider_exotel-*.whl)
dist: $(STAMP)
	rm -f $(DIST)/airflow_provider_exotel-*
	$(BIN)/python -m build --outdir $(DIST) .

lint: $(STAMP)
	$(BIN)/ruff check airflow_provider_exotel tests example_dags benchmarks
	$(BIN)/ruff format --check airflow_provider_exotel tests example_dags benchmarks
	$(BIN)/mypy airflow_provider_exotel

clean:
	rm -rf .venv .venv-2.11 .demo build dist *.egg-info

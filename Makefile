# Commands for a fresh machine: `make test`, `make demo`, `make airflow`. Each creates the venv when missing.
#   make test                 # Airflow 3.3 (default)
#   make test AIRFLOW=2.11    # Airflow 2.11, in its own venv
PYTHON ?= python3
AIRFLOW ?= 3.3
ifeq ($(AIRFLOW),2.11)
AIRFLOW_SPEC := apache-airflow==2.11.*
# known-bad for Airflow 2.11: cryptography 51 drops every connection (Fernet); only used by `make constraints`
KNOWN_BAD := "cryptography<51"
VENV ?= .venv-2.11
else
AIRFLOW_SPEC := apache-airflow==3.3.2
KNOWN_BAD :=
VENV ?= .venv
endif
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(AIRFLOW)
# every dev/test install is pinned to a set in which the full suite passed (Airflow's own practice)
CONSTRAINTS := constraints/airflow-$(AIRFLOW).txt
PYTEST_ARGS ?=
# the suite on every core (at most 4), a test file per worker (module fixtures start once), in
# collection order (tests/conftest.py puts the files that start Airflow processes first);
# `make test PYTEST_XDIST=` runs it in one process
PYTEST_XDIST ?= -n auto --maxprocesses 4 --dist loadfile --no-loadscope-reorder
DIST ?= dist

.PHONY: venv versions test demo airflow bench lint dist clean constraints

venv: $(STAMP)

$(STAMP): pyproject.toml Makefile $(CONSTRAINTS)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c $(CONSTRAINTS) "$(AIRFLOW_SPEC)" apache-airflow-providers-http -e ".[dev]"
	touch $@

# what this run is on (printed first by `make test`, so a CI failure says what it ran on)
versions: $(STAMP)
	@$(BIN)/python -c "import importlib.metadata as m, sys; print('python', sys.version.split()[0]); \
	[print(d, m.version(d)) for d in ('apache-airflow', 'apache-airflow-providers-http', \
	'apache-airflow-providers-common-compat', 'cryptography', 'requests')]"

test: $(STAMP) versions
	$(BIN)/python -m pytest $(PYTEST_XDIST) $(PYTEST_ARGS)

# Regenerate constraints/airflow-$(AIRFLOW).txt from a fresh, unconstrained resolve (minus KNOWN_BAD),
# then run `make test AIRFLOW=$(AIRFLOW)`: commit the file only when the suite is green.
CVENV := .venv-constraints-$(AIRFLOW)
constraints:
	rm -rf $(CVENV)
	$(PYTHON) -m venv $(CVENV)
	$(CVENV)/bin/python -m pip install -q --upgrade pip
	$(CVENV)/bin/python -m pip install -q "$(AIRFLOW_SPEC)" $(KNOWN_BAD) apache-airflow-providers-http -e ".[dev]"
	mkdir -p constraints
	{ echo "# Constraints for the dev/test environment on Airflow $(AIRFLOW) (Python 3.11): every package of a venv"; \
	  echo "# in which the full suite passed. Regenerate with: make constraints AIRFLOW=$(AIRFLOW) (see CONTRIBUTING.md)."; \
	  $(CVENV)/bin/python -m pip freeze --exclude-editable | grep -v '^-e '; } > $(CONSTRAINTS).new
	mv $(CONSTRAINTS).new $(CONSTRAINTS)
	rm -rf $(CVENV)
	@echo "wrote $(CONSTRAINTS); now run: make test AIRFLOW=$(AIRFLOW)"

demo: $(STAMP)
	$(BIN)/python example_dags/demo.py

# a local multi-process Airflow 3 (api-server, scheduler, dag-processor, triggerer) on example_dags/ with
# the simulator and the exotel_default connection; Ctrl-C stops it all (scripts/airflow_local.py; ARGS:
# e.g. ARGS='--port 8081', see `python scripts/airflow_local.py --help`)
ARGS ?=
airflow: $(STAMP)
	$(BIN)/python scripts/airflow_local.py $(ARGS)

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

# wheel + sdist into $(DIST)/ (install one with: pip install dist/airflow_provider_exotel-*.whl). Needs only
# `build` in a small venv of its own: `python -m build` makes the wheel in an isolated environment
# with the build backend (hatchling), never the dev environment (Airflow, test and lint tools).
BUILD_VENV ?= .venv-build
BUILD_STAMP := $(BUILD_VENV)/.installed-build
$(BUILD_STAMP):
	test -x $(BUILD_VENV)/bin/python || $(PYTHON) -m venv $(BUILD_VENV)
	$(BUILD_VENV)/bin/python -m pip install -q --upgrade pip build
	touch $@

dist: $(BUILD_STAMP)
	rm -f $(DIST)/airflow_provider_exotel-*
	$(BUILD_VENV)/bin/python -m build --outdir $(DIST) .

lint: $(STAMP)
	$(BIN)/ruff check airflow_provider_exotel tests example_dags benchmarks scripts
	$(BIN)/ruff format --check airflow_provider_exotel tests example_dags benchmarks scripts
	$(BIN)/mypy airflow_provider_exotel

clean:
	rm -rf .venv .venv-2.11 .venv-build .venv-constraints-* .demo .airflow-local build dist *.egg-info

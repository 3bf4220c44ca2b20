# RaterHub: `make demo` and `make test` work from a fresh clone with only Python 3.11.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# make demo PORT=8123: the demo's web server port (the worker needs none).
PORT ?= 8000

.PHONY: demo test test-fast lint format bench clean cluster cluster-stop cluster-status loadtest faults

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	touch $(STAMP)

var:
	mkdir -p var

demo: $(STAMP) var
	@case "$(PORT)" in ''|*[!0-9]*) echo "PORT must be a port number, not '$(PORT)'"; exit 2;; esac
	$(PY) manage.py migrate --noinput
	$(PY) manage.py seed_demo --port $(PORT)
	$(PY) manage.py collectstatic --noinput --verbosity 0
	PORT=$(PORT) bash scripts/run_demo.sh

test: lint var
	$(PY) manage.py makemigrations --check --dry-run
	$(VENV)/bin/pytest

# The developer's loop: lint and every test but the slow ones (subprocesses, a real Celery
# worker, the browser). `make test` and CI run those too.
test-fast: lint var
	$(VENV)/bin/pytest -m "not slow"

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: $(STAMP) var
	$(PY) -m bench $(BENCH)

# The multi-node layout on this machine (deploy/cluster.sh; variables CLUSTER_*, see there).
cluster: $(STAMP) var
	bash deploy/cluster.sh start

cluster-stop:
	bash deploy/cluster.sh stop

cluster-status:
	bash deploy/cluster.sh status

# Locust and the fault suite (not part of make test): see the README, "Load and fault suites".
LOAD_STAMP := $(VENV)/.installed-load
$(LOAD_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -e ".[test,load]"
	touch $(LOAD_STAMP)

loadtest: $(LOAD_STAMP) var
	$(PY) -m loadtest.run $(LOADTEST_ARGS)

faults: $(LOAD_STAMP) var
	$(PY) -m loadtest.faults $(FAULTS_ARGS)

clean:
	rm -rf $(VENV) var

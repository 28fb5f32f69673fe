# Deep Learning by Doing — every entry point of the build. `make help` lists them.
# The first `make html` or `make test` creates .venv and installs the pinned environment.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PROFILE ?= auto
EXTRAS := book,lab,test,offline-data,chapters
TEX_DEBS := $(shell grep -v '^\#' requirements/apt-pdf.txt)
TEST_DEBS := $(shell grep -v '^\#' requirements/apt-test.txt)
TEST_DEPS := $(VENV)/.test-deps
# A local mirror of the book's data files (shared/data beside the checkout, as in this
# project's CI) is found by tools/execution/kernel_env.py, for make and python -m tools alike.

.PHONY: help setup lib execute html pdf pdf-deps test-deps serve lab live test lint clean lock

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 14

$(STAMP): pyproject.toml requirements/lock.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip>=24"
	$(PY) -m pip install --quiet -c requirements/lock.txt -e ".[$(EXTRAS)]"
	@touch $(STAMP)

setup: $(STAMP)  ## create .venv with the pinned dependencies

lib: setup  ## regenerate dlbook/ from the #@save blocks of the chapters
	$(PY) -m tools lib

execute: setup  ## execute changed chapters into the cache (PROFILE=auto|full|smoke)
	$(PY) -m tools execute --profile $(PROFILE)

html: setup  ## execute and build the website into _build/html
	$(PY) -m tools html --profile $(PROFILE)

pdf: setup  ## build the PDF book into _build/latex/book.pdf (needs TeX: make pdf-deps)
	$(PY) -m tools pdf --profile $(PROFILE)

notebooks: execute  ## executed, Colab-ready notebooks into _build/notebooks (one per section)
	$(PY) -m tools notebooks

pdf-deps:  ## install the minimal TeX set for `make pdf` (Debian/Ubuntu, root)
	apt-get update -q
	apt-get install -y -q --no-install-recommends $(TEX_DEBS)

test-deps: pdf-deps  ## install what the PDF and browser tests need (Debian/Ubuntu, root)
	apt-get install -y -q --no-install-recommends $(TEST_DEBS)

# Before the first test run, and again when a package list changes: every program the
# tests call is on PATH, or installed now (Debian/Ubuntu as root), or make stops here
# naming what is missing and how to install it.
$(TEST_DEPS): requirements/apt-pdf.txt requirements/apt-test.txt tools/render/systemdeps.py \
		$(STAMP)
	$(PY) -m tools test-deps --install
	@touch $@

serve: html  ## serve the website on http://127.0.0.1:8000 (rebuild with make html)
	$(PY) -m http.server --directory _build/html --bind 127.0.0.1 8000

# jupyter-config/ adds the book's JupyterLab settings (a .md opens as a notebook) to the
# reader's own; the kernel is the python3 of .venv, in which `import dlbook` works.
lab: setup  ## open the chapters as notebooks in JupyterLab (kernel: the book's .venv)
	JUPYTER_CONFIG_PATH="$(CURDIR)/jupyter-config$(if $(JUPYTER_CONFIG_PATH),:$(JUPYTER_CONFIG_PATH))" \
		JUPYTER_PREFER_ENV_PATH=1 $(PY) -m jupyterlab $(LAB_ARGS)

live: setup  ## serve the website on http://127.0.0.1:8000, rebuilt on every save
	$(PY) -m tools live --profile $(PROFILE) $(LIVE_ARGS)

test: setup $(TEST_DEPS)  ## run the test suite (first gets TeX and Chromium, or says how)
	$(PY) -m pytest

lint: setup  ## ruff over the build system, tests and benchmarks
	$(PY) -m ruff check tools tests benchmarks

.PHONY: check new-section notebooks
check: setup  ## lint the book: structure, references, images, code cells (file:line)
	$(PY) -m tools check

new-section: setup  ## start a section: CHAPTER=02-preliminaries SLUG=my-topic [TITLE=...]
	$(PY) -m tools new-section --chapter "$(CHAPTER)" --slug "$(SLUG)" \
		$(if $(TITLE),--title "$(TITLE)")

lock: setup  ## rewrite requirements/lock.txt from the current .venv
	$(PY) -m pip freeze --exclude-editable | sed 's/^torch==\(.*\)+cpu$$/torch==\1/' \
		> requirements/lock.tmp
	(printf '%s\n' '# Exact versions of everything the book environment installs.' \
		'# Regenerate after changing pyproject.toml: make lock'; \
		cat requirements/lock.tmp) > requirements/lock.txt && rm requirements/lock.tmp

clean:  ## remove built output (keeps the execution cache and .venv)
	rm -rf _build/html _build/latex _build/.work-* _build/*.new _build/*.old

distclean: clean  ## remove everything generated, the cache and .venv included
	rm -rf _build $(VENV)

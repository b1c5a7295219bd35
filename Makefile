# Everything lives in .venv/ inside the repo. torch 2.13.0 (CPU build) goes in
# first: installed later, as a dependency, pip would fetch the CUDA build.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install index serve test lint clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# Syncs the index with corpus/ (builds the model and the index on first use; an
# unchanged corpus costs about a second).
index: install
	$(BIN)/qa index

serve: index
	$(BIN)/qa serve

test: install
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check qa tests

clean:
	rm -rf embeddings/index .pytest_cache artifacts

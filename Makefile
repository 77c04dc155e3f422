# kaggle-kit: every target creates the virtual environment first if it is missing.
VENV   ?= .venv
PY     := $(VENV)/bin/python
KIT    := $(VENV)/bin/kaggle-kit
STAMP  := $(VENV)/.installed-stamp
COMP   ?=

.PHONY: install test demo fetch clean

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[cpu,test]'
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q

demo: $(STAMP)
	$(PY) -m kaggle_kit.demo

fetch: $(STAMP)
	$(KIT) fetch $(COMP)

clean:
	rm -rf $(VENV) .cache

# kaggle-kit: every target creates the virtual environment first if it is missing.
VENV   ?= .venv
PY     := $(VENV)/bin/python
KIT    := $(VENV)/bin/kaggle-kit
STAMP  := $(VENV)/.installed-stamp
COMP   ?=

.PHONY: install test demo fetch clean browser

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[cpu,test,export,ray]'
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP) browser
	$(PY) -m pytest -q

# the report tests open pages in headless Chromium; installed once (needs root, as on CI)
browser:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

demo: $(STAMP)
	$(PY) -m kaggle_local.demo

fetch: $(STAMP)
	$(KIT) fetch $(COMP)

clean:
	rm -rf $(VENV) .cache

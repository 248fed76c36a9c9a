# Two commands on a fresh machine (Python 3.11 + package registries):
#   make run    set up .venv and start the app on http://localhost:8501
#   make test   set up .venv with test tools and run every test
#   make viewer rebuild the viewer component (ui/viewer/build; needs Node, the bundle is committed)
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
PY     := $(VENV)/bin/python
PORT   ?= 8501

.PHONY: run test venv venv-test clean viewer
run: $(VENV)/.runtime
	TF_CPP_MIN_LOG_LEVEL=3 $(PY) -m streamlit run serve.py --server.port $(PORT)

test: $(VENV)/.test
	TF_CPP_MIN_LOG_LEVEL=3 $(PY) -m pytest

venv: $(VENV)/.runtime
venv-test: $(VENV)/.test

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.runtime: requirements.txt | $(VENV)/bin/python
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.test: requirements.txt requirements-test.txt | $(VENV)/bin/python
	$(PY) -m pip install --quiet -r requirements-test.txt
	touch $(VENV)/.runtime $@

# Rebuild the viewer component's bundle (needs Node and npm; the bundle is committed)
viewer:
	scripts/build_viewer.sh

clean:
	rm -rf $(VENV)

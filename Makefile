# The two commands a user needs: `make demo` and `make test`. Both build .venv/ first
# (and node_modules/ for the Serverless CLI) and are quick when those are up to date.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
# Offline packaging of the stack: dummy credentials, no instance-metadata probing.
OFFLINE_ENV := AWS_ACCESS_KEY_ID=offline AWS_SECRET_ACCESS_KEY=offline AWS_REGION=us-east-1 \
	AWS_EC2_METADATA_DISABLED=true VIDSIFT_OFFLINE_PACKAGE=1
# Tests that touch onnxruntime/TFLite/Ultralytics write under $HOME: give them a scratch one.
TEST_ENV := HOME=$(CURDIR)/.venv/home YOLO_CONFIG_DIR=$(CURDIR)/.venv/home/yolo YOLO_OFFLINE=1

.PHONY: venv node chromium demo test lint package layers bench soak clean

venv: $(STAMP)

$(STAMP): requirements.txt requirements-nodeps.txt requirements-dev.txt pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	@# The editable install below builds without isolation: it needs a setuptools with
	@# bdist_wheel built in (>= 70.1), not the 65.x a fresh venv starts with.
	$(BIN)/pip install -q --disable-pip-version-check "setuptools==80.9.0"
	$(BIN)/pip install -q --disable-pip-version-check -r requirements.txt -r requirements-dev.txt
	$(BIN)/pip install -q --disable-pip-version-check --no-deps -r requirements-nodeps.txt
	@# A dependency may drag in the non-headless OpenCV 5.x; keep the one we pinned.
	$(BIN)/pip uninstall -y -q opencv-python 2>/dev/null || true
	$(BIN)/pip install -q --disable-pip-version-check --no-deps --force-reinstall \
		$$(grep -E '^opencv-python-headless==' requirements.txt)
	$(BIN)/pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	mkdir -p $(VENV)/home/yolo
	touch $@

node: $(NODE_STAMP)

# The Serverless CLI (top level) and the local face analyser's Node sidecar (its models
# ship inside the npm package @vladmandic/human).
$(NODE_STAMP): package.json package-lock.json vidsift/local/human/package.json vidsift/local/human/package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	npm ci --no-audit --no-fund --loglevel=error --prefix vidsift/local/human
	touch $@

# The report's browser tests render report.html in headless Chromium (Debian's package).
chromium:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium)

demo: venv node
	$(BIN)/python -m vidsift.demo

test: venv node chromium
	$(BIN)/ruff check .
	$(TEST_ENV) $(OFFLINE_ENV) PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/python -m pytest -q -m "not slow"

lint: venv
	$(BIN)/ruff check .

package: venv node
	$(OFFLINE_ENV) bash scripts/package-offline.sh

layers:
	bash layers/build.sh

bench: venv
	$(TEST_ENV) $(BIN)/python -m bench

soak: venv node
	$(TEST_ENV) $(OFFLINE_ENV) $(BIN)/python -m pytest -q -m slow

clean:
	rm -rf $(VENV) node_modules vidsift/local/human/node_modules .serverless layers/build

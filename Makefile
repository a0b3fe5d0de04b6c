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

.PHONY: venv node checkov chromium live-camera demo test test-yolo lint package layers bench bench-yolo soak clean

venv: $(STAMP)

# $(call install_venv,DIR,EXTRA PIP ARGS): a venv with the project and its pins (plus extras).
define install_venv
	test -x $(1)/bin/python || $(PY) -m venv $(1)
	@# The editable install below builds without isolation: it needs a setuptools with
	@# bdist_wheel built in (>= 70.1), not the 65.x a fresh venv starts with.
	$(1)/bin/pip install -q --disable-pip-version-check "setuptools==80.9.0"
	$(1)/bin/pip install -q --disable-pip-version-check -r requirements.txt -r requirements-dev.txt $(2)
	$(1)/bin/pip install -q --disable-pip-version-check --no-deps -r requirements-nodeps.txt
	@# A dependency may drag in the non-headless OpenCV 5.x; keep the one we pinned.
	$(1)/bin/pip uninstall -y -q opencv-python 2>/dev/null || true
	$(1)/bin/pip install -q --disable-pip-version-check --no-deps --force-reinstall \
		$$(grep -E '^opencv-python-headless==' requirements.txt)
	$(1)/bin/pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	mkdir -p $(1)/home/yolo
	touch $@
endef

$(STAMP): requirements.txt requirements-nodeps.txt requirements-dev.txt pyproject.toml
	$(call install_venv,$(VENV),)

# The cloud's detector path (Ultralytics YOLO, torch) and the SageMaker SDK deploy path, in
# their own venv so that .venv, `make test` and the Lambda functions never carry torch.
YOLO_VENV := .venv-yolo
$(YOLO_VENV)/.installed: requirements.txt requirements-nodeps.txt requirements-dev.txt requirements-yolo.txt pyproject.toml
	$(call install_venv,$(YOLO_VENV),-r requirements-yolo.txt)

test-yolo: $(YOLO_VENV)/.installed node
	$(subst $(VENV)/home,$(YOLO_VENV)/home,$(TEST_ENV)) $(OFFLINE_ENV) PATH=$(CURDIR)/$(YOLO_VENV)/bin:$$PATH $(YOLO_VENV)/bin/python -m pytest -q -rs \
		tests/test_inference.py tests/test_local_sagemaker.py

bench-yolo: $(YOLO_VENV)/.installed
	$(subst $(VENV)/home,$(YOLO_VENV)/home,$(TEST_ENV)) $(YOLO_VENV)/bin/python -m bench detector

# checkov (tests/test_checkov.py scans the packaged stack) in its own venv: its many
# dependencies must not move the pins of .venv.
CHECKOV_VENV := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed
checkov: $(CHECKOV_STAMP)

$(CHECKOV_STAMP): requirements-checkov.txt
	test -x $(CHECKOV_VENV)/bin/python || $(PY) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install -q --disable-pip-version-check -r requirements-checkov.txt
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

# tests/test_edge_live.py: a real RTSP camera on loopback (GStreamer's RTSP server, run by the
# system python3, fed by ffmpeg). Debian's packages, installed only when missing.
LIVE_CAMERA_CHECK := import gi; gi.require_version('Gst', '1.0'); gi.require_version('GstRtspServer', '1.0'); \
	from gi.repository import Gst; Gst.init(None); \
	assert all(map(Gst.ElementFactory.find, ['udpsrc', 'rtph264depay', 'h264parse', 'rtph264pay']))
live-camera:
	@(command -v ffmpeg && /usr/bin/python3 -c "$(LIVE_CAMERA_CHECK)") >/dev/null 2>&1 || \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
			ffmpeg python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base gstreamer1.0-plugins-good \
			gstreamer1.0-plugins-bad)

demo: venv node
	$(BIN)/python -m vidsift.cli.demo

# Four workers on two cores: most of the suite waits (visibility timeouts, retry backoff, a
# hung endpoint), not computes. --dist loadfile keeps each module, and the local stack its
# tests share, on one worker. PYTEST_ARGS adds options (e.g. PYTEST_ARGS="-n 0 -x").
PYTEST_WORKERS ?= 4
test: venv node checkov chromium live-camera
	$(BIN)/ruff check .
	$(TEST_ENV) $(OFFLINE_ENV) PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/python -m pytest -q -rs -m "not slow" \
		-n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

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
	rm -rf $(VENV) $(YOLO_VENV) $(CHECKOV_VENV) node_modules vidsift/local/human/node_modules .serverless layers/build

# NeuroHSI: two commands do all set-up on a fresh machine.
#   make run   - install into .venv and launch the app on the demo capture
#   make test  - install what the tests need (Python packages, Azurite) and run them
#   make test-matrix  - the whole suite once per machine variant (threads, one core, time zone, locale)
#   make bundle       - the desktop bundle dist/neurohsi/ (PyInstaller; no Python needed on the target)
#   make bundle-test  - build it, copy it outside the repo and smoke-test it with a clean environment
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q
STAMP_BASE := $(VENV)/.stamp-base
STAMP_TEST := $(VENV)/.stamp-test
STAMP_BUNDLE := $(VENV)/.stamp-bundle
BUNDLE_DIR := dist/neurohsi
AZURITE := .tools/azurite/node_modules/.bin/azurite
# Azurite from the npm registry, pinned with a committed lock file
# (tests/support/azurite-npm) so every clone installs the same tree.
AZURITE_LOCK := tests/support/azurite-npm/package-lock.json
DEMO_DIR := .cache/demo
DEMO_RAW := $(DEMO_DIR)/ID0001C01.tif

.PHONY: run test test-matrix install test-deps demo-capture demo-model bench constraints screenshot qt-system-libs clean \
	bundle bundle-test

# Without a display (a server, CI, ssh) the app renders offscreen, saves a grab of
# its window and says where, instead of failing to connect to a display.
run: install demo-capture
	@if [ -n "$$DISPLAY$$WAYLAND_DISPLAY" ]; then \
		$(MAKE) --no-print-directory qt-system-libs && \
		$(VENV)/bin/neurohsi gui $(DEMO_RAW) --classify; \
	else \
		echo "No display found: rendering the app offscreen to $(DEMO_DIR)/neurohsi-window.png"; \
		QT_QPA_PLATFORM=offscreen $(VENV)/bin/neurohsi gui $(DEMO_RAW) --classify \
			--screenshot $(DEMO_DIR)/neurohsi-window.png && echo "Saved $(DEMO_DIR)/neurohsi-window.png"; \
	fi

# Qt's xcb platform plugin needs these system libraries for a real window (DESIGN.md);
# installed with apt-get when missing and we may, else the command is printed.
QT_XCB_PACKAGES := libxcb-icccm4 libxcb-keysyms1 libxcb-cursor0 libxkbcommon-x11-0 libxcb-image0 \
	libxcb-render-util0 libxcb-shape0 libxcb-xinerama0 libxcb-randr0
qt-system-libs:
	@if ! ldconfig -p | grep -q libxcb-cursor.so.0 || ! ldconfig -p | grep -q libxkbcommon-x11.so.0; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(QT_XCB_PACKAGES); \
		else \
			echo "Qt needs: sudo apt-get install $(QT_XCB_PACKAGES)"; exit 1; \
		fi; \
	fi

install: $(STAMP_BASE)

# torch first, on its own: torch==2.13.0 resolves to a CPU build on these machines
# and must not be re-resolved by the rest of the set.
$(STAMP_BASE): requirements/base.txt requirements/constraints.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -c requirements/constraints.txt torch==2.13.0
	$(PIP) install -c requirements/constraints.txt -r requirements/base.txt
	$(PIP) install --no-deps --no-build-isolation -e .
	touch $@

$(STAMP_TEST): $(STAMP_BASE) requirements/test.txt
	$(PIP) install -c requirements/constraints.txt -r requirements/test.txt
	touch $@

test-deps: $(STAMP_TEST) $(AZURITE)

$(AZURITE): $(AZURITE_LOCK) tests/support/azurite-npm/package.json
	mkdir -p .tools/azurite
	cp tests/support/azurite-npm/package.json $(AZURITE_LOCK) .tools/azurite/
	cd .tools/azurite && npm ci --no-audit --no-fund --loglevel=error
	touch $@

test: test-deps
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q

# The whole suite under torch threads 1 and 2, OMP_NUM_THREADS=1, taskset -c 0,
# TZ=America/Los_Angeles, LANG=C.UTF-8 and de_DE.UTF-8 (docs/testing.md). CI runs `make test` only.
# MATRIX="tz-la lang-de" picks variants; PYTEST_ARGS narrows the tests (to try the target).
test-matrix: test-deps
	bash tests/support/test_matrix.sh $(PY) $(PYTEST_ARGS)

# Desktop bundle (packaging/desktop/, docs/install.md): PyInstaller, pinned in
# requirements/bundle.txt, builds dist/neurohsi/ from the venv. The build identity
# (resources/build_info.json, git-ignored) is written first; --version and Help > About read it.
$(STAMP_BUNDLE): $(STAMP_BASE) requirements/bundle.txt
	$(PIP) install -c requirements/constraints.txt -r requirements/bundle.txt
	touch $@

bundle: $(STAMP_BUNDLE)
	$(PY) packaging/desktop/write_build_info.py
	$(PY) -m PyInstaller --noconfirm --log-level WARN --distpath dist --workpath build/pyinstaller \
		packaging/desktop/neurohsi.spec
	@du -sh $(BUNDLE_DIR)

# The system interpreter, not the venv's, with nothing of the venv on PATH; the
# script runs the bundle under env -i as well (packaging/desktop/smoke_test.py).
bundle-test: bundle
	env -i PATH=/usr/bin:/bin HOME="$$HOME" python3 packaging/desktop/smoke_test.py --bundle $(BUNDLE_DIR)

# The demo capture is generated (seeded, deterministic), never committed.
demo-capture: $(DEMO_RAW)
$(DEMO_RAW): | $(STAMP_BASE)
	$(VENV)/bin/neurohsi demo-capture $(DEMO_DIR) --seed 1

# Reproducible demo model (resources/models/demo.safetensors, < 200 KB).
demo-model: install
	$(VENV)/bin/neurohsi demo-data .cache/demo-dataset --seed 0
	$(VENV)/bin/neurohsi train .cache/demo-dataset -o resources/models/demo.safetensors --no-cv --epochs 30 --seed 0

bench: test-deps
	for b in tests/bench/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

# Regenerate the constraints file from the current venv (after changing requirements).
constraints:
	$(PY) -m pip freeze --exclude-editable | grep -vi '^neurohsi' > requirements/constraints.txt

# README screenshots (normal view and theatre mode) under Xvfb (needs: apt-get install xvfb libxcb-icccm4 libxcb-keysyms1
# libxcb-cursor0 libxkbcommon-x11-0 libxcb-image0 libxcb-render-util0 libxcb-shape0
# libxcb-xinerama0 libxcb-randr0).
screenshot: install demo-capture qt-system-libs
	command -v xvfb-run >/dev/null || apt-get install -y -qq xvfb
	xvfb-run -a -s "-screen 0 1600x1000x24" $(VENV)/bin/neurohsi gui $(DEMO_RAW) --classify --screenshot docs/screenshot.png
	printf '[display]\ntheatre_mode=true\n' > $(DEMO_DIR)/theatre.ini
	xvfb-run -a -s "-screen 0 1600x1000x24" $(VENV)/bin/neurohsi gui $(DEMO_RAW) --classify \
		--settings $(DEMO_DIR)/theatre.ini --screenshot docs/screenshot-theatre.png

clean:
	rm -rf $(VENV) .tools .cache .pytest_cache

# One-command set-up for a machine without a ROS install (Debian/Ubuntu, CPython 3.11).
# Every target is idempotent: stamps skip what is already done.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
DEPS_STAMP := $(VENV)/.deps.stamp
IFACE_STAMP := $(VENV)/.interfaces.stamp
DEMO_OUT ?= out/demo

.PHONY: setup demo test lint bench clean

setup: $(DEPS_STAMP) $(IFACE_STAMP)

$(DEPS_STAMP): requirements.txt requirements-ros.txt requirements-dev.txt setup.py
	@bash scripts/install_system_packages.sh
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --disable-pip-version-check -r requirements.txt -r requirements-ros.txt \
		-r requirements-dev.txt
	$(PIP) install -q --disable-pip-version-check --no-deps --no-build-isolation -e . \
		--config-settings editable_mode=compat
	@touch $@

$(IFACE_STAMP): $(DEPS_STAMP) $(wildcard msg/*.msg) CMakeLists.txt package.xml \
		scripts/build_interfaces.sh
	bash scripts/build_interfaces.sh $(VENV)
	@touch $@

demo: setup
	$(PY) -m hydranet_ros.tools.node_demo --out $(DEMO_OUT)

test: setup
	$(PY) -m pytest -q

lint: setup
	$(PY) -m flake8 hydranet_ros dev test launch scripts setup.py

bench: setup
	$(PY) -m hydranet_ros.tools.bench

clean:
	rm -rf build install log out $(VENV)

# vla_ros: `make demo` runs the closed-loop demo, `make test` the test suite. Both install what
# they need first (a venv in .venv with pinned ROS 2 Kilted wheels and torch 2.13.0, and Debian's
# EGL libraries for headless rendering).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export MUJOCO_GL ?= egl
export ROS_AUTOMATIC_DISCOVERY_RANGE ?= LOCALHOST

.PHONY: demo demo-remote test lint venv train train-ee evaluate colcon-check params soak clean

venv: $(STAMP)

$(STAMP): requirements.txt setup.py
	@bash scripts/install_system_deps.sh
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	$(PY) -m pip check
	touch $(STAMP)

demo: venv
	$(PY) -m vla_ros.cli demo --episodes 20 $(if $(RECORD),--record,)

demo-remote: venv
	$(PY) -m vla_ros.cli demo --remote --episodes 20

test: venv lint
	$(PY) -m pytest test -q -p no:cacheprovider

lint: venv
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

SOAK_MINUTES ?= 2
soak: venv
	$(PY) -m vla_ros.cli soak --minutes $(SOAK_MINUTES)

train: venv
	$(PY) -m vla_ros.cli train --out models/demo

train-ee: venv
	$(PY) -m vla_ros.cli train --out models/demo_ee --action-space ee_delta --budget-s 1500 --threads 1

evaluate: venv
	$(PY) -m vla_ros.cli evaluate --episodes 50

params: venv
	$(PY) -m vla_ros.cli params

colcon-check:
	bash scripts/colcon_check.sh

clean:
	rm -rf $(VENV) build install log runs

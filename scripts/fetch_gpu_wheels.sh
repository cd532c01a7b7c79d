#!/usr/bin/env bash
# Downloads, into .whl/ (git-ignored), the wheels that scripts/gpu_check.sh
# installs on the GPU machine for the reference comparison: LeRobot 0.6.1 and those of its
# requirements that the machine's Python 3.12 image lacks (its image has torch, torchvision,
# transformers, einops, safetensors, opencv, huggingface-hub, pillow, cloudpickle, pyyaml).
# Run here, with network, before the GPU call; the call then carries .whl (~2 MB).
set -euo pipefail
cd "$(dirname "$0")/.."
git check-ignore -q .whl/x || { echo ".whl/ must be ignored (see .gitignore)"; exit 1; }
PY="${PYTHON:-/work/main/.venv/bin/python}"
"$PY" -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform any \
  -d .whl lerobot==0.6.1 draccus==0.11.6 mergedeep==1.3.4 toml==0.10.2 typing-inspect==0.9.0 \
  gymnasium==1.4.0 farama-notifications==0.0.4 termcolor==3.3.0
ls -la .whl

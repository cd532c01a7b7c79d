#!/usr/bin/env bash
# All GPU measurements of the π₀ fast path in one run of at most 10 minutes, on a machine whose
# python3 already has torch (CUDA), transformers, safetensors, numpy, opencv, pillow, pyyaml and
# sentencepiece (nothing of ours is installed there; no ROS needed). The LeRobot comparison needs
# the wheels that scripts/fetch_gpu_wheels.sh puts in .whl/ (carried with the call); without them
# that part is skipped and says so.
#
#   bash scripts/gpu_check.sh            # tables on stdout; logs under $OUT (or /tmp/gpu_check) too
#
# Stages, each with its own time limit so the whole stays under 10 minutes:
#   1. the card and the measured ceilings (inside the bench rows: copy bandwidth, bf16 matmul rate)
#   2. correctness: eager / cuda_graph / compile in float32 and bfloat16 against eager float32, full size
#   3. vla-ros bench, full size, bfloat16, 1 and 3 cameras: eager and cuda_graph, attention kernels profiled
#   4. vla-ros bench, full size, bfloat16, 1 and 3 cameras: torch.compile (compiles first: slower stage)
#   5. LeRobot 0.6.1 PI0 on the same work, then our best / LeRobot per camera count
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
LOG="${OUT:-/tmp/gpu_check}"
mkdir -p "$LOG"
PY=python3
stage() {  # stage <name> <seconds> <command...>
  local name=$1 limit=$2
  shift 2
  echo "== $name (limit ${limit} s)"
  timeout "$limit" "$@" >"$LOG/$name.log" 2>&1
  local rc=$?
  grep -v '^#\|Warning\|warn(' "$LOG/$name.log" | tail -40
  [ "$rc" = 124 ] && echo "!! $name stopped at its ${limit} s limit"
  [ "$rc" != 0 ] && [ "$rc" != 124 ] && echo "!! $name exited with code $rc"
  return 0
}
date -u
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.mem --format=csv
$PY -c "import torch, transformers as t; print('torch', torch.__version__, torch.version.cuda, 'transformers', t.__version__)"

stage fastpath 130 $PY -m vla_ros.benchmarks.fastpath_check --size full --device cuda \
  --modes eager,cuda_graph,compile --cameras 3
stage bench_graph 150 $PY -m vla_ros.benchmarks.bench --size full --device cuda --dtype bfloat16 --cameras 1,3 \
  --modes eager,cuda_graph --repeats 50 --profile
grep '^#' "$LOG/bench_graph.log" | head -20
stage bench_compile 160 $PY -m vla_ros.benchmarks.bench --size full --device cuda --dtype bfloat16 --cameras 1,3 \
  --modes compile --repeats 50 --warmup 2
if ls .whl/lerobot-0.6.1-*.whl >/dev/null 2>&1; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/lerobot_site .whl/*.whl
  PYTHONPATH="/tmp/lerobot_site:$PYTHONPATH" stage lerobot 110 \
    $PY scripts/lerobot_pi0_latency.py --cameras 1,3 --repeats 30
  $PY - "$LOG" <<'PYEOF'
import re, sys
from pathlib import Path
log = Path(sys.argv[1])
ours = {}
for name in ("bench_graph.log", "bench_compile.log"):
    path = log / name
    for line in path.read_text().splitlines() if path.exists() else []:
        cells = [c.strip() for c in line.split("|")]
        if len(cells) > 9 and cells[1].startswith("full"):
            cams, total = int(cells[5]), float(cells[9].split("/")[0])
            ours[cams] = min(ours.get(cams, total), total)
theirs = {}
path = log / "lerobot.log"
for line in path.read_text().splitlines() if path.exists() else []:
    m = re.match(r"\| LeRobot.*\| (\d) \| ([\d.]+) /", line)
    if m:
        theirs[int(m.group(1))] = float(m.group(2))
print("| cameras | ours, best mode, total p50 ms | LeRobot 0.6.1 PI0 p50 ms | LeRobot / ours |")
print("|---|---|---|---|")
for cams in sorted(set(ours) | set(theirs)):
    a, b = ours.get(cams), theirs.get(cams)
    ratio = f"{b / a:.1f}x" if a and b else "-"
    print(f"| {cams} | {a if a else '-'} | {b if b else '-'} | {ratio} |")
PYEOF
else
  echo "== lerobot: skipped (no .whl/lerobot-0.6.1-*.whl: run scripts/fetch_gpu_wheels.sh here and carry .whl)"
fi
date -u

#!/usr/bin/env bash
# colcon build (colcon from PyPI) of this package into a temporary workspace, then check the
# installed ament layout: share/vla_ros/{launch,config,models}, lib/vla_ros/<executables>, the
# ament index marker, and that the installed package (not the source tree) runs `vla-ros train
# --help` and `vla-ros evaluate --help`. colcon exits 0 even when it finds nothing, so the layout is
# what counts.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install -q "colcon-core==0.21.3" "colcon-ros==0.5.0" "setuptools<80"
"$work/venv/bin/colcon" --log-base "$work/log" build --base-paths "$repo" --build-base "$work/build" --install-base "$work/install" --event-handlers console_direct- 
p="$work/install/vla_ros"
fail=0
for f in share/vla_ros/launch/policy.launch.py share/vla_ros/config/robots/sim.yaml share/vla_ros/config/robots/franka.yaml \
         share/vla_ros/models/demo/model.safetensors share/vla_ros/models/demo/config.json share/vla_ros/package.xml \
         share/ament_index/resource_index/packages/vla_ros; do
  [ -e "$p/$f" ] || { echo "colcon-check: MISSING $f"; fail=1; }
done
for exe in policy_node chunk_executor sim_robot lifecycle_manager recorder vla-ros; do
  [ -x "$p/lib/vla_ros/$exe" ] || { echo "colcon-check: MISSING executable lib/vla_ros/$exe"; fail=1; }
done
python3 - "$p/share/vla_ros/launch/policy.launch.py" <<'PY' || fail=1
import ast, sys
tree = ast.parse(open(sys.argv[1]).read())
names = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
assert "generate_launch_description" in names, "launch file lacks generate_launch_description"
PY
# the installed package, run with the project's environment from outside the source tree
py="${VLA_ROS_PYTHON:-$repo/.venv/bin/python}"
site="$(ls -d "$p"/lib/python3*/site-packages)"
for cmd in train evaluate; do
  (cd "$work" && PYTHONPATH="$site" "$py" "$p/lib/vla_ros/vla-ros" "$cmd" --help >/dev/null) \
    || { echo "colcon-check: installed 'vla-ros $cmd --help' failed"; fail=1; }
done
(cd "$work" && PYTHONPATH="$site" "$py" -c "import vla_ros.training.train, sys; assert '$work' in vla_ros.training.train.__file__, vla_ros.training.train.__file__") \
  || { echo "colcon-check: vla_ros.training is not importable from the install"; fail=1; }
[ $fail -eq 0 ] && echo "colcon-check: OK (installed layout complete, installed vla-ros train/evaluate run)"
exit $fail

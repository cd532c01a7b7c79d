"""`vla-ros view RUN`: a recorded run in the rerun viewer.

RUN is an .rrd file (a `viz:=rerun viz_target:=x.rrd` run, or one made here), a bag (.mcap or rosbag2
folder), a folder of bags (the recorder's `bags/`) or a run folder holding `recording/bags/`. Bags are
converted once into an .rrd beside them (vla_ros/viz/rerun_log.py's entities; `--rrd` to choose), then
the viewer that rerun-sdk ships opens it (`--no-viewer`: only write the .rrd, e.g. on a headless machine).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from vla_ros.recording.export import expand_bags


def run_bags(run: Path) -> tuple[list[Path], Path]:
    """The bags of `run` and the default .rrd to write them to."""
    if (run / "recording" / "bags").is_dir():
        return expand_bags([run / "recording" / "bags"]), run / "run.rrd"
    bags = expand_bags([run])
    return bags, (run.with_suffix(".rrd") if run.is_file() else run / "run.rrd")


def view(run: Path, robot: str = "sim", rrd: Path | None = None, viewer: bool = True) -> Path:
    from vla_ros.viz.rerun_log import bags_to_rrd

    if run.suffix == ".rrd":
        out = run
    else:
        bags, default = run_bags(run)
        out = rrd or default
        bags_to_rrd(bags, out, robot)
    if viewer:
        subprocess.Popen([sys.executable, "-m", "rerun", str(out)])
    return out


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", type=Path, help=".rrd, bag (.mcap / rosbag2 folder), folder of bags, or run folder")
    p.add_argument("--robot", default="sim", help="robot config of the bags (topics, joints, limits)")
    p.add_argument("--rrd", type=Path, default=None, help="where to write the .rrd (default: beside the bags)")
    p.add_argument("--no-viewer", action="store_true", help="write the .rrd only")

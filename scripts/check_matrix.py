"""`vla-ros check` on every bundled robot config x one tiny checkpoint of each layout: the table of
docs/checkpoints.md ("Which checkpoint fits which robot").

    .venv/bin/python scripts/check_matrix.py            # print the table
    .venv/bin/python scripts/check_matrix.py --write    # and replace it in docs/checkpoints.md

The tiny checkpoints have the public layouts (file names, config keys, statistics) with random weights,
and name no robot joints or cameras, as a public checkpoint does: the robot config supplies them.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
from pathlib import Path

import yaml

from vla_ros.paths import PACKAGE_ROOT
from vla_ros.preflight import run_check

DOC = PACKAGE_ROOT / "docs" / "checkpoints.md"
BEGIN, END = "<!-- check-matrix:begin -->", "<!-- check-matrix:end -->"
ROBOTS = ("sim", "franka", "franka_ik", "so101", "ur5")
ROBOT_KEYS = ("joints", "relative_joints", "cameras")  # robot facts a public checkpoint does not carry


def layouts(tmp: Path) -> dict[str, tuple[str, Path]]:
    """Layout label -> (backend, checkpoint folder)."""
    from vla_ros.backends.openvla.tiny import make_tiny_checkpoint as tiny_openvla
    from vla_ros.backends.pi0.tiny import make_tiny_checkpoint as tiny_pi0
    from vla_ros.backends.smolvla.tiny import make_tiny_checkpoint as tiny_smolvla

    openvla = tiny_openvla(tmp / "openvla", tuple(f"d{i}" for i in range(7)))
    _settings(openvla / "openvla.yaml", action_space={"preset": "bridge_ee_delta"})
    droid = tiny_pi0(tmp / "pi0_droid", tuple(f"d{i}" for i in range(8)), variant="pi05")
    _settings(droid / "pi0.yaml", action_space={"preset": "droid_joint_velocity"})
    lerobot = Path(shutil.copytree(PACKAGE_ROOT / "test/backends/pi0/fixtures/lerobot_pi05", tmp / "lerobot_pi05"))
    _settings(lerobot / "pi0.yaml")
    smolvla = tiny_smolvla(tmp / "smolvla", tuple(f"d{i}" for i in range(6)), ("front", "wrist"))
    _settings(smolvla / "smolvla.yaml")
    return {
        "Octo, demo-style joints (models/demo)": ("octo", PACKAGE_ROOT / "models/demo"),
        "Octo, demo-style EE deltas (models/demo_ee)": ("octo", PACKAGE_ROOT / "models/demo_ee"),
        "OpenVLA, Bridge EE deltas": ("openvla", openvla),
        "π₀.5 openpi, DROID joint velocities": ("pi0", droid),
        "π₀.5 LeRobot, 6 absolute joints": ("pi0", lerobot),
        "SmolVLA LeRobot, 6 absolute joints": ("smolvla", smolvla),
    }


def _settings(path: Path, **values) -> None:
    """Drop the robot facts from a settings file and set `values`."""
    raw = yaml.safe_load(path.read_text()) or {}
    raw = {k: v for k, v in raw.items() if k not in ROBOT_KEYS}
    path.write_text(yaml.safe_dump({**raw, **values}))


def verdict(problems: list[str]) -> str:
    """One table cell: ok, or the first problem's reason (paths, sources and residuals left out)."""
    if not problems:
        return "ok"
    first = re.sub(r"/\S+/", "", problems[0]).replace("|", "/")
    first = re.sub(r"\(residual [^)]*\)", "", first)
    first = re.sub(r"^loading: [^(:]*\([^)]*\): ", "", first)  # "loading: octo backend (demo): "
    first = re.sub(r"^\w+\.yaml( with [^:]*)?: ", "", first)  # "franka.yaml with defaults < pi0.yaml: "
    first = re.sub(r"\s+", " ", first).strip()
    if len(first) > 110:
        first = first[:110].rsplit(" ", 1)[0] + " …"
    more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
    return f"✗ {first}{more}"


def table() -> str:
    with tempfile.TemporaryDirectory() as tmp:
        rows = ["| checkpoint layout | " + " | ".join(ROBOTS) + " |", "|---|" + "---|" * len(ROBOTS)]
        for label, (backend, folder) in layouts(Path(tmp)).items():
            cells = [
                verdict(run_check({"robot": r, "backend": backend, "model_path": str(folder)}).problems) for r in ROBOTS
            ]
            rows.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="replace the table in docs/checkpoints.md")
    args = parser.parse_args(argv)
    text = table()
    print(text)
    if args.write:
        doc = DOC.read_text()
        start, end = doc.index(BEGIN) + len(BEGIN), doc.index(END)
        DOC.write_text(doc[:start] + "\n" + text + "\n" + doc[end:])
    return 0


if __name__ == "__main__":
    sys.exit(main())

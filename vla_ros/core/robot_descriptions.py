"""URDFs shipped by installed packages (not hand-written copies).

`example-robot-data` (PyPI, a cmeel wheel) installs its robots as data files under
`<site-packages>/cmeel.prefix/share/example-robot-data/robots/`, with no Python module; the files
are found through the wheel's recorded installation. Its URDFs reference meshes by
`package://example-robot-data/...`: pinocchio's `buildModelFromUrdf` (kinematics only) does not
open them.
"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

EXAMPLE_ROBOT_DATA = "example-robot-data"
_ROBOTS_DIR = "cmeel.prefix/share/example-robot-data/robots"


def example_robot_data_urdf(relative: str) -> Path:
    """Path of `robots/<relative>` inside the installed example-robot-data (FileNotFoundError naming it)."""
    try:
        distribution = metadata.distribution(EXAMPLE_ROBOT_DATA)
    except metadata.PackageNotFoundError as exc:
        raise FileNotFoundError(
            f"the Python package {EXAMPLE_ROBOT_DATA} is not installed (pip install -r requirements.txt)"
        ) from exc
    path = Path(distribution.locate_file(f"{_ROBOTS_DIR}/{relative}"))
    if not path.is_file():
        raise FileNotFoundError(
            f"{EXAMPLE_ROBOT_DATA} {distribution.version} has no robots/{relative} (looked at {path})"
        )
    return path


def franka_urdf_path() -> Path:
    """The Franka Emika Panda URDF of example-robot-data (panda_joint1..7, fingers, link `panda_hand_tcp`)."""
    return example_robot_data_urdf("panda_description/urdf/panda.urdf")

"""Where the package's files are: its root, its `config/` folder (source tree or ament share directory),
and how paths written in configs and on command lines resolve. A leaf: imports nothing of vla_ros."""

from __future__ import annotations

from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parent.parent
URDF_PACKAGE_PREFIX = "example-robot-data:"  # a URDF shipped by the example-robot-data wheel


def default_config_dir() -> Path:
    """The package's `config/` folder: source checkout first, then the ament share directory
    (FileNotFoundError naming where it looked)."""
    source = PACKAGE_ROOT / "config"
    if source.is_dir():
        return source
    try:
        from ament_index_python.packages import get_package_share_directory

        return Path(get_package_share_directory("vla_ros")) / "config"
    except Exception as exc:  # noqa: BLE001 - report where we looked
        raise FileNotFoundError(f"cannot find the vla_ros config folder (looked in {source}): {exc}") from exc


def resolve_package_path(path: str) -> Path:
    """A path as written in config: absolute, relative to the package root / share dir, or
    `example-robot-data:<robots/ relative path>` (a URDF shipped by the example-robot-data wheel)."""
    if path.startswith(URDF_PACKAGE_PREFIX):
        from vla_ros.core.robot_descriptions import example_robot_data_urdf

        return example_robot_data_urdf(path[len(URDF_PACKAGE_PREFIX) :])
    p = Path(path).expanduser()
    if p.is_absolute():
        return p
    return default_config_dir().parent / p


def resolve_model_path(path: str | Path) -> Path:
    """A checkpoint folder as a user names it: absolute; relative to the working directory where it exists
    there; else relative to the package (the bundled `models/demo`)."""
    p = Path(path).expanduser()
    if p.is_absolute() or p.exists():
        return p.resolve()
    return resolve_package_path(str(p))

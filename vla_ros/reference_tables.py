"""The reference tables of docs/configuration.md, generated from the schemas: every node's ROS parameters
(vla_ros/params.py) and the settings of every backend vla_ros registers (its settings class). `vla-ros params` prints
them; `vla-ros params --write` replaces them in the docs (a test keeps the docs current)."""

from __future__ import annotations

from vla_ros.params import EXECUTOR, MANAGER, POLICY, SIM
from vla_ros.paths import PACKAGE_ROOT
from vla_ros.recording.params import RECORDER
from vla_ros.registry import bundled_backends, settings_class
from vla_ros.viz.params import RERUN

DOC = PACKAGE_ROOT / "docs" / "configuration.md"
BEGIN, END = "<!-- reference-tables:begin -->", "<!-- reference-tables:end -->"
NODES = (
    ("policy_node (vla_policy)", POLICY),
    ("chunk_executor (vla_chunk_executor)", EXECUTOR),
    ("lifecycle_manager (vla_lifecycle_manager)", MANAGER),
    ("sim_robot (vla_sim_robot)", SIM),
    ("recorder (vla_recorder)", RECORDER),
    ("rerun_viz (vla_rerun)", RERUN),
)


def tables() -> str:
    """Markdown: one table per node's parameters, then one per bundled backend's settings."""
    parts = ["### Node parameters"]
    parts += [f"#### {title}\n\n{schema.markdown()}" for title, schema in NODES]
    parts.append("### Backend settings")
    parts += [f"#### `{name}`\n\n{settings_class(name).markdown()}" for name in bundled_backends()]
    return "\n\n".join(parts)


def write() -> None:
    doc = DOC.read_text()
    start, end = doc.index(BEGIN) + len(BEGIN), doc.index(END)
    DOC.write_text(doc[:start] + "\n" + tables() + "\n" + doc[end:])

"""The node list of a bring-up, built once from a robot config.

`launch/policy.launch.py` turns it into launch_ros `Node` actions; `vla_ros.bringup` (pip-only,
no launch_ros) starts the same executables as subprocesses with `--ros-args`. Both read this,
so they cannot drift apart.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any

from vla_ros.config import RobotConfig, load_robot_config


@dataclass(frozen=True)
class NodeSpec:
    executable: str  # console script in lib/vla_ros (ros2 run / launch)
    module: str  # the same entry point as `python -m module` (pip-only bring-up)
    name: str  # node name
    parameters: dict[str, Any] = field(default_factory=dict)
    remappings: tuple[tuple[str, str], ...] = ()

    def ros_args(self, params_file: str | None = None) -> list[str]:
        """`--ros-args` for this node (parameters from `params_file`, a ROS params YAML)."""
        args = ["--ros-args", "-r", f"__node:={self.name}"]
        if params_file:
            args += ["--params-file", params_file]
        for src, dst in self.remappings:
            args += ["-r", f"{src}:={dst}"]
        return args

    def command(self, params_file: str | None = None) -> list[str]:
        return [sys.executable, "-m", self.module, *self.ros_args(params_file)]


def _limits_parameters(robot: RobotConfig) -> dict[str, Any]:
    lim = robot.limits
    keys = ("min_position", "max_position", "max_velocity", "max_acceleration", "max_jerk")
    out = {}
    for i, j in enumerate(robot.joint_names):
        for k in keys:
            value = getattr(lim, k)
            if value is not None and float(value[i]) != float("inf"):
                out[f"joint_limits.{j}.{k}"] = float(value[i])
    return out


def _workspace_parameters(robot: RobotConfig) -> dict[str, Any]:
    ws = robot.workspace
    if ws is None:
        return {"urdf_path": robot.urdf} if robot.urdf else {}
    return {
        "urdf_path": robot.urdf,
        "workspace_link": ws.link,
        "workspace_min": list(ws.min),
        "workspace_max": list(ws.max),
        "workspace_keep_out": [float(x) for lower, upper in ws.keep_out for x in (*lower, *upper)],
    }


def node_specs(robot: str | RobotConfig, backend: str = "", model_path: str = "", use_sim: bool | None = None, overrides: dict[str, dict[str, Any]] | None = None) -> list[NodeSpec]:
    """Policy node, chunk executor and (if `use_sim`) the sim robot for `robot`.

    `overrides` maps node name -> extra parameters (e.g. {"vla_policy": {"auto_start": True}}).
    """
    cfg = robot if isinstance(robot, RobotConfig) else load_robot_config(robot)
    overrides = overrides or {}
    remaps = tuple(sorted(cfg.topics.items()))
    joints = list(cfg.joint_names)
    policy = {
        "joint_names": joints,
        "camera_names": [c.name for c in cfg.cameras],
        "camera_topics": [c.topic for c in cfg.cameras],
        **cfg.policy,
        **({"backend": backend} if backend else {}),
        **({"model_path": model_path} if model_path else {}),
        **overrides.get("vla_policy", {}),
    }
    executor = {"joint_names": joints, **_limits_parameters(cfg), **_workspace_parameters(cfg), **cfg.executor, **overrides.get("vla_chunk_executor", {})}
    specs = [
        NodeSpec("policy_node", "vla_ros.nodes.policy_node", "vla_policy", policy, remaps),
        NodeSpec("chunk_executor", "vla_ros.nodes.chunk_executor_node", "vla_chunk_executor", executor, remaps),
    ]
    if cfg.use_sim if use_sim is None else use_sim:
        specs.append(NodeSpec("sim_robot", "vla_ros.nodes.sim_robot_node", "vla_sim_robot", dict(overrides.get("vla_sim_robot", {})), remaps))
    return specs


def params_yaml(spec: NodeSpec) -> dict[str, Any]:
    """The node's parameters as a ROS 2 params-file document."""
    return {spec.name: {"ros__parameters": dict(spec.parameters)}}

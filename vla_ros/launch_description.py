"""The node list of a bring-up, built once from a robot config.

`launch/policy.launch.py` turns it into launch_ros `Node` actions; `vla_ros.bringup` (pip-only,
no launch_ros) starts the same executables as subprocesses with `--ros-args`. Both read this,
so they cannot drift apart.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any

import yaml

from vla_ros.config import RobotConfig, load_robot_config
from vla_ros.params import joint_limit_parameters


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


LAUNCH_ARGUMENTS = {
    "robot": ("sim", "robot config: config/robots/<robot>.yaml, or a path to one"),
    "backend": ("", "policy backend (default: the robot config's)"),
    "model_path": ("", "checkpoint folder (default: the robot config's, unless backend names another backend)"),
    "device": ("", "torch device of the policy, e.g. cuda:0 (default: the backend settings')"),
    "use_sim": ("", "start the MuJoCo sim robot: true/false (default: the robot config's use_sim)"),
    "autostart": ("true", "the lifecycle manager configures and activates the nodes at start-up"),
    "respawn": (
        "false",
        "restart a node process that dies; the lifecycle manager configures and activates it again (autostart)",
    ),
}


def policy_parameters(cfg: RobotConfig, backend: str = "", model_path: str = "", device: str = "") -> dict[str, Any]:
    """policy_node parameters: the robot config's `policy:` block under the launch arguments.

    A `backend` other than the robot config's drops the config's model_path and backend settings
    (they belong to the other backend), so `backend:=pi0 model_path:=/x` needs nothing else.
    """
    params = {
        "joint_names": list(cfg.joint_names),
        "camera_names": [c.name for c in cfg.cameras],
        "camera_topics": [c.topic for c in cfg.cameras],
        **cfg.policy,
    }
    settings = dict(cfg.backend_settings)
    if backend and backend != cfg.policy.get("backend", backend):
        params.pop("model_path", None)
        params["model_path"] = ""
        settings = {}
    if backend:
        params["backend"] = backend
    if model_path:
        params["model_path"] = model_path
    if device:
        params["device"] = device
    if settings:
        params["backend_settings"] = yaml.safe_dump(settings, default_flow_style=True).strip()
    return params


def executor_parameters(cfg: RobotConfig) -> dict[str, Any]:
    """chunk_executor parameters from the robot config: joints, limits, workspace, `executor:` block."""
    return {
        "joint_names": list(cfg.joint_names),
        **joint_limit_parameters(cfg.limits),
        **_workspace_parameters(cfg),
        **cfg.executor,
    }


def node_specs(
    robot: str | RobotConfig,
    backend: str = "",
    model_path: str = "",
    use_sim: bool | None = None,
    overrides: dict[str, dict[str, Any]] | None = None,
    device: str = "",
    autostart: bool = True,
) -> list[NodeSpec]:
    """Chunk executor, policy node, the lifecycle manager and (if `use_sim`) the sim robot for `robot`.

    `overrides` maps node name -> extra parameters (e.g. {"vla_policy": {"instruction": "..."}}).
    """
    cfg = robot if isinstance(robot, RobotConfig) else load_robot_config(robot)
    overrides = overrides or {}
    remaps = tuple(sorted(cfg.topics.items()))
    policy = {**policy_parameters(cfg, backend, model_path, device), **overrides.get("vla_policy", {})}
    executor = {**executor_parameters(cfg), **overrides.get("vla_chunk_executor", {})}
    manager = {
        "node_names": ["vla_chunk_executor", "vla_policy"],
        "autostart": autostart,
        **overrides.get("vla_lifecycle_manager", {}),
    }
    specs = [
        NodeSpec("chunk_executor", "vla_ros.nodes.chunk_executor_node", "vla_chunk_executor", executor, remaps),
        NodeSpec("policy_node", "vla_ros.nodes.policy_node", "vla_policy", policy, remaps),
        NodeSpec("lifecycle_manager", "vla_ros.nodes.lifecycle_manager", "vla_lifecycle_manager", manager),
    ]
    if cfg.use_sim if use_sim is None else use_sim:
        specs.append(
            NodeSpec(
                "sim_robot",
                "vla_ros.nodes.sim_robot_node",
                "vla_sim_robot",
                dict(overrides.get("vla_sim_robot", {})),
                remaps,
            )
        )
    return specs


def parse_bool(text: str, name: str) -> bool | None:
    """A launch argument's boolean ('' = unset)."""
    value = text.strip().lower()
    if value == "":
        return None
    if value in ("true", "1", "yes", "on"):
        return True
    if value in ("false", "0", "no", "off"):
        return False
    raise ValueError(f"launch argument {name}:={text!r} must be true or false")


def specs_from_launch_arguments(args: dict[str, str]) -> list[NodeSpec]:
    """The node list for `name:=value` launch arguments (unknown names are an error)."""
    unknown = sorted(set(args) - set(LAUNCH_ARGUMENTS))
    if unknown:
        raise ValueError(f"unknown launch arguments {unknown} (known: {sorted(LAUNCH_ARGUMENTS)})")
    value = {name: args.get(name, default) for name, (default, _) in LAUNCH_ARGUMENTS.items()}
    return node_specs(
        value["robot"],
        backend=value["backend"],
        model_path=value["model_path"],
        device=value["device"],
        use_sim=parse_bool(value["use_sim"], "use_sim"),
        autostart=bool(parse_bool(value["autostart"], "autostart")),
    )


def respawn_from_launch_arguments(args: dict[str, str]) -> bool:
    """The `respawn` launch argument (default false)."""
    return bool(parse_bool(args.get("respawn", LAUNCH_ARGUMENTS["respawn"][0]), "respawn"))


def params_yaml(spec: NodeSpec) -> dict[str, Any]:
    """The node's parameters as a ROS 2 params-file document."""
    return {spec.name: {"ros__parameters": dict(spec.parameters)}}

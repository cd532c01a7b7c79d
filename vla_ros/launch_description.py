"""The node list of a bring-up, built once from a robot config.

`launch/policy.launch.py` turns it into launch_ros `Node` actions; `vla_ros.bringup` (pip-only,
no launch_ros) starts the same executables as subprocesses with `--ros-args`. Both read this,
so they cannot drift apart.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from vla_ros.config import RobotConfig, load_robot_config
from vla_ros.params import EXECUTOR, joint_limit_parameters
from vla_ros.paths import resolve_package_path


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
    "dds_profile": (
        "shm",
        "Fast DDS profile of the nodes: shm (config/fastdds_shm.xml: shared memory on this host, UDP on every "
        "interface, discovery as ROS_AUTOMATIC_DISCOVERY_RANGE / ROS_STATIC_PEERS say), shm_loopback "
        "(config/fastdds_shm_loopback.xml: UDP on 127.0.0.1 only, other hosts not reached), none, or a path to an "
        "XML file; with shm, a FASTDDS_DEFAULT_PROFILES_FILE already set wins",
    ),
    "respawn": (
        "false",
        "restart a node process that dies; the lifecycle manager configures and activates it again (autostart)",
    ),
    "dry_run": (
        "false",
        "the executor computes everything but publishes its commands on dry_run/commands only, never to the "
        "controller (docs/real-robots.md: first runs)",
    ),
    "speed_scale": (
        "",
        "slow run: the executor's velocity, acceleration and jerk limits times s, s^2, s^3 and chunks played 1/s "
        "times slower (0 < s <= 1; default: the robot config's, else 1)",
    ),
    "bypass_executor": (
        "false",
        "no chunk executor: the policy's action_chunk goes straight to the JointTrajectoryController on the robot "
        "config's commands topic (ros2_controllers' positions_upsampling, or plain JTC); the executor's limits "
        "(acceleration, jerk, workspace), staleness checks, blending, latency compensation, e-stop and watchdogs are "
        "given up (docs/real-robots.md: bypass)",
    ),
    "record": ("false", "start the recorder: every episode as an MCAP bag and a LeRobotDataset episode (docs/data.md)"),
    "record_dir": ("", "the recorder's output folder (default: runs/recording-<UTC time>)"),
    "viz": ("", "rerun: show the run live in rerun (cameras, planned / commanded / measured joints, executor state)"),
    "viz_target": ("", "with viz:=rerun: a .rrd path, a viewer's address rerun+http://host:9876/proxy, or '' (spawn)"),
}

DDS_PROFILE_VARIABLE = "FASTDDS_DEFAULT_PROFILES_FILE"
# the `dds_profile` names of the package's Fast DDS profiles; the first is the default
DDS_PROFILES = {
    "shm": "config/fastdds_shm.xml",  # shared memory + UDP on every interface
    "shm_loopback": "config/fastdds_shm_loopback.xml",  # shared memory + UDP on 127.0.0.1 only
}


def dds_environment(profile: str = "shm", environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment variables that give the nodes the Fast DDS profile named by the `dds_profile` argument.

    'shm' (the default): the package's profile with UDP on every interface, unless `environ` (default
    os.environ) already sets FASTDDS_DEFAULT_PROFILES_FILE (the user's own profile wins);
    'shm_loopback': the package's loopback-only profile (asked for by name: it wins over the variable);
    'none' or '': nothing; any other value: that XML file (it must exist). Only rmw_fastrtps_cpp reads
    the variable.
    """
    environ = os.environ if environ is None else environ
    choice = profile.strip()
    if choice.lower() in ("", "none"):
        return {}
    if choice.lower() == "shm" and environ.get(DDS_PROFILE_VARIABLE):
        return {}
    if choice.lower() in DDS_PROFILES:
        path = resolve_package_path(DDS_PROFILES[choice.lower()])
    else:
        path = Path(choice).expanduser().resolve()
    if not path.is_file():
        raise ValueError(
            f"launch argument dds_profile:={profile!r}: no Fast DDS profile at {path} "
            f"(or name one of {[*DDS_PROFILES, 'none']})"
        )
    return {DDS_PROFILE_VARIABLE: str(path)}


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
    return {**params, **_robot_body_parameters(cfg)}


def _robot_body_parameters(cfg: RobotConfig) -> dict[str, Any]:
    """policy_node parameters of the robot side of action spaces: URDF, end effector, `action_space:` block."""
    params: dict[str, Any] = {"urdf_path": cfg.urdf} if cfg.urdf else {}
    if cfg.end_effector is not None:
        ee = cfg.end_effector
        params.update(end_effector_link=ee.link, base_link=ee.base_link, gripper_joint=ee.gripper_joint)
    if cfg.action_space:
        params["action_space"] = yaml.safe_dump(cfg.action_space, default_flow_style=True, width=10_000).strip()
    return params


def executor_parameters(cfg: RobotConfig) -> dict[str, Any]:
    """chunk_executor parameters from the robot config: joints, limits, workspace, `executor:` block."""
    cartesian = {}
    if cfg.cartesian_output is not None:  # the end effector's pose / twist instead of joint positions
        ee = cfg.end_effector
        cartesian = {"output": cfg.cartesian_output.type, "cartesian_link": ee.link, "cartesian_frame": ee.base_link}
    return {
        "joint_names": list(cfg.joint_names),
        **joint_limit_parameters(cfg.limits),
        **_workspace_parameters(cfg),
        **cartesian,
        **cfg.executor,
    }


JTC_OUTPUTS = ("joint_trajectory_plan", "joint_trajectory")  # executor outputs for a JointTrajectoryController


def executor_output(parameters: Mapping[str, Any]) -> str:
    """The executor's `output` in its parameters (the parameter's default when unset)."""
    return parameters.get("output", EXECUTOR.get("output").default)


def bypass_chunk_topic(cfg: RobotConfig, use_sim: bool) -> str:
    """bypass_executor: the topic the policy's chunks go to, the robot config's `commands` (its
    JointTrajectoryController's ~/joint_trajectory); ValueError when no such controller is behind it."""
    output = executor_output(cfg.executor)
    if not use_sim and output not in JTC_OUTPUTS:
        raise ValueError(
            f"launch argument bypass_executor:=true: robot '{cfg.name}' commands a controller through executor output "
            f"'{output}'; the policy's chunks (JointTrajectory) need a JointTrajectoryController, i.e. output one of "
            f"{list(JTC_OUTPUTS)} in the robot config (or use_sim:=true)"
        )
    return cfg.topics.get("commands", "commands")


def sim_controller(output: str, bypass_executor: bool = False) -> str:
    """The sim robot's `controller` for the executor's `output`: its JointTrajectoryController model for the
    trajectory outputs and the policy's chunks (bypass), else its forward position controller."""
    return "joint_trajectory" if bypass_executor or output in JTC_OUTPUTS else "forward_position"


def node_specs(
    robot: str | RobotConfig,
    backend: str = "",
    model_path: str = "",
    use_sim: bool | None = None,
    overrides: dict[str, dict[str, Any]] | None = None,
    device: str = "",
    autostart: bool = True,
    record: bool = False,
    viz: str = "",
    respawn: bool = False,
    bypass_executor: bool = False,
) -> list[NodeSpec]:
    """Chunk executor, policy node, the lifecycle manager, (if `use_sim`) the sim robot and (if `record`)
    the recorder for `robot`; `viz` 'rerun': the rerun node.

    `overrides` maps node name -> extra parameters (e.g. {"vla_policy": {"instruction": "..."}}).
    `respawn`: the nodes are restarted when they exit, so the lifecycle manager stops an unresponsive one
    (`kill_unresponsive`) for a new process to replace it. `bypass_executor`: no chunk executor; the policy's
    `action_chunk` is remapped to the robot's JointTrajectoryController (`bypass_chunk_topic`). The sim runs
    the controller the commands need (`sim_controller`) unless `overrides` set its `controller`.
    """
    cfg = robot if isinstance(robot, RobotConfig) else load_robot_config(robot)
    overrides = overrides or {}
    simulated = cfg.use_sim if use_sim is None else use_sim
    remaps = tuple(sorted(cfg.topics.items()))
    policy_remaps = (*remaps, ("action_chunk", bypass_chunk_topic(cfg, simulated))) if bypass_executor else remaps
    policy = {**policy_parameters(cfg, backend, model_path, device), **overrides.get("vla_policy", {})}
    executor = {**executor_parameters(cfg), **overrides.get("vla_chunk_executor", {})}
    manager = {
        "node_names": ["vla_policy"] if bypass_executor else ["vla_chunk_executor", "vla_policy"],
        "autostart": autostart,
        "kill_unresponsive": respawn,
        **overrides.get("vla_lifecycle_manager", {}),
    }
    specs = [
        NodeSpec("chunk_executor", "vla_ros.nodes.chunk_executor_node", "vla_chunk_executor", executor, remaps),
        NodeSpec("policy_node", "vla_ros.nodes.policy_node", "vla_policy", policy, policy_remaps),
        NodeSpec("lifecycle_manager", "vla_ros.nodes.lifecycle_manager", "vla_lifecycle_manager", manager),
    ][1 if bypass_executor else 0 :]
    if simulated:
        sim = {
            "controller": sim_controller(executor_output(executor), bypass_executor),
            **overrides.get("vla_sim_robot", {}),
        }
        if not _is_tabletop_robot(cfg):  # any other robot: the sim builds it from the config's URDF
            sim = {"robot_config": cfg.source, **sim}
        specs.append(NodeSpec("sim_robot", "vla_ros.nodes.sim_robot_node", "vla_sim_robot", sim, remaps))
    if record:
        recorder = {"robot_config": cfg.source, **overrides.get("vla_recorder", {})}
        specs.append(NodeSpec("recorder", "vla_ros.nodes.recorder_node", "vla_recorder", recorder, remaps))
    if viz not in ("", "rerun"):
        raise ValueError(f"launch argument viz:={viz!r}: '' or rerun")
    if viz == "rerun":
        rerun = {"robot_config": cfg.source, **overrides.get("vla_rerun", {})}
        specs.append(NodeSpec("rerun_viz", "vla_ros.nodes.rerun_node", "vla_rerun", rerun, remaps))
    return specs


def _is_tabletop_robot(cfg: RobotConfig) -> bool:
    """Does the bundled tabletop arm (config/robots/sim.yaml) simulate this robot config: same joints?"""
    from vla_ros.sim.tabletop import JOINT_NAMES

    return tuple(cfg.joint_names) == JOINT_NAMES


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
        overrides={
            "vla_chunk_executor": executor_launch_overrides(value),
            "vla_recorder": recorder_launch_overrides(value),
            "vla_rerun": {"target": value["viz_target"]} if value["viz_target"].strip() else {},
        },
        record=bool(parse_bool(value["record"], "record")),
        viz=value["viz"].strip().lower(),
        respawn=respawn_from_launch_arguments(args),
        bypass_executor=bool(parse_bool(value["bypass_executor"], "bypass_executor")),
    )


def recorder_launch_overrides(value: Mapping[str, str]) -> dict[str, Any]:
    """recorder parameters from the `record_dir` launch argument (unset: none)."""
    return {"output_dir": value["record_dir"]} if value.get("record_dir", "").strip() else {}


def executor_launch_overrides(value: Mapping[str, str]) -> dict[str, Any]:
    """chunk_executor parameters from the `dry_run` and `speed_scale` launch arguments (unset: none)."""
    out: dict[str, Any] = {}
    if parse_bool(value.get("dry_run", ""), "dry_run"):
        out["dry_run"] = True
    text = value.get("speed_scale", "").strip()
    if text:
        try:
            scale = float(text)
        except ValueError:
            scale = float("nan")
        if not 0.0 < scale <= 1.0:
            raise ValueError(f"launch argument speed_scale:={text!r} must be a number in (0, 1]")
        out["speed_scale"] = scale
    return out


def respawn_from_launch_arguments(args: dict[str, str]) -> bool:
    """The `respawn` launch argument (default false)."""
    return bool(parse_bool(args.get("respawn", LAUNCH_ARGUMENTS["respawn"][0]), "respawn"))


def params_yaml(spec: NodeSpec) -> dict[str, Any]:
    """The node's parameters as a ROS 2 params-file document."""
    return {spec.name: {"ros__parameters": dict(spec.parameters)}}

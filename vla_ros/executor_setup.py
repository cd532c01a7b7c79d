"""The ExecutorCore the chunk_executor's parameters describe, built in one place: the node builds
it at configure, offline evaluation (`vla-ros evaluate`) builds the same from the robot config."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from vla_ros.core.executor import ExecutorCore, ExecutorSettings
from vla_ros.core.types import JointLimits
from vla_ros.core.workspace import Workspace, urdf_workspace
from vla_ros.params import EXECUTOR, joint_limits_from_values
from vla_ros.paths import resolve_package_path


def with_defaults(params: Mapping[str, Any]) -> dict[str, Any]:
    """The executor's parameters with the schema's defaults filled in."""
    return {**{p.name: p.default for p in EXECUTOR}, **params}


def executor_joints(params: Mapping[str, Any]) -> tuple[str, ...]:
    return tuple(j for j in params["joint_names"] if j)


def limits_from_parameters(params: Mapping[str, Any], joints: tuple[str, ...]) -> JointLimits:
    """`joint_limits.<joint>.<key>` parameters -> JointLimits (ValueError naming the parameter)."""
    return joint_limits_from_values(joints, lambda j, k: params.get(f"joint_limits.{j}.{k}"), "parameter joint_limits")


def workspace_from_parameters(params: Mapping[str, Any], joints: tuple[str, ...]) -> Workspace | None:
    """The workspace the `workspace_*` parameters describe (None when `workspace_link` is empty)."""
    if not params["workspace_link"]:
        return None
    if not params["urdf_path"]:
        raise ValueError("parameter workspace_link is set but urdf_path is empty: the workspace check needs the URDF")
    keep_out = list(params["workspace_keep_out"])
    if len(keep_out) % 6:
        raise ValueError(f"parameter workspace_keep_out: needs 6 numbers per box, got {len(keep_out)}")
    boxes = tuple((keep_out[i : i + 3], keep_out[i + 3 : i + 6]) for i in range(0, len(keep_out), 6))
    return urdf_workspace(
        resolve_package_path(params["urdf_path"]),
        joints,
        params["workspace_link"],
        params["workspace_min"],
        params["workspace_max"],
        boxes,
    )


def cartesian_from_parameters(params: Mapping[str, Any], joints: tuple[str, ...]):
    """CartesianCommands for the `pose` / `twist` outputs (None for joint outputs); ValueError naming the parameter."""
    from vla_ros.core.cartesian import CartesianCommands
    from vla_ros.core.kinematics import UrdfKinematics

    p = with_defaults(params)
    if p["output"] not in ("pose", "twist"):
        return None
    if not p["urdf_path"] or not p["cartesian_link"]:
        raise ValueError(f"parameter output: '{p['output']}' needs urdf_path and cartesian_link (the commanded link)")
    try:
        kinematics = UrdfKinematics(resolve_package_path(p["urdf_path"]), joints)
    except FileNotFoundError as exc:
        raise ValueError(f"parameter urdf_path: {exc}") from exc
    return CartesianCommands(kinematics, p["cartesian_link"], p["cartesian_frame"])


def executor_from_parameters(params: Mapping[str, Any], limits: JointLimits | None = None) -> ExecutorCore:
    """ExecutorCore from the chunk_executor's parameters (ValueError naming a bad one)."""
    p = with_defaults(params)
    joints = executor_joints(p)
    settings = ExecutorSettings(
        joint_state_timeout_s=p["joint_state_timeout_s"],
        plan_timeout_s=p["plan_timeout_s"],
        max_stamp_skew_s=p["max_stamp_skew_s"],
        position_margin_rad=p["position_margin_rad"],
        blend=p["blend_mode"],
        crossfade_s=p["crossfade_s"],
        ensemble_m=p["ensemble_m"],
        lookahead_s=p["lookahead_s"],
        plan_limit_share=p["plan_limit_share"],
        routine_limit_share=p["routine_limit_share"],
        glitch_margin_rad=p["glitch_margin_rad"],
        glitch_settle_s=p["glitch_settle_s"],
        clock_jump_s=p["clock_jump_s"],
        speed_scale=p["speed_scale"],
        stream_plan=p["output"] == "joint_trajectory_plan",
        control_period_s=1.0 / p["control_rate_hz"],
        controller_rate_hz=p["controller_rate_hz"],
        plan_start_delay_s=p["plan_start_delay_s"],
        plan_horizon_s=p["plan_horizon_s"],
        policy_heartbeat_timeout_s=p["policy_heartbeat_timeout_s"],
    )
    limits = limits if limits is not None else limits_from_parameters(p, joints)
    return ExecutorCore(limits, settings, workspace_from_parameters(p, joints))

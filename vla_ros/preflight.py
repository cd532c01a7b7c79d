"""`vla-ros check`: the preflight a user runs before powering the arm (no ROS needed).

`python -m vla_ros.cli check robot:=franka_ik backend:=openvla model_path:=/ckpt [device:=cpu]`

It loads the checkpoint the way the policy node does (the same robot config, parameters and settings
layers), then prints what the robot will run: the effective settings with their sources, the joint
and camera mapping, the action-space chain with IK reachability around the home pose, one inference
on a synthetic observation, and the limits and command output. It collects every problem instead of
stopping at the first, prints them all, and exits 1 if there is any (0 otherwise).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from vla_ros.config import ConfigError, RobotConfig, load_robot_config
from vla_ros.paths import resolve_model_path

IK_PROBE_M = 0.02  # end-effector steps tried around the home pose (metres, each axis, both signs)


@dataclass
class Report:
    """What the check found: sections of (label, text) lines and the problems."""

    lines: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def section(self, title: str) -> None:
        self.lines.append(f"\n== {title}")

    def say(self, text: str) -> None:
        self.lines.append(f"  {text}")

    def problem(self, text: str) -> None:
        self.problems.append(text or "(no reason given)")
        self.lines.append(f"  PROBLEM: {text}")

    def text(self) -> str:
        verdict = (
            f"\n{len(self.problems)} problem(s):\n" + "\n".join(f"  - {p}" for p in self.problems)
            if self.problems
            else "\nno problems found"
        )
        return "\n".join(self.lines) + verdict


def home_positions(cfg: RobotConfig) -> np.ndarray:
    """The pose the checks start from: the robot config's `home`, else each joint's 0 clipped into its limits."""
    if cfg.home is not None:
        return np.asarray(cfg.home, dtype=float)
    return np.clip(np.zeros(len(cfg.joint_names)), cfg.limits.min_position, cfg.limits.max_position)


ARGUMENTS = ("robot", "backend", "model_path", "device", "backend_settings")  # what `vla-ros check` takes


def run_check(args: dict[str, str]) -> Report:
    """Every check for the launch arguments `args` (ARGUMENTS)."""
    report = Report()
    unknown = sorted(set(args) - set(ARGUMENTS))
    if unknown:
        report.problem(f"unknown arguments {unknown} (vla-ros check takes {list(ARGUMENTS)})")
    try:
        cfg = load_robot_config(args.get("robot", "sim"))
    except ConfigError as exc:
        report.problem(str(exc))
        return report
    _robot_section(cfg, report)
    backend = _load(cfg, args, report)
    if backend is None:
        return report
    try:
        _mapping_section(cfg, backend, report)
        _action_space_section(cfg, backend, report)
        _inference_section(cfg, backend, report)
    finally:
        backend.close()
    return report


def _robot_section(cfg: RobotConfig, report: Report) -> None:
    from vla_ros.launch_description import executor_parameters

    report.section(f"robot {cfg.name} ({cfg.source})")
    report.say(f"joints: {list(cfg.joint_names)}")
    report.say("cameras: " + ", ".join(f"{c.name} <- {c.topic}" for c in cfg.cameras))
    for i, j in enumerate(cfg.joint_names):
        lim = cfg.limits
        report.say(
            f"limits {j}: position [{lim.min_position[i]:.4g}, {lim.max_position[i]:.4g}], velocity "
            f"{lim.max_velocity[i]:.4g}, acceleration {lim.max_acceleration[i]:.4g}, jerk {lim.max_jerk[i]:.4g}"
        )
    params = executor_parameters(cfg)
    topic = cfg.topics.get("commands", "commands")
    report.say(f"output: {params.get('output', 'position_array')} on {topic} at {params.get('control_rate_hz')} Hz")
    if cfg.workspace is not None:
        ws = cfg.workspace
        report.say(f"workspace: {ws.link} in {list(ws.min)}..{list(ws.max)}, {len(ws.keep_out)} keep-out box(es)")


def _load(cfg: RobotConfig, args: dict[str, str], report: Report):
    """The backend as the policy node would load it, or None (the problem recorded)."""
    from vla_ros.backends.action_output import robot_body
    from vla_ros.backends.base import BackendError, load_backend
    from vla_ros.backends.settings import SettingsError, describe, parse_overrides
    from vla_ros.launch_description import policy_parameters

    params = policy_parameters(cfg, args.get("backend", ""), args.get("model_path", ""), args.get("device", ""))
    name, model_path = params.get("backend", "octo"), params.get("model_path", "")
    report.section(f"backend {name}")
    try:
        overrides = parse_overrides(params.get("backend_settings", ""))
        overrides.update(parse_overrides(args.get("backend_settings", ""), "argument backend_settings"))
        if params.get("device"):
            overrides["device"] = params["device"]
        path = resolve_model_path(model_path) if model_path else None
        report.say(f"checkpoint: {path}")
        started = time.monotonic()
        backend = load_backend(name, path, overrides, robot=robot_body(cfg))
    except (BackendError, SettingsError, ValueError, FileNotFoundError) as exc:
        report.problem(f"loading: {exc}")
        return None
    report.say(f"loaded in {time.monotonic() - started:.1f} s")
    if backend.settings is not None:
        for part in describe(backend.settings, backend.settings_sources).split(", "):
            report.say(f"setting {part}")
    for key, where in (backend.provenance or {}).items():
        report.say(f"from the checkpoint: {key} <- {where}")
    return backend


def _mapping_section(cfg: RobotConfig, backend, report: Report) -> None:
    report.section("joint and camera mapping")
    cams = [c.name for c in cfg.cameras]
    report.say(f"model joints (in order): {list(backend.joint_names)}")
    report.say(f"relative to the state: {list(backend.relative_joints) or 'none'}")
    report.say(f"robot cameras read: {list(backend.camera_names)}")
    missing_joints = [j for j in backend.joint_names if j not in cfg.joint_names]
    missing_cams = [c for c in backend.camera_names if c not in cams]
    if missing_joints:
        report.problem(f"joints {missing_joints} are not among the robot's {list(cfg.joint_names)}")
    if missing_cams:
        report.problem(f"cameras {missing_cams} are not among the robot's {cams}")
    unused = [c for c in cams if c not in backend.camera_names]
    if unused:
        report.say(f"robot cameras the model does not read: {unused}")


def _action_space_section(cfg: RobotConfig, backend, report: Report) -> None:
    out = backend.output
    report.section("action space")
    groups = ", ".join(f"{g.type}" for g in out.space.groups)
    report.say(f"'{out.space.name}': {groups} ({out.action_dim} values per point, state {out.state_dim})")
    report.say(f"from: {out.source}")
    ee_groups = [g for g in out.space.groups if g.type in ("ee_position", "ee_rotation")]
    if not ee_groups:
        report.say("chain: model actions -> joint targets (no IK)")
        return
    report.say(f"chain: model actions -> {cfg.end_effector.link} targets -> IK -> joint targets")
    _ik_probe(cfg, backend, report)


def _ik_probe(cfg: RobotConfig, backend, report: Report) -> None:
    """Steps of IK_PROBE_M along each axis from the home pose: how many reach their target."""
    out, q = backend.output, home_positions(cfg)
    q_model = np.array([q[cfg.joint_names.index(j)] for j in backend.joint_names])
    rest = out.to_model_actions(q_model[None], q_model)  # the actions that hold the home pose (1, A)
    groups = out.space.groups
    position = out.converter.action_slices()[position_index(groups)]
    failed = []
    for axis in range(3):
        for sign in (1.0, -1.0):
            actions = rest.copy()
            actions[0, position.start + axis] += sign * IK_PROBE_M / groups[position_index(groups)].scale
            chunk = out.to_chunk(actions, q_model, 0.0, backend.dt_s)
            if chunk.ik_failed or chunk.horizon == 0:
                failed.append(f"{'+' if sign > 0 else '-'}{'xyz'[axis]}")
    if failed:
        report.problem(
            f"IK: {IK_PROBE_M * 100:.0f} cm steps {failed} from the home pose {q_model.round(3).tolist()} do not "
            "reach their target (joint limits or a singular pose): set the robot config's `home` or check "
            "end_effector"
        )
    else:
        report.say(f"IK: {IK_PROBE_M * 100:.0f} cm steps along ±x, ±y, ±z from the home pose all reach their target")


def position_index(groups) -> int:
    """Index of the end-effector position group among an action space's groups."""
    return [g.type for g in groups].index("ee_position")


def _inference_section(cfg: RobotConfig, backend, report: Report) -> None:
    from vla_ros.core.types import Observation

    report.section("one inference on a synthetic observation (grey images, the home pose)")
    q = home_positions(cfg)
    images = {c.name: np.full((224, 224, 3), 127, np.uint8) for c in cfg.cameras}
    obs = Observation(0.0, images, cfg.joint_names, q, "pick up the red cube")
    started = time.perf_counter()
    try:
        chunk = backend.predict(obs)
    except Exception as exc:  # noqa: BLE001 - any failure of the model is a problem to report
        report.problem(f"inference: {type(exc).__name__}: {exc}")
        return
    report.say(f"{chunk.horizon} points, {chunk.dt_s} s apart, in {time.perf_counter() - started:.2f} s")
    if chunk.horizon == 0:
        report.problem(f"inference: no point could be converted: {chunk.truncated_reason}")
    elif chunk.truncated_reason:  # the executor runs a cut chunk up to its end; say so, it is not a fault
        report.say(f"note: the chunk was cut short ({chunk.truncated_reason})")
    if chunk.horizon and not np.all(np.isfinite(chunk.positions)):
        report.problem("inference: non-finite joint targets")
    if chunk.horizon:
        lim = cfg.limits
        index = [cfg.joint_names.index(j) for j in chunk.joint_names]
        outside = [
            chunk.joint_names[k]
            for k, i in enumerate(index)
            if np.any(chunk.positions[:, k] < lim.min_position[i])
            or np.any(chunk.positions[:, k] > lim.max_position[i])
        ]
        step = np.abs(chunk.positions[0] - q[index])
        report.say(f"first point moves at most {step.max():.3g} (rad or m) from the home pose")
        if outside:
            report.say(f"targets outside the position limits on {outside}: the executor clamps them")


def main(argv: list[str]) -> int:
    """`vla-ros check name:=value ...`: print the report; 1 if any problem."""
    from vla_ros.bringup import parse_launch_args

    if any(a in ("-h", "--help") for a in argv):
        print(__doc__)
        return 0
    report = run_check(parse_launch_args(argv))
    print(report.text())
    return 1 if report.problems else 0

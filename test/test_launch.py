"""One node list for launch and bring-up; the bring-up starts, reports deaths and stops cleanly."""

from __future__ import annotations

import importlib.util
import sys
import time
import types
from pathlib import Path

import yaml

from vla_ros.bringup import Bringup, parse_launch_args
from vla_ros.launch_description import node_specs, params_yaml

ROOT = Path(__file__).resolve().parent.parent


def test_sim_bringup_lists_three_nodes_with_config_parameters():
    specs = node_specs("sim")
    assert [s.name for s in specs] == ["vla_policy", "vla_chunk_executor", "vla_sim_robot"]
    policy, executor, _ = specs
    assert policy.parameters["camera_topics"] == ["camera/image_raw", "wrist_camera/image_raw"]
    assert executor.parameters["joint_limits.elbow.max_velocity"] == 2.0
    assert executor.parameters["joint_limits.gripper.max_jerk"] == 50.0
    assert executor.parameters["workspace_link"] == "tcp" and executor.parameters["urdf_path"] == "config/urdf/sim_arm.urdf"
    assert len(executor.parameters["workspace_keep_out"]) == 6
    assert "joint_limits.panda_joint1.max_jerk" in node_specs("franka")[1].parameters


def test_real_robot_remaps_topics_and_has_no_sim():
    specs = node_specs("franka")
    assert [s.name for s in specs] == ["vla_policy", "vla_chunk_executor"]
    assert ("commands", "/forward_position_controller/commands") in specs[1].remappings
    cmd = specs[1].command("/tmp/p.yaml")
    assert cmd[cmd.index("--ros-args") :] == [
        "--ros-args", "-r", "__node:=vla_chunk_executor", "--params-file", "/tmp/p.yaml",
        "-r", "commands:=/forward_position_controller/commands", "-r", "joint_states:=/joint_states",
    ]


def _load_launch_file_with_recording_stand_ins():
    """launch/launch_ros are not installable here: record what the launch file builds instead."""
    built = []

    class Node:
        def __init__(self, **kwargs):
            built.append(kwargs)

    class LaunchConfiguration:
        values = {"robot": "franka", "backend": "", "model_path": "/ckpt", "use_sim": ""}

        def __init__(self, name):
            self.name = name

        def perform(self, _context):
            return self.values[self.name]

    class OpaqueFunction:
        def __init__(self, function):
            self.function = function

    fake = {
        "launch": types.SimpleNamespace(LaunchDescription=list),
        "launch.actions": types.SimpleNamespace(DeclareLaunchArgument=lambda *a, **k: ("arg", a, k), OpaqueFunction=OpaqueFunction),
        "launch.substitutions": types.SimpleNamespace(LaunchConfiguration=LaunchConfiguration),
        "launch_ros.actions": types.SimpleNamespace(Node=Node),
    }
    saved = {k: sys.modules.get(k) for k in fake}
    sys.modules.update(fake)
    try:
        spec = importlib.util.spec_from_file_location("policy_launch", ROOT / "launch" / "policy.launch.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        description = module.generate_launch_description()
        opaque = [a for a in description if isinstance(a, OpaqueFunction)][0]
        opaque.function(None)
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v
    return description, built


def test_launch_file_builds_the_same_nodes_as_the_bringup():
    description, built = _load_launch_file_with_recording_stand_ins()
    args = [a[1][0] for a in description if isinstance(a, tuple)]
    assert args == ["robot", "backend", "model_path", "use_sim"]
    specs = node_specs("franka", model_path="/ckpt")
    assert [(b["executable"], b["name"]) for b in built] == [(s.executable, s.name) for s in specs]
    for b, s in zip(built, specs):
        assert b["parameters"] == [s.parameters] and b["remappings"] == list(s.remappings)


def test_console_scripts_match_the_node_modules():
    setup_py = (ROOT / "setup.py").read_text()
    for spec in node_specs("sim"):
        assert f"{spec.executable} = {spec.module}:main" in setup_py


def test_params_file_is_a_ros_params_document():
    doc = params_yaml(node_specs("sim")[1])
    assert set(doc) == {"vla_chunk_executor"} and "ros__parameters" in doc["vla_chunk_executor"]
    yaml.safe_dump(doc)


def test_launch_args_are_parsed_like_ros2_launch():
    assert parse_launch_args(["robot:=franka", "use_sim:=false"]) == {"robot": "franka", "use_sim": "false"}


def test_a_node_that_dies_is_reported_with_a_clear_message(ros_env, tmp_path):
    specs = [s for s in node_specs("sim", model_path=str(tmp_path / "missing_ckpt"), use_sim=False) if s.name == "vla_policy"]
    with Bringup(specs, log_dir=tmp_path / "logs", env=ros_env) as bringup:
        deadline = time.monotonic() + 60
        while not bringup.dead() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert bringup.dead() == {"vla_policy": 1}
    log = (tmp_path / "logs" / "vla_policy.log").read_text()
    assert "cannot start: octo checkpoint folder not found" in log and "missing_ckpt" in log


def test_bringup_stops_every_node_cleanly(ros_env, tmp_path, tiny_checkpoint):
    specs = node_specs("sim", model_path=str(tiny_checkpoint), use_sim=False)
    bringup = Bringup(specs, log_dir=tmp_path / "logs", env=ros_env)
    bringup.start()
    time.sleep(3.0)
    assert bringup.dead() == {}
    bringup.stop()
    assert all(p.returncode == 0 for p in bringup.procs.values()), {n: p.returncode for n, p in bringup.procs.items()}

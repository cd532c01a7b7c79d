"""One node list for launch and bring-up; the bring-up starts, reports deaths and stops cleanly."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest
import yaml

from vla_ros.bringup import Bringup, parse_launch_args
from vla_ros.launch_description import DDS_PROFILE_VARIABLE, LAUNCH_ARGUMENTS, dds_environment, node_specs, params_yaml

ROOT = Path(__file__).resolve().parent.parent


def test_sim_bringup_lists_the_managed_nodes_their_manager_and_the_sim():
    specs = node_specs("sim")
    assert [s.name for s in specs] == ["vla_chunk_executor", "vla_policy", "vla_lifecycle_manager", "vla_sim_robot"]
    executor, policy, manager, _ = specs
    assert manager.parameters == {
        "node_names": ["vla_chunk_executor", "vla_policy"],
        "autostart": True,
        "kill_unresponsive": False,  # no respawn: an unresponsive node is reported, not stopped
    }
    assert policy.parameters["camera_topics"] == ["camera/image_raw", "wrist_camera/image_raw"]
    assert executor.parameters["joint_limits.elbow.max_velocity"] == 2.0
    assert executor.parameters["joint_limits.gripper.max_jerk"] == 50.0
    assert (
        executor.parameters["workspace_link"] == "tcp"
        and executor.parameters["urdf_path"] == "config/urdf/sim_arm.urdf"
    )
    assert len(executor.parameters["workspace_keep_out"]) == 6
    assert "joint_limits.panda_joint1.max_jerk" in node_specs("franka")[0].parameters


def test_another_backend_drops_the_robot_configs_checkpoint_and_settings():
    """`backend:=pi0` alone must not try to load the config's Octo checkpoint."""
    policy = node_specs("sim", backend="pi0")[1].parameters
    assert policy["backend"] == "pi0" and policy["model_path"] == ""
    policy = node_specs("sim", backend="pi0", model_path="/x", device="cuda:0")[1].parameters
    assert (policy["model_path"], policy["device"]) == ("/x", "cuda:0")
    assert node_specs("sim")[1].parameters["model_path"] == "models/demo"


def test_real_robot_remaps_topics_and_has_no_sim():
    specs = node_specs("franka")
    assert [s.name for s in specs] == ["vla_chunk_executor", "vla_policy", "vla_lifecycle_manager"]
    assert ("commands", "/joint_trajectory_controller/joint_trajectory") in specs[0].remappings
    cmd = specs[0].command("/tmp/p.yaml")
    assert cmd[cmd.index("--ros-args") :] == [
        "--ros-args",
        "-r",
        "__node:=vla_chunk_executor",
        "--params-file",
        "/tmp/p.yaml",
        "-r",
        "commands:=/joint_trajectory_controller/joint_trajectory",
        "-r",
        "joint_states:=/joint_states",
    ]


def _load_launch_file_with_recording_stand_ins():
    """launch/launch_ros are not installable here: record what the launch file builds instead."""
    built = []

    class Node:
        def __init__(self, **kwargs):
            built.append(kwargs)

    class LaunchConfiguration:
        values = {
            "robot": "franka",
            "backend": "",
            "model_path": "/ckpt",
            "device": "",
            "use_sim": "",
            "autostart": "true",
            "dds_profile": "shm",
            "respawn": "true",
            "dry_run": "true",
            "speed_scale": "0.25",
            "bypass_executor": "false",
            "record": "false",
            "record_dir": "",
            "viz": "",
            "viz_target": "",
        }

        def __init__(self, name):
            self.name = name

        def perform(self, _context):
            return self.values[self.name]

    class OpaqueFunction:
        def __init__(self, function):
            self.function = function

    fake = {
        "launch": types.SimpleNamespace(LaunchDescription=list),
        "launch.actions": types.SimpleNamespace(
            DeclareLaunchArgument=lambda *a, **k: ("arg", a, k), OpaqueFunction=OpaqueFunction
        ),
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
    assert args == list(LAUNCH_ARGUMENTS)
    specs = node_specs(
        "franka",
        model_path="/ckpt",
        overrides={"vla_chunk_executor": {"dry_run": True, "speed_scale": 0.25}},
        respawn=True,
    )
    assert specs[2].parameters["kill_unresponsive"] is True  # respawn: the manager stops a node that hangs
    assert built[0]["parameters"][0]["dry_run"] is True  # dry_run:=true speed_scale:=0.25 reach the executor
    assert [(b["executable"], b["name"]) for b in built] == [(s.executable, s.name) for s in specs]
    for b, s in zip(built, specs):
        assert b["parameters"] == [s.parameters] and b["remappings"] == list(s.remappings)
        assert b["additional_env"] == dds_environment("shm")
        assert b["respawn"] is True  # respawn:=true reaches launch_ros


def test_dds_profile_argument_sets_the_fastdds_variable_unless_the_user_has_one(tmp_path):
    shipped = dds_environment("shm", environ={})[DDS_PROFILE_VARIABLE]
    assert Path(shipped).is_file() and "<type>SHM</type>" in Path(shipped).read_text()
    assert dds_environment("shm", environ={DDS_PROFILE_VARIABLE: "/mine.xml"}) == {}  # the user's own profile wins
    assert dds_environment("none", environ={}) == {}
    own = tmp_path / "own.xml"
    own.write_text("<dds/>")
    assert dds_environment(str(own), environ={DDS_PROFILE_VARIABLE: "/mine.xml"}) == {DDS_PROFILE_VARIABLE: str(own)}
    with pytest.raises(ValueError, match="dds_profile"):
        dds_environment(str(tmp_path / "missing.xml"))


def test_console_scripts_match_the_node_modules():
    setup_py = (ROOT / "setup.py").read_text()
    for spec in node_specs("sim"):
        assert f"{spec.executable} = {spec.module}:main" in setup_py


def test_params_file_is_a_ros_params_document():
    doc = params_yaml(node_specs("sim")[0])
    assert set(doc) == {"vla_chunk_executor"} and "ros__parameters" in doc["vla_chunk_executor"]
    yaml.safe_dump(doc)


def test_launch_args_are_parsed_like_ros2_launch():
    assert parse_launch_args(["robot:=franka", "use_sim:=false"]) == {"robot": "franka", "use_sim": "false"}


def test_a_node_that_dies_is_reported_with_a_clear_message(ros_env, tmp_path):
    specs = [
        s
        for s in node_specs("sim", use_sim=False, overrides={"vla_policy": {"camera_topics": ["only_one"]}})
        if s.name == "vla_policy"
    ]
    with Bringup(specs, log_dir=tmp_path / "logs", env=ros_env) as bringup:
        deadline = time.monotonic() + 60
        while not bringup.dead() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert bringup.dead() == {"vla_policy": 1}
    log = (tmp_path / "logs" / "vla_policy.log").read_text()
    assert (
        "cannot start: camera_names ['front', 'wrist'] and camera_topics ['only_one'] must be non-empty and the same "
        "length" in log
    )


def test_a_node_that_fails_to_configure_is_reported_by_the_manager(ros_env, tmp_path):
    specs = node_specs("sim", model_path=str(tmp_path / "missing_ckpt"), use_sim=False)
    with Bringup(specs, log_dir=tmp_path / "logs", env=ros_env) as bringup:
        manager_log = tmp_path / "logs" / "vla_lifecycle_manager.log"
        deadline = time.monotonic() + 90
        while "startup failed" not in manager_log.read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "startup failed: vla_policy failed to configure (its log says why)" in manager_log.read_text()
        assert bringup.dead() == {}  # the policy node stays up, unconfigured
    log = (tmp_path / "logs" / "vla_policy.log").read_text()
    assert "configure failed: octo checkpoint folder not found" in log and "missing_ckpt" in log


def test_bringup_stops_every_node_cleanly(ros_env, tmp_path, tiny_checkpoint):
    specs = node_specs("sim", model_path=str(tiny_checkpoint), use_sim=False)
    bringup = Bringup(specs, log_dir=tmp_path / "logs", env=ros_env)
    bringup.start()
    time.sleep(3.0)
    assert bringup.dead() == {}
    bringup.stop()
    assert all(p.returncode == 0 for p in bringup.procs.values()), {n: p.returncode for n, p in bringup.procs.items()}


def test_a_node_asked_for_its_stacks_writes_them_to_its_log_and_carries_on(ros_env, tmp_path, tiny_checkpoint):
    """`kill -USR1 <pid>`: every thread's Python stack in the node's log, for a node that stopped answering."""
    specs = [s for s in node_specs("sim", model_path=str(tiny_checkpoint), use_sim=False) if s.name == "vla_policy"]
    log = tmp_path / "logs" / "vla_policy.log"
    with Bringup(specs, log_dir=tmp_path / "logs", env=ros_env) as bringup:
        deadline = time.monotonic() + 60
        while "unconfigured" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
        os.kill(bringup.procs["vla_policy"].pid, signal.SIGUSR1)
        while "most recent call first" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)
        assert bringup.dead() == {}
    text = log.read_text()
    assert "most recent call first" in text and "run_node" in text, text[-2000:]


def _children(pid: int) -> list[int]:
    """Processes whose parent is `pid` (from /proc)."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = open(f"/proc/{entry}/stat").read()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry))
    return out


def _alive(pid: int) -> bool:
    try:
        state = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _start_bringup(ros_env, tiny_checkpoint, ignore_sigint: bool = False):
    env = {**os.environ, **ros_env}
    cmd = [sys.executable, "-m", "vla_ros.bringup", "robot:=sim", "use_sim:=false", f"model_path:={tiny_checkpoint}"]
    pre = (lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if ignore_sigint else None  # as `cmd &` from a script
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=pre)
    deadline = time.monotonic() + 30
    while len(_children(proc.pid)) < 3 and time.monotonic() < deadline:
        time.sleep(0.2)
    children = _children(proc.pid)
    assert len(children) == 3, children
    time.sleep(3.0)  # the nodes are up and ROS is initialised
    return proc, children


@pytest.mark.parametrize(
    "sig, ignore_sigint", [(signal.SIGTERM, False), (signal.SIGINT, True), (signal.SIGKILL, False)]
)
def test_no_node_outlives_the_bringup(ros_env, tiny_checkpoint, sig, ignore_sigint):
    """SIGTERM (supervisors), SIGINT to a background bring-up (inherited SIG_IGN) and even SIGKILL
    of the bring-up end every node."""
    proc, children = _start_bringup(ros_env, tiny_checkpoint, ignore_sigint)
    proc.send_signal(sig)
    proc.wait(timeout=30)
    deadline = time.monotonic() + 20
    while any(_alive(c) for c in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    orphans = [c for c in children if _alive(c)]
    for c in orphans:
        os.kill(c, signal.SIGKILL)
    assert not orphans, f"nodes outlived the bring-up after {sig.name}"

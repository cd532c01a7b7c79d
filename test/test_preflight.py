"""From a checkpoint to a robot: `vla-ros check`, the robot config owning robot facts, the entry points
that users run (serve with a robot, convert in its own environment), fine-tune statistics layouts."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from vla_ros.backends.base import BackendError, load_backend
from vla_ros.paths import PACKAGE_ROOT
from vla_ros.preflight import run_check

FRANKA_JOINTS = [f"panda_joint{i}" for i in range(1, 8)]


@pytest.fixture(scope="module")
def bridge_openvla(tmp_path_factory) -> Path:
    """A tiny OpenVLA whose checkpoint folder says its actions are Bridge EE deltas (7 values), no joints named."""
    from vla_ros.backends.openvla.tiny import make_tiny_checkpoint

    folder = make_tiny_checkpoint(tmp_path_factory.mktemp("bridge_openvla"), tuple(f"d{i}" for i in range(7)))
    settings = yaml.safe_load((folder / "openvla.yaml").read_text())
    for key in ("joints", "relative_joints", "cameras"):  # robot facts: the robot config's
        settings.pop(key, None)
    settings["action_space"] = {"preset": "bridge_ee_delta"}
    (folder / "openvla.yaml").write_text(yaml.safe_dump(settings))
    return folder


def test_check_passes_on_the_bundled_demo_and_says_where_each_value_came_from():
    report = run_check({"robot": "sim"})
    text = report.text()
    assert report.problems == [], text
    assert "max_guidance=0.0 (" in text and "models/demo/octo.yaml)" in text  # a value and its source
    assert "robot cameras read: ['front', 'wrist']" in text and "8 points, 0.1 s apart" in text


def test_an_ee_checkpoint_on_franka_ik_runs_the_checkpoints_preset_over_the_robots_default(bridge_openvla):
    """franka_ik declares libero_ee_delta for checkpoints that name none; a Bridge checkpoint's own preset
    wins, its joints are the robot's 8 (IK on the arm, the finger as gripper), its camera the robot's first."""
    report = run_check({"robot": "franka_ik", "backend": "openvla", "model_path": str(bridge_openvla)})
    text = report.text()
    assert report.problems == [], text
    assert "'bridge_ee_delta'" in text and "over the robot config's default {'preset': 'libero_ee_delta'}" in text
    assert f"model joints (in order): {FRANKA_JOINTS + ['panda_finger_joint1']}" in text
    assert "joints=('panda_joint1'" in text and "franka_ik.yaml: joints)" in text
    assert "IK: 2 cm steps along ±x, ±y, ±z from the home pose all reach their target" in text


def test_a_mismatched_pair_lists_all_its_problems_in_one_run(tmp_path):
    """The demo model with cameras the sim robot does not have: both cameras and the inference are reported."""
    settings = json.dumps({"cameras": {"front": "scene_cam", "wrist": "hand_cam"}})
    report = run_check({"robot": "sim", "backend_settings": settings})
    assert any("cameras ['scene_cam', 'hand_cam'] are not among the robot's" in p for p in report.problems)
    assert any(p.startswith("inference:") and "scene_cam" in p for p in report.problems), report.problems
    cli = [sys.executable, "-m", "vla_ros.cli", "check", "robot:=sim", f"backend_settings:={settings}"]
    done = subprocess.run(cli, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "2 problem(s)" in done.stdout, done.stdout + done.stderr


def test_an_unloadable_checkpoint_is_a_problem_not_a_crash(tmp_path):
    report = run_check({"robot": "franka_ik", "backend": "pi0", "model_path": str(tmp_path / "nowhere")})
    assert len(report.problems) == 1 and report.problems[0].startswith("loading:") and "nowhere" in report.problems[0]


def test_backend_defaults_name_no_robot_joints_so_a_checkpoint_runs_on_any_robot(bridge_openvla):
    """The same folder on two robots: the robot config's joints and cameras fill what the checkpoint leaves open."""
    from vla_ros.backends.action_output import robot_body
    from vla_ros.config import load_robot_config

    for robot in ("sim", "franka_ik"):
        cfg = load_robot_config(robot)
        backend = load_backend("openvla", bridge_openvla, robot=robot_body(cfg))
        try:
            assert backend.joint_names == cfg.joint_names and backend.camera_names == (cfg.cameras[0].name,)
            assert backend.settings_sources["joints"] == f"{cfg.source}: joints"
        finally:
            backend.close()


@pytest.mark.parametrize(
    "old, new",
    [("camera", r"cameras \(model camera -> robot camera"), ("wrist_cameras", "cameras"), ("delta_joints", "relative")],
)
def test_a_former_key_is_refused_naming_the_new_one(bridge_openvla, old, new):
    with pytest.raises(BackendError, match=rf"node parameters: {old}: renamed; write {new}"):
        load_backend("openvla", bridge_openvla, {old: ["front"]})


def test_a_former_normalization_name_is_refused_naming_the_new_one(bridge_openvla):
    with pytest.raises(BackendError, match="normalization: 'bounds_q99' is a former name; write quantiles"):
        load_backend("openvla", bridge_openvla, {"normalization": "bounds_q99"})


def test_a_finetuned_octos_single_dataset_statistics_are_read():
    """Octo's scripts/finetune.py saves one dataset's statistics with `action` at the top level."""
    from vla_ros.backends.octo.processing import SINGLE_DATASET, select_dataset

    action = {"mean": [0.0] * 7, "std": [1.0] * 7, "p01": [-1.0] * 7, "p99": [1.0] * 7, "mask": [True] * 6 + [False]}
    key, stats = select_dataset({"action": action, "proprio": action, "num_transitions": 10}, None, "finetune")
    assert key == SINGLE_DATASET and np.array_equal(stats["p99"], np.ones(7))


BLOCKER = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in {blocked!r}:
            raise ImportError("not installed here: " + name)
sys.meta_path.insert(0, Block())
from vla_ros.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_convert_starts_in_the_converters_own_environment(tmp_path):
    """requirements-convert.txt has no torch, websockets, ROS, msgpack or pydantic: `vla-ros convert` (and its
    --help) must not import them on its way to the converter."""
    blocked = ["torch", "websockets", "rclpy", "msgpack", "pydantic", "cv2", "mujoco", "pinocchio", "transformers"]
    script = BLOCKER.format(blocked=blocked)
    for args in (["convert", "--help"], ["convert", "octo", str(tmp_path / "none"), str(tmp_path / "out")]):
        done = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=60)
        assert "not installed here" not in done.stderr, done.stderr
    assert done.returncode != 0 and "none: not a folder" in done.stderr + done.stdout


def test_serve_takes_a_robot_so_an_end_effector_checkpoint_can_be_served(tmp_path):
    """`vla-ros serve --robot sim` serves models/demo_ee (EE deltas through the sim arm's IK); a relative model
    path resolves as everywhere else (the working directory, else the package)."""
    cmd = [sys.executable, "-m", "vla_ros.cli", "serve", "--backend", "octo", "--model-path", "models/demo_ee"]
    cmd += ["--robot", "sim", "--port", "0", "--host", "127.0.0.1"]
    with subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        try:
            deadline, line = time.monotonic() + 90, ""
            while time.monotonic() < deadline and not line and proc.poll() is None:
                line = proc.stdout.readline().strip()
            assert line, proc.stderr.read() if proc.poll() is not None else "no answer in 90 s"
            assert json.loads(line)["serving"].startswith("ws://127.0.0.1:")
        finally:
            proc.terminate()
            proc.wait(timeout=20)
    no_robot = subprocess.run(cmd[:-6] + ["--port", "0"], cwd=tmp_path, capture_output=True, text=True, timeout=90)
    assert no_robot.returncode == 2 and "urdf" in no_robot.stderr.lower(), no_robot.stderr


def test_every_bundled_robot_config_passes_its_own_checks():
    from vla_ros.config import load_robot_config

    for path in sorted((PACKAGE_ROOT / "config" / "robots").glob("*.yaml")):
        cfg = load_robot_config(str(path))
        assert cfg.joint_names and cfg.cameras, path


def test_an_action_space_setting_that_contradicts_the_checkpoints_config_fails_naming_both():
    """models/demo_ee's config.json states bridge_ee_delta: a setting saying otherwise is refused, one saying the
    same (or only overriding fields) is taken."""
    from vla_ros.backends.action_output import robot_body
    from vla_ros.config import load_robot_config

    robot = robot_body(load_robot_config("sim"))
    folder = PACKAGE_ROOT / "models" / "demo_ee"
    with pytest.raises(
        BackendError, match=r"node parameters: action_space .*libero_ee_delta.* contradicts .*config.json"
    ):
        load_backend("octo", folder, {"action_space": {"preset": "libero_ee_delta"}}, robot=robot)
    backend = load_backend("octo", folder, {"action_space": {"preset": "bridge_ee_delta"}}, robot=robot)
    assert backend.output.space.name == "bridge_ee_delta"
    backend.close()


def test_the_check_matrix_in_the_docs_is_current():
    """docs/checkpoints.md's robot x checkpoint table is what `vla-ros check` says today."""
    sys.path.insert(0, str(PACKAGE_ROOT / "scripts"))
    try:
        from check_matrix import BEGIN, DOC, END, table
    finally:
        sys.path.pop(0)
    doc = DOC.read_text()
    assert doc[doc.index(BEGIN) + len(BEGIN) : doc.index(END)].strip() == table()


def test_the_reference_tables_in_the_docs_are_what_the_schemas_say():
    """docs/configuration.md's node parameter and backend settings tables regenerate identically."""
    from vla_ros.reference_tables import BEGIN, DOC, END, tables

    doc = DOC.read_text()
    assert doc[doc.index(BEGIN) + len(BEGIN) : doc.index(END)].strip() == tables()
    assert "| `relative_joints` |" in doc and "| `guidance_overlap` |" in doc

"""One closed-loop test per public-checkpoint recipe of docs/checkpoints.md.

Each test writes a tiny checkpoint in the public checkpoint's layout (the same file names, config keys and
statistics layout; toy sizes, random weights), adds the settings file the recipe says to write with exactly
the recipe's lines, and runs it through the real bring-up with `use_sim:=true` on the recipe's robot config:
the policy node, the chunk executor, the lifecycle manager and the MuJoCo sim built from the robot config's
URDF (vla_ros/sim/urdf_robot.py), all as ROS processes on loopback (the node tests' `nodes` fixture). Each
asserts that chunks are produced for the recipe's settings, that the executor tracks them and the measured
arm joints move, that every command stays inside the robot config's position and velocity limits, and that
no node reports an error.

The one deviation from the recipes' lines: this machine has no GPU, so the policy runs with the node
parameter `device:=cpu` (over OpenVLA's `device: cuda`, as the settings layers intend).

OpenVLA-OFT on LIBERO runs with its proprio input computed from the action space's state (the end-effector
pose and fingers); naming joints as its proprio input is refused.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from vla_ros.config import load_robot_config

TEST_ROOT = Path(__file__).resolve().parents[1]


def _load_module(name: str, path: Path):
    """A helper module of another test folder (a conftest.py, which is not importable by package name)."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_NODE_HARNESS = _load_module("vla_ros_test_node_harness", TEST_ROOT / "nodes" / "conftest.py")
_OCTO_FIXTURES = _load_module("vla_ros_test_octo_fixtures", TEST_ROOT / "backends" / "octo" / "conftest.py")
nodes = _NODE_HARNESS.nodes  # the node tests' bring-up fixture (bounded waits, logs in tmp_path/logs)
wait_until, log_text = _NODE_HARNESS.wait_until, _NODE_HARNESS.log_text

INSTRUCTION = "pick up the red cube"  # the URDF sim's task; every tiny tokenizer here knows its words
EPISODE_S = 3.0  # robot time each recipe runs after its first chunk
START_TIMEOUT_S = 60.0  # bring-up (processes, model load, warm-up) to the first chunk
MIN_CHUNKS = 3
MOVED_RAD = 1e-3  # the measured arm joints count as moved beyond this
VELOCITY_SLACK = 1.6  # commands are timed by their arrival here: one late tick may hold two control periods
BRIDGE_DIMS = ("x", "y", "z", "roll", "pitch", "yaw", "gripper")  # names only size the tiny OpenVLA's 7 dims


# --- the tiny checkpoints, one per recipe ---------------------------------------------------------------------


def write_recipe_file(folder: Path, name: str, lines: str) -> Path:
    """The settings file a recipe says to add, with the recipe's lines."""
    path = folder / name
    path.write_text(lines)
    return path


@pytest.fixture(scope="module")
def octo_release(tmp_path_factory) -> Path:
    """octo-small-1.5 as `vla-ros convert octo` writes it: the tiny JAX reference's params (Octo's own
    layout: two SmallStem image tokenizers, T5 language, diffusion head) converted by the converter's
    code; dataset_statistics.json with the released per-dataset entries (bridge_dataset, fractal...), its
    Bridge action std made small so the random model's end-effector steps stay reachable. The recipe's
    t5_folder is a tiny T5 folder (word-level tokenizer, 1-layer encoder of the model's language width)."""
    from vla_ros.backends.octo.convert import convert_params, write_converted

    root = tmp_path_factory.mktemp("octo_recipe")
    fixture = _OCTO_FIXTURES.FIXTURES / "tiny"
    raw = json.loads((fixture / "config.json").read_text())
    with np.load(fixture / "reference.npz") as z:
        params = {k.removeprefix("params/"): z[k] for k in z.files if k.startswith("params/")}
    cfg, weights = convert_params(raw, params)
    stats = json.loads((fixture / "dataset_statistics.json").read_text())
    action = stats["bridge_dataset"]["action"]
    action["mean"], action["std"] = [0.0] * 7, [0.002] * 7
    (root / "dataset_statistics.json").write_text(json.dumps(stats))
    folder = write_converted(root / "octo-small-1.5", cfg, weights, root / "dataset_statistics.json")
    t5 = _OCTO_FIXTURES.make_tiny_t5(root / "t5-base", cfg.language_dim)
    write_recipe_file(folder, "octo.yaml", f"t5_folder: {t5}\ndataset_key: bridge_dataset\ndt_s: 0.2\n")
    return folder


def openvla_dataset(q01: list[float], q99: list[float], proprio_dim: int) -> dict:
    """One `norm_stats` entry of an OpenVLA config.json (the gripper, last, not normalised: mask False)."""
    low, high = np.asarray(q01), np.asarray(q99)
    action = {
        "mean": ((low + high) / 2).tolist(),
        "std": ((high - low) / 4).tolist(),
        "max": (1.2 * high).tolist(),
        "min": (1.2 * low).tolist(),
        "q01": low.tolist(),
        "q99": high.tolist(),
        "mask": [True] * (len(low) - 1) + [False],
    }
    ones = np.ones(proprio_dim)
    proprio = {"mean": (0 * ones).tolist(), "std": ones.tolist(), "max": ones.tolist(), "min": (-ones).tolist()}
    proprio.update(q01=(-ones).tolist(), q99=ones.tolist())
    return {"action": action, "proprio": proprio, "num_transitions": 1000, "num_trajectories": 10}


def tiny_openvla(folder: Path, norm_stats: dict, oft: bool = False):
    """openvla/tiny.py's folder (config.json, sharded safetensors + index, preprocessor_config.json,
    tokenizer) with 7 action dims and `norm_stats` in config.json; its openvla.yaml is removed (the recipe's
    is written instead)."""
    from vla_ros.backends.openvla.tiny import make_tiny_checkpoint

    make_tiny_checkpoint(folder, BRIDGE_DIMS, oft=oft, chunk_size=8, wrist_cameras=("wrist",) if oft else ())
    raw = json.loads((folder / "config.json").read_text())
    raw["norm_stats"] = norm_stats
    (folder / "config.json").write_text(json.dumps(raw, indent=1))
    (folder / "openvla.yaml").unlink()
    return raw


@pytest.fixture(scope="module")
def openvla_bridge(tmp_path_factory) -> Path:
    """openvla/openvla-7b's layout; statistics `bridge_orig` (Bridge-sized end-effector steps, gripper
    0..1) next to a second dataset, so the recipe's unnorm_key is needed."""
    folder = tmp_path_factory.mktemp("openvla_recipe") / "openvla-7b"
    steps = [0.01] * 3 + [0.02] * 3  # metres / radians per action
    tiny_openvla(
        folder,
        {
            "bridge_orig": openvla_dataset([-s for s in steps] + [0.0], steps + [1.0], 7),
            "fractal20220817_data": openvla_dataset([-0.5] * 6 + [0.0], [0.5] * 6 + [1.0], 8),
        },
    )
    write_recipe_file(
        folder,
        "openvla.yaml",
        "unnorm_key: bridge_orig\naction_space: {preset: bridge_ee_delta}\ndevice: cuda\ndtype: bfloat16\n",
    )
    return folder


OFT_LIBERO_LINES = """\
oft: true
chunk_size: 8
normalization: quantiles
unnorm_key: libero_spatial_no_noops
action_space: {preset: libero_ee_delta}
cameras: {primary: front, wrist: wrist}
"""


@pytest.fixture(scope="module")
def oft_libero(tmp_path_factory) -> Path:
    """moojink/openvla-7b-oft-finetuned-libero-spatial's layout: the VLM folder plus the L1 action head and a
    proprio projector of LIBERO's 8 proprio values (EE position, axis-angle, 2 fingers), both saved from DDP;
    statistics `libero_spatial_no_noops` with 7 actions and 8 proprio dims."""
    from vla_ros.backends.openvla.configuration import OpenVLAConfig
    from vla_ros.backends.openvla.modeling import ProprioProjector
    from vla_ros.backends.openvla.tiny import save_component

    folder = tmp_path_factory.mktemp("oft_recipe") / "oft-libero-spatial"
    libero = openvla_dataset([-0.1] * 6 + [-1.0], [0.1] * 6 + [1.0], 8)  # small steps: the random model stays reachable
    raw = tiny_openvla(folder, {"libero_spatial_no_noops": libero}, oft=True)
    hidden = OpenVLAConfig.from_json(raw).hidden_size
    save_component(folder / "proprio_projector--1_checkpoint.pt", ProprioProjector(hidden, 8))
    write_recipe_file(folder, "openvla.yaml", OFT_LIBERO_LINES)
    return folder


@pytest.fixture(scope="module")
def lerobot_so101_pi05(tmp_path_factory) -> Path:
    """A LeRobot π₀.5 folder as LeRobot saved it (test/backends/pi0/fixtures/lerobot_pi05: config.json,
    model.safetensors, policy_pre/postprocessor.json with their normaliser statistics, tokenizer.model; 6
    state/action dims, like the SO-101's 6 joints), without the fixture's own reference and robot mapping.
    Its camera slots are LeRobot's base_0_rgb / left_wrist_0_rgb / right_wrist_0_rgb, so pi0.yaml maps them
    onto the SO-101's cameras, the recipe's `cameras:` line."""
    source = TEST_ROOT / "backends" / "pi0" / "fixtures" / "lerobot_pi05"
    folder = tmp_path_factory.mktemp("lerobot_recipe") / "my-so101-pi05"
    shutil.copytree(source, folder, ignore=shutil.ignore_patterns("reference.npz", "pi0.yaml"))
    write_recipe_file(folder, "pi0.yaml", "cameras: {base_0_rgb: front, left_wrist_0_rgb: wrist}\n")
    return folder


def jsonable(arrays: dict) -> dict:
    return {k: np.asarray(v).tolist() for k, v in arrays.items()}


@pytest.fixture(scope="module")
def openpi_pi05_droid(tmp_path_factory) -> Path:
    """pi05_droid after openpi's PyTorch converter and the recipe's copy of assets/: config.json with the
    converter's keys (action_dim, action_horizon, precision; no model type: π₀.5 is read from the weight
    names) plus the tiny sizes the named variants cannot express, model.safetensors in the converter's key
    layout, assets/droid/norm_stats.json (openpi's layout: 8 state values, 7 joints + gripper; 8 actions,
    7 joint velocities + gripper position; quantiles) and tokenizer.model."""
    from vla_ros.backends.pi0.tiny import make_tiny_checkpoint

    robot = load_robot_config("franka_ik")
    folder = make_tiny_checkpoint(
        tmp_path_factory.mktemp("droid_recipe") / "pi05_droid", robot.joint_names, horizon=15, variant="pi05"
    )
    ours = json.loads((folder / "config.json").read_text())
    converter = {"action_dim": ours["action_dim"], "action_horizon": ours["action_horizon"], "precision": "float32"}
    sizes = {k: ours[k] for k in ("paligemma", "action_expert", "vision", "vocab_size", "max_token_len")}
    (folder / "config.json").write_text(json.dumps({**converter, **sizes}, indent=1))
    (folder / "norm_stats.json").unlink()
    (folder / "pi0.yaml").unlink()
    home = np.array(robot.home)
    low, high = np.append(home[:7] - 0.5, 0.0), np.append(home[:7] + 0.5, 1.0)  # the gripper position 0..1
    state = {"mean": (low + high) / 2, "std": (high - low) / 4, "q01": low, "q99": high}
    low, high = np.array([-0.2] * 7 + [0.0]), np.array([0.2] * 7 + [1.0])  # joint velocities (DROID units), gripper
    actions = {"mean": (low + high) / 2, "std": (high - low) / 4, "q01": low, "q99": high}
    stats = {"norm_stats": {"state": jsonable(state), "actions": jsonable(actions)}}
    (folder / "assets" / "droid").mkdir(parents=True)
    (folder / "assets" / "droid" / "norm_stats.json").write_text(json.dumps(stats, indent=1))
    write_recipe_file(
        folder,
        "pi0.yaml",
        "openpi_config: pi05_droid     # the openpi training config the checkpoint was trained with\n",
    )
    return folder


# --- one closed-loop run -------------------------------------------------------------------------------------


def effective_sources(policy_log: str) -> dict[str, str]:
    """Setting -> where its value came from, as the policy node's 'effective backend settings' line says."""
    line = next(x for x in policy_log.splitlines() if "effective backend settings: " in x)
    text = line.split("effective backend settings: ", 1)[1]
    return {m[1]: m[2] for m in re.finditer(r"(\w+)=.*? \(([^()]*)\)(?=, \w+=|$)", text)}


# At start-up a chunk can reach the executor before its first joint state (DDS discovery): it is refused, by design
STARTUP_REFUSAL = "rejected chunk: no joint state received yet"


def error_lines(log_dir: Path) -> list[str]:
    """The nodes' error lines, the start-up refusal left out."""
    lines = (line for log in sorted(log_dir.glob("*.log")) for line in log.read_text().splitlines())
    return [line for line in lines if "[ERROR]" in line and STARTUP_REFUSAL not in line]


def run_recipe(nodes, tmp_path, robot: str, backend: str, folder: Path) -> dict:
    """Bring up `robot` with use_sim:=true, backend and model_path as the recipe's launch line; run EPISODE_S of
    robot time after the first chunk; check commands, motion and errors. Returns what was recorded."""
    from diagnostic_msgs.msg import DiagnosticStatus
    from sensor_msgs.msg import JointState
    from std_msgs.msg import Float64MultiArray

    cfg = load_robot_config(robot)
    bringup, peer, specs = nodes(
        robot=robot,
        backend=backend,
        model_path=folder,
        use_sim=True,
        policy_overrides={"instruction": INSTRUCTION, "device": "cpu"},
    )
    assert [s.name for s in specs][-1] == "vla_sim_robot" and specs[-1].parameters["robot_config"] == cfg.source
    commands: list[np.ndarray] = []
    measured: list[np.ndarray] = []
    statuses: list = []

    def on_state(msg) -> None:
        index = {n: i for i, n in enumerate(msg.name)}
        measured.append(np.array([msg.position[index[j]] for j in cfg.joint_names]))

    def on_command(msg) -> None:
        commands.append(np.array(msg.data))

    # the robot config's remapped topics (the harness's own subscriptions use the sim robot's names)
    peer.node.create_subscription(Float64MultiArray, cfg.topics["commands"], on_command, 1000)
    peer.node.create_subscription(JointState, cfg.topics["joint_states"], on_state, 100)
    peer.node.create_subscription(DiagnosticStatus, "/vla_chunk_executor/status", statuses.append, 100)
    logs = tmp_path / "logs"
    assert wait_until(lambda: len(peer.chunks) > 0, START_TIMEOUT_S), (
        f"no chunk within {START_TIMEOUT_S} s (exited: {bringup.dead()}); policy log:\n"
        f"{log_text(tmp_path, 'vla_policy')[-4000:]}\nmanager log:\n"
        f"{log_text(tmp_path, 'vla_lifecycle_manager')[-2000:]}"
    )
    time.sleep(EPISODE_S)
    chunks, sent, q = list(peer.chunks), list(commands), np.array(measured)
    assert bringup.dead() == {}, f"nodes exited: {bringup.dead()}"
    assert peer.lifecycle_state("vla_policy") == "active" and peer.lifecycle_state("vla_chunk_executor") == "active"

    # chunks for the robot's joints, finite (each test checks its recipe's dt and horizon)
    policy_log = log_text(tmp_path, "vla_policy")
    assert len(chunks) >= MIN_CHUNKS, f"{len(chunks)} chunks in {EPISODE_S} s"
    for msg in chunks:
        assert list(msg.joint_names) == list(cfg.joint_names)
        positions = np.array([p.positions for p in msg.points])
        assert len(positions) >= 1 and np.all(np.isfinite(positions))
    # executed: the executor tracked them and the sim's measured arm joints moved
    assert any(s.message == "tracking" for s in statuses), sorted({s.message for s in statuses})
    assert len(q) > 1, f"{len(q)} joint states from the sim"
    arm = [i for i, j in enumerate(cfg.joint_names) if not cfg.end_effector or j != cfg.end_effector.gripper_joint]
    moved = np.abs(q[:, arm] - q[0, arm]).max()
    assert moved > MOVED_RAD, f"the measured arm joints moved {moved:.2e} rad"
    # every command inside the robot config's position limits, no step faster than its velocity limits
    limits = cfg.limits
    period_s = 1.0 / specs[0].parameters["control_rate_hz"]
    c = np.array(sent)
    assert len(c) > EPISODE_S / period_s / 2, f"{len(c)} commands"
    assert np.all(c >= limits.min_position - 1e-9) and np.all(c <= limits.max_position + 1e-9)
    steps = np.abs(np.diff(c, axis=0))
    assert np.all(steps <= limits.max_velocity * period_s * VELOCITY_SLACK + 1e-9), (
        f"a command step of {steps.max(axis=0)} per {period_s} s (max_velocity {limits.max_velocity})"
    )
    # no node reports an error: no ERROR log line, no ERROR diagnostics
    assert error_lines(logs) == []
    levels = {(s.name, s.level) for array in list(peer.diagnostics) for s in array.status}
    levels |= {(s.name, s.level) for s in statuses}
    assert not [name for name, level in levels if level == DiagnosticStatus.ERROR], levels
    return {"chunks": chunks, "commands": c, "measured": q, "policy_log": policy_log}


def chunk_offsets(msg) -> list[float]:
    return [p.time_from_start.sec + p.time_from_start.nanosec * 1e-9 for p in msg.points]


def assert_recipe_settings(policy_log: str, folder: Path, file: str, keys: tuple[str, ...]) -> None:
    """The policy node's effective settings took each of `keys` from the recipe's file."""
    sources = effective_sources(policy_log)
    for key in keys:
        assert sources.get(key, "").endswith(f"{folder.name}/{file}"), (key, sources.get(key))


# --- the recipes ---------------------------------------------------------------------------------------------


def test_octo_release_recipe_drives_franka_ik_with_bridge_ee_deltas(nodes, tmp_path, octo_release):
    """Octo octo-small/base-1.5 converted, octo.yaml with t5_folder, dataset_key and dt_s, on franka_ik:
    T5 language task, Bridge's end-effector deltas (the released models' default) through IK on the Panda."""
    run = run_recipe(nodes, tmp_path, "franka_ik", "octo", octo_release)
    assert_recipe_settings(run["policy_log"], octo_release, "octo.yaml", ("t5_folder", "dataset_key", "dt_s"))
    assert "action space 'bridge_ee_delta'" in run["policy_log"]  # the released models' default:
    assert "from octo release default (Bridge)" in run["policy_log"]  # octo.yaml names no action space
    for msg in run["chunks"]:
        offsets = chunk_offsets(msg)  # horizon 4; IK may cut a chunk short
        assert 1 <= len(offsets) <= 4 and offsets == pytest.approx(0.2 * np.arange(1, len(offsets) + 1), abs=1e-6)


def test_openvla_7b_bridge_recipe_drives_franka_ik(nodes, tmp_path, openvla_bridge):
    """openvla-7b, openvla.yaml with unnorm_key bridge_orig and the bridge_ee_delta action space (no joints
    or cameras: franka_ik's joints through IK, its first camera): one-point chunks 0.2 s ahead."""
    run = run_recipe(nodes, tmp_path, "franka_ik", "openvla", openvla_bridge)
    log = run["policy_log"]
    assert_recipe_settings(log, openvla_bridge, "openvla.yaml", ("unnorm_key", "action_space", "dtype"))
    sources = effective_sources(log)
    assert sources["device"] == "node parameters"  # device:=cpu over the recipe's cuda (no GPU here)
    assert sources["cameras"].startswith("default: the first camera of") and "cameras ['front']" in log
    assert "action space 'bridge_ee_delta'" in log
    for msg in run["chunks"]:
        assert chunk_offsets(msg) == pytest.approx([0.2], abs=1e-6)


def test_lerobot_pi05_recipe_drives_so101(nodes, tmp_path, lerobot_so101_pi05):
    """A LeRobot π₀.5 folder (as LeRobot saves it) on so101: slots mapped to front / wrist by pi0.yaml,
    the 6 joints the robot config's, absolute joint targets (no relative-action steps enabled)."""
    run = run_recipe(nodes, tmp_path, "so101", "pi0", lerobot_so101_pi05)
    log = run["policy_log"]
    assert_recipe_settings(log, lerobot_so101_pi05, "pi0.yaml", ("cameras",))
    assert effective_sources(log)["joints"] == "policy_node parameters: joints"  # the robot config's joint_names
    assert "action space 'joint_positions'" in log
    for msg in run["chunks"]:
        assert chunk_offsets(msg) == pytest.approx(0.1 * np.arange(1, 7), abs=1e-6)  # chunk_size 6, dt_s 0.1


def test_openpi_pi05_droid_recipe_drives_franka_ik_with_joint_velocities(nodes, tmp_path, openpi_pi05_droid):
    """openpi's pi05_droid after the PyTorch converter, pi0.yaml naming openpi_config pi05_droid, on franka_ik
    (7 arm joints + the finger: DROID's 8 dims): the config gives droid_joint_velocity, 1/15 s and the camera
    slots; velocities integrated to joint targets, 15 points 1/15 s apart."""
    run = run_recipe(nodes, tmp_path, "franka_ik", "pi0", openpi_pi05_droid)
    log = run["policy_log"]
    assert_recipe_settings(log, openpi_pi05_droid, "pi0.yaml", ("openpi_config",))
    assert "action space 'droid_joint_velocity'" in log
    assert "model_type <- pi05 (config.json type or weight names)" in log  # the converter writes no type
    assert "assets/droid/norm_stats.json" in log
    for msg in run["chunks"]:
        assert chunk_offsets(msg) == pytest.approx(np.arange(1, 16) / 15, abs=1e-6)


# --- OpenVLA-OFT on LIBERO ----------------------------------------------------------------------------------


def load_on_franka_ik(folder: Path, overrides: dict):
    from vla_ros.backends.action_output import robot_body
    from vla_ros.backends.base import load_backend

    robot = robot_body(load_robot_config("franka_ik"))
    return load_backend("openvla", folder, {"device": "cpu", **overrides}, robot=robot)


def test_oft_libero_recipe_drives_franka_ik_with_its_ee_state_as_proprio(nodes, tmp_path, oft_libero):
    """OpenVLA-OFT LIBERO: chunks of 8 from the front and wrist cameras; the proprio projector reads
    libero_ee_delta's state (end-effector position, axis-angle, the two fingers) computed from franka_ik's URDF."""
    run = run_recipe(nodes, tmp_path, "franka_ik", "openvla", oft_libero)
    log = run["policy_log"]
    assert_recipe_settings(log, oft_libero, "openvla.yaml", ("oft", "chunk_size", "unnorm_key", "action_space"))
    assert "action space 'libero_ee_delta'" in log and "state 8)" in log
    assert all(len(msg.points) <= 8 for msg in run["chunks"])


def test_oft_libero_with_proprio_joints_still_fails_naming_the_ee_pose_mismatch(oft_libero):
    """Following the load error's advice (proprio_joints: the robot's 8 joints) must not make an OFT-LIBERO
    checkpoint run: its proprio input is the end-effector pose and gripper, not joint positions."""
    from vla_ros.backends.base import BackendError

    joints = list(load_robot_config("franka_ik").joint_names)
    with pytest.raises(BackendError, match=r"(?i)proprio.*(end.effector|ee pose|ee_)"):
        load_on_franka_ik(oft_libero, {"proprio_joints": joints})

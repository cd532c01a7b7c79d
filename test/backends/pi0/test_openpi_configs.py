"""`openpi_config: <name>`: openpi's per-config conventions (openpi_configs.py) become a converted checkpoint's.

Tiny checkpoints in the layout of openpi's PyTorch converter (config.json with the converter's action_horizon,
assets/<asset_id>/norm_stats.json, no model type) with the name in their pi0.yaml.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil

import numpy as np
import pytest

from vla_ros.backends.action_output import build_action_output, robot_body
from vla_ros.backends.base import BackendError, load_backend
from vla_ros.backends.pi0 import openpi_configs
from vla_ros.backends.pi0.openpi_configs import OPENPI_CONFIGS, lookup, make_bool_mask
from vla_ros.backends.pi0.settings import Pi0Settings
from vla_ros.backends.pi0.tiny import make_tiny_checkpoint
from vla_ros.config import load_robot_config

FRANKA = load_robot_config("franka_ik")
SUPPORTED = sorted(n for n, c in OPENPI_CONFIGS.items() if not c.unsupported)
ALOHA_JOINTS = tuple(f"{side}_{j}" for side in ("left", "right") for j in (*(f"j{i}" for i in range(6)), "gripper"))

# name -> (model, action space preset or groups' types, chain, dt_s, π₀ slots, asset id)
EXPECTED = {
    "pi0_droid": ("pi0", "droid_joint_velocity", None, 1 / 15, ["base_0_rgb", "left_wrist_0_rgb"], "droid"),
    "pi05_droid": ("pi05", "droid_joint_velocity", None, 1 / 15, ["base_0_rgb", "left_wrist_0_rgb"], "droid"),
    "pi05_droid_finetune": ("pi05", "droid_joint_velocity", None, 1 / 15, ["base_0_rgb", "left_wrist_0_rgb"], "droid"),
    "pi05_full_droid_finetune": (
        "pi05",
        ["joint_position", "gripper"],
        "from_state",
        1 / 15,
        ["base_0_rgb", "left_wrist_0_rgb"],
        "droid",
    ),
    "pi05_libero": (
        "pi05",
        "libero_ee_delta",
        None,
        0.05,
        ["base_0_rgb", "left_wrist_0_rgb"],
        "physical-intelligence/libero",
    ),
}


@pytest.fixture(scope="module")
def tiny_folders(tmp_path_factory):
    """One tiny π₀ and one π₀.5 checkpoint on the franka_ik joints (8: DROID's and LIBERO's widths), copied per test."""
    root = tmp_path_factory.mktemp("openpi_configs")
    return {v: make_tiny_checkpoint(root / v, FRANKA.joint_names, variant=v) for v in ("pi0", "pi05")}


@pytest.fixture
def converted(tiny_folders, tmp_path):
    """converted(name, yaml=..., model=..., horizon=...): the folder as openpi's converter + the recipe leave it."""

    def make(name: str, pi0_yaml: str | None = None, model: str | None = None, horizon: int | None = None):
        config = OPENPI_CONFIGS.get(name)
        model = model or config.model
        folder = tmp_path / str(len(list(tmp_path.iterdir()))) / name
        shutil.copytree(tiny_folders["pi05" if model == "pi05" else "pi0"], folder)
        raw = json.loads((folder / "config.json").read_text())
        raw = {k: v for k, v in raw.items() if k != "type"}  # the converter writes no model type
        raw["action_horizon"] = horizon or (config.action_horizon if config else 10)
        (folder / "config.json").write_text(json.dumps(raw))
        asset = folder / "assets" / (config.asset_id if config else "droid")
        asset.mkdir(parents=True)
        (folder / "norm_stats.json").rename(asset / "norm_stats.json")
        (folder / "pi0.yaml").write_text(f"openpi_config: {name}\n" if pi0_yaml is None else pi0_yaml)
        return folder

    return make


def load(folder, overrides=None, robot=FRANKA):
    body = robot_body(robot) if robot else None
    return load_backend("pi0", folder, {"device": "cpu", **(overrides or {})}, robot=body)


# --- the table ------------------------------------------------------------------------------------------------


def test_every_entry_cites_its_openpi_sources():
    for config in OPENPI_CONFIGS.values():
        assert config.model in ("pi0", "pi05", "pi0_fast")
        assert config.sources["config"].startswith("src/openpi/training/config.py:")
        for fact in ("action_space", "delta_mask", "dt_s", "cameras", "asset_id", "state"):
            assert config.sources.get(fact), (config.name, fact)
        assert config.source("dt_s").startswith(f"openpi config {config.name} (")


@pytest.mark.parametrize(
    "name, mask, relative",
    [
        ("pi0_aloha_towel", make_bool_mask(6, -1, 6, -1), ALOHA_JOINTS[:6] + ALOHA_JOINTS[7:13]),
        ("pi0_aloha_tupperware", make_bool_mask(6, -1, 6, -1), ALOHA_JOINTS[:6] + ALOHA_JOINTS[7:13]),
        ("pi0_aloha_pen_uncap", make_bool_mask(6, -1, 6, -1), ALOHA_JOINTS[:6] + ALOHA_JOINTS[7:13]),
        ("pi0_aloha_sim", None, ()),
        ("pi05_droid", None, ()),
        ("pi05_full_droid_finetune", make_bool_mask(7, -1), ()),  # its action space block states it
        ("pi0_libero", make_bool_mask(6, -1), ()),
        ("pi05_libero", None, ()),
    ],
)
def test_delta_masks_and_relative_joints(name, mask, relative):
    """openpi's DeltaActions masks: ALOHA's joints relative and grippers absolute (make_bool_mask(6, -1, 6, -1)),
    none for aloha_sim, DROID velocities and pi05_libero; pi0_libero's extra delta on LIBERO's EE deltas."""
    config = lookup(name)
    assert config.delta_mask == mask
    assert config.relative_joints(ALOHA_JOINTS) == relative


def test_openpi_helpers():
    assert make_bool_mask(2, -2, 2) == (True, True, False, False, True, True)  # openpi's docstring example
    assert lookup("pi0_aloha_sim").asset_id == "lerobot/aloha_sim_transfer_cube_human"
    assert lookup("pi0_aloha_towel").dt_s == 0.02 and lookup("pi0_aloha_towel").asset_id == "trossen"
    assert openpi_configs.same_dt(0.0667, 1 / 15) and not openpi_configs.same_dt(0.1, 1 / 15)


def test_unknown_and_base_names_list_the_known_configs():
    unknown = r"pi0\.yaml: openpi_config: unknown openpi config 'pi05_drod' \(known: \[.*'pi05_droid'"
    with pytest.raises(ValueError, match=unknown):
        Pi0Settings.from_dict({"openpi_config": "pi05_drod"}, "pi0.yaml")
    with pytest.raises(ValueError, match=r"'pi05_base' is a base checkpoint.*pi05_aloha.*'pi05_libero'"):
        lookup("pi05_base")


# --- loading ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SUPPORTED)
def test_each_config_gives_its_action_space_relative_joints_and_dt(converted, name):
    model, space, chain, dt_s, slots, asset = EXPECTED[name]
    backend = load(converted(name))
    config = OPENPI_CONFIGS[name]
    out = backend.output
    if isinstance(space, str):
        assert out.space.name == space
    else:
        assert [g.type for g in out.space.groups] == space and out.space.chain == chain
    assert backend.dt_s == pytest.approx(dt_s)
    assert backend.relative_joints == ()
    assert sorted(backend.settings.cameras) == slots
    assert (out.action_dim, out.state_dim) == (config.action_dims, config.state_dims)
    sources = backend.settings_sources
    for key in ("dt_s", "action_space", "relative_joints", "cameras"):
        assert f"openpi config {name} (" in sources[key], key
    assert backend.provenance["statistics"].endswith(f"assets/{asset}/norm_stats.json")
    assert backend.provenance["origin"].startswith(f"'openpi' (openpi config {name}")


def test_pi05_libero_keeps_the_state_out_of_the_prompt(converted):
    """pi05_libero: discrete_state_input=False, so openpi tokenizes π₀'s prompt (cleaned text, then "\\n") and no
    state; the EE-delta gripper is robosuite's raw -1 open / +1 close."""
    backend = load(converted("pi05_libero"))
    assert backend.processor.prompt_state(np.zeros(8)) is None
    assert backend.provenance["state_in_prompt"].startswith("False (openpi config pi05_libero")
    ids, valid = backend.tokenizer("pick_up the cube\n")
    proc = backend.tokenizer.processor
    assert list(ids[valid]) == proc.encode("pick up the cube", add_bos=True) + proc.encode("\n")
    gripper = next(g for g in backend.output.space.groups if g.type == "gripper")
    assert gripper.source_range == (-1.0, 1.0) and gripper.invert
    droid = load(converted("pi05_droid"))
    assert droid.processor.prompt_state(np.zeros(8)) is not None  # pi05_droid keeps it


def test_agreeing_settings_are_accepted_and_fields_override(converted):
    folder = converted(
        "pi05_droid",
        "openpi_config: pi05_droid\ndt_s: 0.0667\nrelative_joints: []\n"
        "cameras: {base_0_rgb: wrist, left_wrist_0_rgb: front}\n"
        "action_space: {preset: droid_joint_velocity, gripper: {binarize_threshold: 0.3}}\n",
    )
    backend = load(folder)
    assert backend.dt_s == 0.0667 and backend.settings.cameras == {"base_0_rgb": "wrist", "left_wrist_0_rgb": "front"}
    gripper = backend.output.space.groups[1]
    assert gripper.binarize_threshold == 0.3 and gripper.invert  # the preset's invert kept
    assert backend.action_space_source.endswith(f"< {folder / 'pi0.yaml'}")


@pytest.mark.parametrize(
    "line, pattern",
    [
        ("dt_s: 0.1", r"pi0\.yaml: dt_s 0\.1 contradicts openpi config pi05_droid \(examples/droid/main\.py.*0\.06667"),
        (
            "action_space: {preset: joint_absolute}",
            r"pi0\.yaml: action_space \{'preset': 'joint_absolute'\} contradicts openpi config pi05_droid "
            r"\(src/openpi/policies/droid_policy\.py",
        ),
        (
            "relative_joints: [panda_joint1]",
            r"pi0\.yaml: relative_joints \['panda_joint1'\] contradict openpi config pi05_droid .*action space",
        ),
        (
            "cameras: {base_0_rgb: front, right_wrist_0_rgb: wrist}",
            r"pi0\.yaml: cameras map the π₀ slots \['right_wrist_0_rgb'\], which openpi config pi05_droid "
            r"\(src/openpi/policies/droid_policy\.py:47-56\) never fills",
        ),
        ("origin: lerobot", r"pi0\.yaml: origin 'lerobot' contradicts openpi config pi05_droid"),
    ],
)
def test_a_contradicting_setting_fails_naming_both(converted, line, pattern):
    folder = converted("pi05_droid", f"openpi_config: pi05_droid\n{line}\n")
    with pytest.raises(BackendError, match=pattern):
        load(folder)


def test_a_node_parameter_contradiction_names_the_node_parameters(converted):
    with pytest.raises(BackendError, match=r"node parameters: dt_s 0\.2 contradicts openpi config pi05_droid"):
        load(converted("pi05_droid"), {"dt_s": 0.2})


def test_the_checkpoint_must_be_the_configs_model_and_horizon(converted):
    with pytest.raises(BackendError, match=r"openpi config pi05_droid .* is a pi05 model but the checkpoint .* is pi0"):
        load(converted("pi05_droid", model="pi0"))
    with pytest.raises(BackendError, match=r"config\.json action_horizon 10 contradicts openpi config pi05_droid"):
        load(converted("pi05_droid", horizon=10))


def test_the_robot_must_have_the_configs_widths(converted):
    """DROID's 8 values (7 joint velocities + gripper) on the sim arm's 6 joints + gripper: refused, naming both."""
    with pytest.raises(BackendError, match=r"has 7 action / 7 state values; openpi config pi05_droid .* has 8 / 8"):
        load(converted("pi05_droid"), robot=load_robot_config("sim"))


@pytest.mark.parametrize(
    "name, reason",
    [
        ("pi0_aloha_towel", r"adapt_to_pi .*joints 1, 2, 8, 9 sign-flipped"),
        ("pi0_aloha_sim", r"adapt_to_pi"),
        ("pi0_libero", r"extra_delta_transform.*action - state\[:6\]"),
        ("pi0_fast_droid", r"π₀-FAST"),
    ],
)
def test_configs_this_backend_cannot_reproduce_are_refused(converted, name, reason):
    model = "pi0" if lookup(name).model == "pi0_fast" else None
    with pytest.raises(BackendError, match=rf"openpi_config {name}: not supported by the π₀ backend: .*{reason}"):
        load(converted(name, model=model), robot=None)


def test_aloha_delta_mask_reaches_the_output_when_a_config_is_runnable(converted, monkeypatch):
    """The load path of a joint-position config with a delta mask (ALOHA's, refused today for adapt_to_pi alone):
    arm joints relative, grippers absolute, and a contradicting relative_joints fails naming both."""
    runnable = dataclasses.replace(OPENPI_CONFIGS["pi0_aloha_towel"], unsupported="")
    monkeypatch.setitem(OPENPI_CONFIGS, "pi0_aloha_towel", runnable)
    joints = "[" + ", ".join(ALOHA_JOINTS) + "]"
    folder = converted("pi0_aloha_towel", f"openpi_config: pi0_aloha_towel\njoints: {joints}\n")
    stats = json.loads((folder / "assets/trossen/norm_stats.json").read_text())
    for feature in stats["norm_stats"].values():
        for key, values in feature.items():
            feature[key] = (values * 2)[:14]
    (folder / "assets/trossen/norm_stats.json").write_text(json.dumps(stats))
    backend = load(folder, {"cameras": {"base_0_rgb": "front"}}, robot=None)
    assert backend.relative_joints == ALOHA_JOINTS[:6] + ALOHA_JOINTS[7:13]
    assert backend.dt_s == 0.02
    modes = {j: g.mode for g in backend.output.space.groups for j in g.joints}
    assert modes["left_gripper"] == modes["right_gripper"] == "absolute" and modes["right_j5"] == "relative"
    (folder / "pi0.yaml").write_text(f"openpi_config: pi0_aloha_towel\njoints: {joints}\nrelative_joints: {joints}\n")
    with pytest.raises(BackendError, match=r"pi0\.yaml: relative_joints .* contradict openpi config pi0_aloha_towel"):
        load(folder, {"cameras": {"base_0_rgb": "front"}}, robot=None)


def test_without_the_setting_a_known_asset_id_logs_a_hint(converted, caplog):
    """assets/droid is openpi's DROID asset: loading without openpi_config says which configs use it and names the
    setting, and assumes nothing (the package's dt_s, joint positions)."""
    joints = "[" + ", ".join(FRANKA.joint_names) + "]"
    folder = converted("pi05_droid", f"joints: {joints}\ncameras: {{base_0_rgb: front}}\n")
    with caplog.at_level(logging.WARNING, logger="vla_ros.backends.pi0.checkpoint"):
        backend = load(folder, robot=None)
    hint = [r.getMessage() for r in caplog.records if "openpi_config" in r.getMessage()]
    assert hint and "assets/droid" in hint[0] and "pi05_droid" in hint[0] and "pi0_droid" not in hint[0]
    assert backend.dt_s == 0.1 and backend.output.space.name == "joint_positions"


# --- presets against openpi's and DROID's runtimes ------------------------------------------------------------


def test_aloha_joints_preset_is_the_servers_output_not_a_converted_checkpoints():
    """aloha_joints (14 absolute joints) is what an openpi server sends after AbsoluteActions + AlohaOutputs; the raw
    output of the converted ALOHA checkpoints is relative in the arm joints (and in π's joint space)."""
    from vla_ros.core.action_space import preset

    assert [g.mode for g in preset("aloha_joints").groups] == ["absolute"]
    for name in ("pi0_aloha_towel", "pi0_aloha_tupperware", "pi0_aloha_pen_uncap"):
        config = lookup(name)
        assert config.action_space is None and sum(config.delta_mask) == 12 and "adapt_to_pi" in config.unsupported


def test_droid_joint_velocity_moves_like_droids_runtime():
    """DROID's velocities are normalised: its runtime moves a joint 0.2 rad x value per 15 Hz step."""
    out = build_action_output({"preset": "droid_joint_velocity"}, FRANKA.joint_names, robot=robot_body(FRANKA))
    q = np.array(FRANKA.home)
    actions = np.zeros((2, 8))
    actions[:, 0] = 1.0
    chunk = out.to_chunk(actions, q, 0.0, 1 / 15)
    assert chunk.positions[0, 0] - q[0] == pytest.approx(0.2)

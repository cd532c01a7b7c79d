"""LeRobot π₀.5 checkpoints trained with relative actions (fixture: scripts/fixtures/make_pi05_relative_fixture.py).

The fixture folder holds what LeRobot 0.6.1 saved for a reduced π₀.5 with `use_relative_actions: true`
(config.json, the pipelines with their relative/absolute action steps, statistics) and what LeRobot's own
postprocessor made of a few normalised chunks; its weights and tokenizer are lerobot_pi05/'s, laid next to
it here. Our loader must read which dims are relative, and the backend must turn them into absolute
targets as LeRobot does (unnormalised action + raw state on those dims).
"""

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from vla_ros.backends.base import BackendError, load_backend
from vla_ros.backends.pi0.configuration import Pi0Config, read_json
from vla_ros.backends.pi0.origin import RelativeActions, read_profile
from vla_ros.core.types import Observation

FIXTURES = Path(__file__).parent / "fixtures"
FIXTURE = FIXTURES / "lerobot_pi05_relative"
JOINTS = tuple(f"j{i}" for i in range(6))
CAMERAS = {"base_0_rgb": "front", "left_wrist_0_rgb": "wrist"}


@pytest.fixture
def folder(tmp_path) -> Path:
    """The fixture folder with lerobot_pi05's weights and tokenizer laid next to it."""
    out = tmp_path / "ckpt"
    shutil.copytree(FIXTURE, out)
    for name in ("model.safetensors", "tokenizer.model"):
        (out / name).symlink_to((FIXTURES / "lerobot_pi05" / name).resolve())
    return out


def _profile(folder: Path):
    cfg = Pi0Config.from_json(read_json(folder / "config.json"))
    return read_profile(folder, cfg, "lerobot", "test")


def _edit(path: Path, change) -> None:
    raw = json.loads(path.read_text())
    change(raw)
    path.write_text(json.dumps(raw, indent=1))


def _step(pipeline: dict, name: str) -> dict:
    return next(s for s in pipeline["steps"] if s.get("registry_name") == name)


def test_loader_reads_the_relative_dims_and_their_source(folder):
    profile = _profile(folder)
    ref = np.load(folder / "chunks.npz")
    assert profile.relative_actions.mask(6) == tuple(ref["mask"]) == (True,) * 5 + (False,)
    source = profile.sources["relative_actions"]
    assert "policy_postprocessor.json" in source and "absolute_actions_processor" in source
    assert "policy_preprocessor.json" in source and "relative_actions_processor" in source
    assert profile.warnings == ()


def test_mask_matches_lerobots_build_mask():
    """Substring and case rules, no names, fewer names than dims: LeRobot's own masks (masks.json)."""
    cases = json.loads((FIXTURE / "masks.json").read_text())
    for case in cases:
        names = None if case["action_names"] is None else tuple(case["action_names"])
        relative = RelativeActions(True, tuple(case["exclude_joints"]), names)
        assert list(relative.mask(case["action_dim"])) == case["mask"], case
        # LeRobot adds state dim i to action dim i; a wider state contributes its first action_dim values
        expected = np.array(case["state"][: case["action_dim"]]) * np.array(case["mask"])
        np.testing.assert_array_equal(case["absolute_of_zeros"], expected)
    assert RelativeActions(False, ("gripper",), None).mask(3) == (False, False, False)


def test_absolute_targets_equal_lerobots_postprocessor(folder):
    """(a) unnormalise + add the raw state on the checkpoint's relative dims: LeRobot's absolute actions."""
    backend = load_backend("pi0", folder, {"device": "cpu"})
    assert backend.relative_joints == JOINTS[:5]
    assert "absolute_actions_processor" in backend.settings_sources["relative_joints"]
    ref = np.load(folder / "chunks.npz")
    for state, normalised, relative, absolute in zip(
        ref["states"], ref["normalised"], ref["relative"], ref["absolute"]
    ):
        model_out = np.zeros((normalised.shape[0], backend.cfg.action_dim))
        model_out[:, :6] = normalised
        actions = backend.processor.model_to_actions(model_out, backend.output.action_dim)
        np.testing.assert_allclose(actions, relative, atol=1e-6, rtol=0)
        chunk = backend.output.to_chunk(actions, state.astype(np.float64), 0.0, backend.dt_s)
        assert np.abs(chunk.positions - absolute).max() <= 1e-6
        # the state matters: read as absolute targets the same actions would be far off
        assert np.abs(actions - absolute).max() > 0.1


def test_predict_reproduces_lerobot_end_to_end(folder):
    ref = np.load(folder / "reference.npz")
    backend = load_backend("pi0", folder, {"device": "cpu"}, num_threads=1)
    images = {"front": ref["front"], "wrist": ref["wrist"]}
    obs = Observation(0.0, images, JOINTS, ref["state"].astype(np.float64), str(ref["task"]))
    chunk = backend.predict(obs, noise=ref["noise"])
    assert np.abs(chunk.positions - ref["actions"]).max() <= 1e-4
    assert np.abs(ref["state"][:5]).max() > 0.1  # the state added is not negligible


@pytest.mark.parametrize("named", [["j0"], [], list(JOINTS)])
def test_contradicting_relative_joints_fail_naming_both(folder, named):
    """(b) explicit settings that name other relative joints than the checkpoint's: refused, both sources named."""
    with pytest.raises(BackendError) as err:
        load_backend("pi0", folder, {"joints": list(JOINTS), "cameras": CAMERAS, "relative_joints": named})
    message = str(err.value)
    assert "node parameters" in message and "relative_joints" in message
    assert "policy_postprocessor.json" in message and "relative_actions_processor" in message
    assert str(list(JOINTS[:5])) in message


def test_agreeing_relative_joints_load(folder):
    backend = load_backend("pi0", folder, {"joints": list(JOINTS), "cameras": CAMERAS, "relative_joints": JOINTS[:5]})
    assert backend.relative_joints == JOINTS[:5]


def test_unknown_processor_step_warns_naming_it(folder, caplog):
    """(c) a step the loader does not understand is named in the profile's warnings and in the log."""
    _edit(
        folder / "policy_postprocessor.json",
        lambda raw: raw["steps"].insert(1, {"registry_name": "my_clip_actions_processor", "config": {"limit": 1}}),
    )
    _edit(
        folder / "policy_preprocessor.json",
        lambda raw: _step(raw, "relative_actions_processor")["config"].update(anchor="first_frame"),
    )
    _edit(folder / "config.json", lambda raw: raw.update(relative_action_mode="chunk"))
    profile = _profile(folder)
    assert any("my_clip_actions_processor" in w and "policy_postprocessor.json" in w for w in profile.warnings)
    assert any("anchor" in w and "relative_actions_processor" in w for w in profile.warnings)
    assert any("relative_action_mode" in w for w in profile.warnings)
    with caplog.at_level(logging.WARNING):
        backend = load_backend("pi0", folder, {"device": "cpu"})
    assert "my_clip_actions_processor" in caplog.text
    assert backend.relative_joints == JOINTS[:5]  # the steps it does understand still apply


@pytest.mark.parametrize("pre_on, post_on", [(True, False), (False, True)])
def test_pipelines_that_disagree_are_refused(folder, pre_on, post_on):
    _edit(
        folder / "policy_preprocessor.json",
        lambda raw: _step(raw, "relative_actions_processor")["config"].update(enabled=pre_on),
    )
    _edit(
        folder / "policy_postprocessor.json",
        lambda raw: _step(raw, "absolute_actions_processor")["config"].update(enabled=post_on),
    )
    with pytest.raises(ValueError, match="policy_preprocessor.json.*policy_postprocessor.json"):
        _profile(folder)


def test_relative_config_without_the_pipeline_steps_is_refused(folder):
    """config.json says relative but the pipelines never convert back (LeRobot would send relative targets)."""
    for name in ("policy_preprocessor.json", "policy_postprocessor.json"):
        _edit(
            folder / name,
            lambda raw: raw.update(
                steps=[s for s in raw["steps"] if "actions_processor" not in s.get("registry_name", "")]
            ),
        )
    with pytest.raises(ValueError, match="use_relative_actions is true"):
        _profile(folder)


def test_config_json_alone_decides_without_pipelines(folder):
    for path in folder.glob("policy_*"):
        path.unlink()
    _edit(folder / "config.json", lambda raw: raw.update(relative_exclude_joints=["wrist", "gripper"]))
    profile = _profile(folder)
    assert profile.relative_actions.mask(6) == (True, True, True, False, False, False)
    assert profile.sources["relative_actions"].endswith(
        "config.json:use_relative_actions,relative_exclude_joints,action_feature_names"
    )


def test_pipeline_without_action_names_makes_every_dim_relative_and_warns(folder):
    _edit(
        folder / "policy_preprocessor.json",
        lambda raw: _step(raw, "relative_actions_processor")["config"].update(action_names=None),
    )
    profile = _profile(folder)
    assert profile.relative_actions.mask(6) == (True,) * 6
    assert any("exclude_joints" in w and "action_names" in w for w in profile.warnings)


def test_absolute_lerobot_checkpoints_state_it():
    """lerobot_pi05 (use_relative_actions false): every dim absolute, said by the checkpoint, not a default."""
    profile = _profile(FIXTURES / "lerobot_pi05")
    assert profile.relative_actions.mask(6) == (False,) * 6
    assert "absolute_actions_processor" in profile.sources["relative_actions"]

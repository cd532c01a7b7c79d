"""π₀ backend end to end on a tiny checkpoint folder: load_backend, predict, RTC guidance, errors."""

import shutil

import numpy as np
import pytest
import yaml

from vla_ros.backends.base import BackendError, load_backend
from vla_ros.backends.pi0 import tiny
from vla_ros.core.types import Observation, PlanPrefix
from vla_ros.sim.tabletop import JOINT_NAMES


@pytest.fixture(scope="module")
def backend(pi0_checkpoint):
    return load_backend("pi0", pi0_checkpoint, {"device": "cpu"}, seed=0, num_threads=1)


def test_predict_returns_an_absolute_chunk_on_the_robot_joints(backend, make_observation):
    obs = make_observation(stamp_s=12.5)
    chunk = backend.predict(obs)
    assert backend.supports_prefix and backend.camera_names == ("front", "wrist") and backend.joint_names == JOINT_NAMES
    assert chunk.t0_s == 12.5 and chunk.dt_s == 0.1 and chunk.joint_names == JOINT_NAMES
    assert chunk.positions.shape == (backend.horizon, len(JOINT_NAMES)) and np.all(np.isfinite(chunk.positions))
    assert chunk.inference_s > 0
    # delta joints stay near the state (action std 0.05), the gripper is absolute around 0.02
    assert np.abs(chunk.positions[:, :6] - obs.joint_positions[:6]).max() < 1.0


def test_same_noise_same_chunk_and_noise_matters(backend, make_observation):
    obs = make_observation()
    rng = np.random.default_rng(3)
    noise = rng.standard_normal((backend.horizon, 32)).astype(np.float32)
    a, b = backend.predict(obs, noise=noise), backend.predict(obs, noise=noise)
    np.testing.assert_array_equal(a.positions, b.positions)
    c = backend.predict(obs, noise=rng.standard_normal((backend.horizon, 32)))
    assert not np.allclose(a.positions, c.positions)
    with pytest.raises(BackendError, match="noise must have shape"):
        backend.predict(obs, noise=np.zeros((backend.horizon, 7)))


def test_joint_order_of_the_observation_does_not_matter(backend, make_observation):
    obs = make_observation()
    order = list(reversed(range(len(JOINT_NAMES))))
    shuffled = Observation(
        obs.stamp_s, obs.images, tuple(JOINT_NAMES[i] for i in order), obs.joint_positions[order], obs.instruction
    )
    noise = np.zeros((backend.horizon, 32), np.float32)
    np.testing.assert_allclose(
        backend.predict(shuffled, noise=noise).positions, backend.predict(obs, noise=noise).positions
    )


def test_rtc_guidance_pulls_the_frozen_part_to_the_plan(backend, make_observation):
    obs = make_observation(stamp_s=2.0)
    noise = np.random.default_rng(5).standard_normal((backend.horizon, 32)).astype(np.float32)
    plan_times = obs.stamp_s + 0.1 * np.arange(1, 5)
    plan = obs.joint_positions + 0.15 * np.linspace(1, 2, 4)[:, None]
    prefix = PlanPrefix(plan_times, plan, JOINT_NAMES, committed_until_s=obs.stamp_s + 0.25)  # 2 frozen points
    free = backend.predict(obs, noise=noise)
    guided = backend.predict(obs, noise=noise, prefix=prefix)
    before = np.abs(free.positions[:2] - plan[:2]).max()
    after = np.abs(guided.positions[:2] - plan[:2]).max()
    assert after < 0.25 * before, (before, after)
    assert np.abs(guided.positions[:2] - plan[:2]).max() < 0.02


def test_missing_camera_or_joint_is_a_clear_error(backend, make_observation):
    obs = make_observation()
    with pytest.raises(BackendError, match=r"lacks \['wrist'\]"):
        backend.predict(
            Observation(
                obs.stamp_s, {"front": obs.images["front"]}, obs.joint_names, obs.joint_positions, obs.instruction
            )
        )
    with pytest.raises(BackendError, match=r"lacks joints \['gripper'\]"):
        backend.predict(
            Observation(obs.stamp_s, obs.images, obs.joint_names[:6], obs.joint_positions[:6], obs.instruction)
        )


def test_node_parameters_override_the_folder_settings_which_override_the_package(pi0_checkpoint, tmp_path):
    folder = tmp_path / "ckpt"
    shutil.copytree(pi0_checkpoint, folder)
    settings = yaml.safe_load((folder / "pi0.yaml").read_text())
    (folder / "pi0.yaml").write_text(yaml.safe_dump({**settings, "steps": 3, "max_guidance": 2.0}))
    b = load_backend("pi0", folder, {"steps": 2})
    assert (b.steps, b.max_guidance) == (2, 2.0)
    assert b.settings_sources["steps"] == "node parameters"
    assert b.settings_sources["max_guidance"] == str(folder / "pi0.yaml")
    with pytest.raises(
        BackendError, match=r"node parameters: dtype: must be one of \['float32', 'bfloat16'\], got 'float16'"
    ):
        load_backend("pi0", folder, {"dtype": "float16"})
    with pytest.raises(BackendError, match=r"node parameters: unknown Pi0Settings keys \['stepz'\]"):
        load_backend("pi0", folder, {"stepz": 2})


@pytest.mark.parametrize(
    "remove, message",
    [
        ("tokenizer.model", r"missing \['tokenizer.model or paligemma_tokenizer.model'\]"),
        ("norm_stats.json", "no normalization statistics"),
        ("model.safetensors", r"missing \['model.safetensors'\]"),
        ("config.json", r"missing \['config.json'\]"),
    ],
)
def test_incomplete_checkpoint_folders_fail_clearly(tmp_path, pi0_checkpoint, remove, message):
    folder = tmp_path / "ckpt"
    shutil.copytree(pi0_checkpoint, folder)
    (folder / remove).unlink()
    with pytest.raises(BackendError, match=message):
        load_backend("pi0", folder)


def test_missing_folder_and_bad_settings(tmp_path, pi0_checkpoint):
    with pytest.raises(BackendError, match="folder not found"):
        load_backend("pi0", tmp_path / "nowhere")
    folder = tmp_path / "ckpt"
    shutil.copytree(pi0_checkpoint, folder)
    (folder / "pi0.yaml").write_text("dt_s: -1\n")
    with pytest.raises(BackendError, match="dt_s: must be > 0, got -1"):
        load_backend("pi0", folder)
    (folder / "pi0.yaml").write_text("steps: many\n")
    with pytest.raises(BackendError, match=r"ckpt/pi0.yaml: steps: input should be a valid integer, got 'many'"):
        load_backend("pi0", folder)


def test_tiny_command_line_writes_a_loadable_folder(tmp_path, capsys):
    tiny.main(["--out", str(tmp_path / "t"), "--horizon", "4"])
    assert capsys.readouterr().out.strip() == str(tmp_path / "t")
    b = load_backend("pi0", tmp_path / "t")
    assert b.horizon == 4 and b.joint_names == JOINT_NAMES

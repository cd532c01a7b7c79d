"""π₀ I/O transforms: resize with pad, camera slots and masks, state/action padding, tokenizer."""

import numpy as np
import pytest

from vla_ros.backends.normalization import DatasetStatistics, FeatureStats
from vla_ros.backends.pi0.processing import Pi0Processor, image_input, pad_last
from vla_ros.backends.pi0.settings import Pi0Settings
from vla_ros.backends.pi0.tiny import tiny_config, tiny_tokenizer_model
from vla_ros.backends.pi0.tokenizer import PaligemmaTokenizer

JOINTS = ("j1", "j2", "grip")


@pytest.fixture
def processor():
    settings = Pi0Settings(
        joints=JOINTS, cameras={"base_0_rgb": "front", "right_wrist_0_rgb": "wrist"}, relative_joints=("j1", "j2")
    )
    stats = DatasetStatistics(  # longer than the 3 joints, as openpi stats of a padded robot are
        FeatureStats(np.array([1.0, -1.0, 0.0, 9.0]), np.array([2.0, 0.5, 1.0, 9.0]), np.ones(4, bool)),
        FeatureStats(np.array([0.1, 0.0, 0.5, 9.0]), np.array([0.1, 0.2, 0.25, 9.0]), np.ones(4, bool)),
    )
    return Pi0Processor(tiny_config(horizon=4), settings, stats)


def test_resize_with_pad_keeps_aspect_and_scales_to_unit_range():
    wide = np.full((10, 20, 3), 255, np.uint8)  # 2:1 -> 28x14 content centred vertically in 28x28
    out = image_input(wide, 28)
    assert out.shape == (3, 28, 28) and out.dtype == np.float32
    assert np.all(out[:, :7] == -1) and np.all(out[:, 21:] == -1) and np.all(out[:, 7:21] == 1)
    square = np.zeros((56, 56, 3), np.uint8)
    assert np.all(image_input(square, 28) == -1)


def test_camera_slots_and_masks(processor):
    rng = np.random.default_rng(0)
    pixels, valid = processor.images(
        {"front": rng.integers(0, 256, (40, 30, 3), dtype=np.uint8), "wrist": np.full((28, 28, 3), 255, np.uint8)}
    )
    assert pixels.shape == (3, 3, 28, 28) and valid.tolist() == [
        True,
        False,
        True,
    ]  # base, left wrist (none), right wrist
    assert np.all(pixels[1] == -1) and np.all(pixels[2] == 1)
    assert (
        pixels[0].min() >= -1 and pixels[0].max() <= 1 and np.all(pixels[0][:, :, :3] == -1)
    )  # 40x30 padded left/right


def test_state_is_normalised_then_padded_to_32(processor):
    state = processor.state_input(np.array([2.0, -1.5, 0.3]))
    assert state.shape == (32,) and state.dtype == np.float32
    np.testing.assert_allclose(state[:3], [0.5, -1.0, 0.3], atol=1e-5)
    assert np.all(state[3:] == 0)


def test_model_chunk_slices_back_to_the_joints_and_round_trips(processor):
    from vla_ros.backends.action_output import build_action_output

    q = np.array([0.2, -0.3, 0.1])
    targets = np.array([[0.25, -0.2, 0.5], [0.3, -0.1, 0.8]])
    output = build_action_output(None, JOINTS, ("j1", "j2"))  # the settings' relative_joints: relative to the state
    actions = output.to_model_actions(targets, q)
    np.testing.assert_allclose(actions[0], [0.05, 0.1, 0.5])
    model_units = processor.actions_to_model(actions)
    assert model_units.shape == (2, 32) and np.all(model_units[:, 3:] == 0)
    np.testing.assert_allclose(
        model_units[0, :3], [(0.05 - 0.1) / 0.1, (0.1 - 0.0) / 0.2, (0.5 - 0.5) / 0.25], atol=1e-4
    )
    padded = model_units + np.concatenate([np.zeros((2, 3)), np.full((2, 29), 7.0)], axis=1)  # junk in the padding
    back = processor.model_to_actions(padded, output.action_dim)
    np.testing.assert_allclose(output.to_chunk(back, q, 0.0, 0.1).positions, targets, atol=1e-5)


def test_processor_rejects_short_stats_and_unknown_slots():
    cfg = tiny_config()
    short = DatasetStatistics(*(FeatureStats(np.zeros(2), np.ones(2), np.ones(2, bool)) for _ in range(2)))
    with pytest.raises(ValueError, match=r"the 3 joints .*: state statistics: statistics too short for 3 dimensions"):
        Pi0Processor(cfg, Pi0Settings(joints=JOINTS, cameras={"base_0_rgb": "front"}), short)
    ok = DatasetStatistics(*(FeatureStats(np.zeros(3), np.ones(3), np.ones(3, bool)) for _ in range(2)))
    with pytest.raises(ValueError, match="unknown π₀ slots"):
        Pi0Processor(cfg, Pi0Settings(joints=JOINTS, cameras={"top": "front"}), ok)
    with pytest.raises(ValueError):
        pad_last(np.zeros(33), 32)


def test_tokenizer_follows_openpi_format(tmp_path):
    (tmp_path / "tok.model").write_bytes(tiny_tokenizer_model())
    tok = PaligemmaTokenizer(tmp_path / "tok.model", max_len=16)
    sp = tok.processor
    ids, valid = tok("  reach_the red cube\n")
    expected = [sp.bos_id()] + sp.encode("reach the red cube") + sp.encode("\n")
    assert ids[: len(expected)].tolist() == expected and valid.sum() == len(expected)
    assert np.all(ids[len(expected) :] == 0) and not valid[len(expected) :].any()
    assert sp.id_to_piece(int(ids[len(expected) - 1])) == "\n"
    short = PaligemmaTokenizer(tmp_path / "tok.model", max_len=4)
    ids, valid = short("put the red cube on the blue cube")
    assert ids.shape == (4,) and valid.all() and ids[0] == sp.bos_id()

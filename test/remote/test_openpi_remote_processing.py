"""openpi_remote settings and key mapping: presets, nesting, image resizing and layout, actions."""

from __future__ import annotations

import numpy as np
import pytest
from remote_helpers import sim_observation

from vla_ros.backends.base import BackendError, load_backend
from vla_ros.backends.openpi_remote.configuration import RemoteSettings
from vla_ros.backends.openpi_remote.processing import RemoteProcessor
from vla_ros.sim.tabletop import JOINT_NAMES


def processor(settings: RemoteSettings) -> RemoteProcessor:
    from vla_ros.backends.openpi_remote.backend import OpenpiRemoteBackend

    return OpenpiRemoteBackend._processor(settings, {})


def test_droid_preset_splits_arm_and_gripper_and_resizes_to_224():
    s = RemoteSettings(
        keys="droid",
        joints=JOINT_NAMES,
        cameras={"observation/exterior_image_1_left": "front", "observation/wrist_image_left": "wrist"},
    )
    obs = sim_observation(0, size=32)
    request = processor(s).request(obs)
    assert set(request) == {
        "observation/exterior_image_1_left",
        "observation/wrist_image_left",
        "observation/joint_position",
        "observation/gripper_position",
        "prompt",
    }
    assert request["observation/exterior_image_1_left"].shape == (224, 224, 3)
    assert request["observation/exterior_image_1_left"].dtype == np.uint8
    np.testing.assert_array_equal(request["observation/joint_position"], obs.joint_positions[:6])
    np.testing.assert_array_equal(request["observation/gripper_position"], obs.joint_positions[6:])
    assert request["prompt"] == obs.instruction


def test_aloha_preset_nests_images_channel_first():
    s = RemoteSettings(
        keys="aloha", joints=JOINT_NAMES, cameras={"images.cam_high": "front", "images.cam_left_wrist": "wrist"}
    )
    request = processor(s).request(sim_observation(0))
    assert set(request) == {"images", "state", "prompt"}
    assert set(request["images"]) == {"cam_high", "cam_left_wrist"}
    assert request["images"]["cam_high"].shape == (3, 224, 224)
    assert request["state"].shape == (7,)


def test_resize_keeps_aspect_with_centred_zero_padding():
    s = RemoteSettings(keys="libero", joints=JOINT_NAMES, cameras={"observation/image": "front"}, image_size=(64, 64))
    rgb = np.full((32, 64, 3), 200, np.uint8)  # wide image: padded top and bottom
    out = processor(s).image(rgb)
    assert out.shape == (64, 64, 3)
    assert np.all(out[:16] == 0) and np.all(out[48:] == 0) and np.all(out[16:48] == 200)


def test_custom_map_and_actions_take_the_first_columns():
    s = RemoteSettings(
        keys="custom", joints=JOINT_NAMES[:2], cameras={"cam": "front"}, state={"q": JOINT_NAMES[:2]}, image_size=(8, 8)
    )
    p = processor(s)
    request = p.request(sim_observation(0))
    assert request["q"].shape == (2,) and request["cam"].shape == (8, 8, 3)
    actions = np.arange(30, dtype=np.float32).reshape(5, 6)
    np.testing.assert_array_equal(p.positions({"actions": actions}), actions[:, :2])
    with pytest.raises(BackendError, match=r"must be an \(H, >=2\) array"):
        p.positions({"actions": np.zeros((5, 1))})
    with pytest.raises(BackendError, match="finite"):
        p.positions({"actions": np.full((5, 2), np.nan)})
    with pytest.raises(BackendError, match="lacks camera 'front'"):
        p.request(sim_observation(0).__class__(0.0, {}, JOINT_NAMES, np.zeros(7), "x"))


@pytest.mark.parametrize(
    "values, match",
    [
        ({"keys": "octo"}, "keys: must be one of"),
        ({"timeout_s": 0}, "timeout_s: must be > 0"),
        ({"port": 70000}, "port: must be in"),
        (
            {"keys": "droid", "joints": ["a"], "cameras": {"observation/image": "front"}},
            "not image keys of preset 'droid'",
        ),
        ({"keys": "libero", "joints": ["a"]}, "cameras: preset 'libero' needs"),
        ({"keys": "custom", "joints": ["a"], "cameras": {"x": "front"}}, "needs 'state'"),
        ({"action_space": {"preset": "eef_delta"}}, "action_space.preset: must be one of .*droid_joint_velocity"),
        ({"image_layout": "nhwc"}, "image_layout"),
    ],
)
def test_settings_errors_name_the_key_and_value(values, match):
    with pytest.raises(ValueError, match=match):
        RemoteSettings(**values)


def test_settings_layers_name_the_file_and_key(tmp_path):
    (tmp_path / "openpi_remote.yaml").write_text("hots: 1.2.3.4\n")
    with pytest.raises(BackendError, match=r"openpi_remote.yaml: unknown RemoteSettings keys \['hots'\]"):
        load_backend("openpi_remote", tmp_path)
    (tmp_path / "openpi_remote.yaml").write_text("port: 8001\ntimeout_s: fast\n")
    with pytest.raises(
        BackendError, match=r"openpi_remote.yaml: timeout_s: input should be a valid number, got 'fast'"
    ):
        load_backend("openpi_remote", tmp_path)
    with pytest.raises(BackendError, match=r"node parameters: keys: must be one of"):
        load_backend("openpi_remote", tmp_path, {"keys": "octo", "timeout_s": 1.0})
    assert RemoteSettings(host="wss://gpu.example", port=None).url == "wss://gpu.example"
    assert RemoteSettings(host="gpu", port=9000, tls=True).url == "wss://gpu:9000"

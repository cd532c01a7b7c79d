import numpy as np
import pytest

from vla_ros.core.observation import ObservationBuffer, ObservationError

IMG = np.zeros((4, 4, 3), np.uint8)


def make():
    return ObservationBuffer(("front",), ("j1", "j2"))


def test_joint_state_matched_by_name_in_any_order_extra_joints_ignored():
    buf = make()
    buf.add_image("front", 1.0, IMG)
    buf.add_joint_state(1.0, ["extra", "j2", "j1"], [9.0, 2.0, 1.0])
    obs = buf.snapshot(1.1, 0.5, "go")
    np.testing.assert_array_equal(obs.joint_positions, [1.0, 2.0])
    assert obs.stamp_s == 1.0 and obs.instruction == "go" and obs.image_stamps_s == {"front": 1.0}


def test_missing_joint_is_named():
    with pytest.raises(ObservationError, match=r"lacks joints \['j2'\]"):
        make().add_joint_state(0.0, ["j1"], [0.0])


def test_non_finite_joint_state_rejected():
    with pytest.raises(ObservationError, match="non-finite"):
        make().add_joint_state(0.0, ["j1", "j2"], [0.0, float("nan")])


def test_stale_and_missing_inputs_are_refused_with_reasons():
    buf = make()
    with pytest.raises(ObservationError, match="no joint state"):
        buf.snapshot(0.0, 0.5, "go")
    buf.add_joint_state(0.0, ["j1", "j2"], [0.0, 0.0])
    with pytest.raises(ObservationError, match="no image from camera 'front'"):
        buf.snapshot(0.0, 0.5, "go")
    buf.add_image("front", 0.0, IMG)
    with pytest.raises(ObservationError, match=r"camera 'front' image is 0.700 s old.*joint state is 0.700 s old"):
        buf.snapshot(0.7, 0.5, "go")


def test_unknown_camera_rejected():
    with pytest.raises(ObservationError, match="unknown camera 'side'"):
        make().add_image("side", 0.0, IMG)


def test_wait_for_frames_needs_a_new_frame_from_every_camera():
    import threading

    buf = ObservationBuffer(("front", "wrist"), ("j1",))
    buf.add_image("front", 1.0, IMG)
    buf.add_image("wrist", 1.0, IMG)
    assert buf.wait_for_frames(0.5, timeout_s=0.01)
    assert not buf.wait_for_frames(1.0, timeout_s=0.05)
    timer = threading.Timer(0.05, lambda: (buf.add_image("front", 2.0, IMG), buf.add_image("wrist", 2.0, IMG)))
    timer.start()
    assert buf.wait_for_frames(1.0, timeout_s=5.0)
    timer.join()

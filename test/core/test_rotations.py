import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.spatial.transform import Rotation

from vla_ros.core import rotations
from vla_ros.core.rotations import ROTATION_FORMATS

quaternions = arrays(np.float64, 4, elements=st.floats(-1.0, 1.0)).filter(lambda q: np.linalg.norm(q) > 0.1)


def scipy_values(rot: Rotation, fmt: str) -> np.ndarray:
    """The format computed from scipy directly (the reference)."""
    if fmt == "euler_xyz":
        return rot.as_euler("xyz")
    if fmt == "axis_angle":
        return rot.as_rotvec()
    if fmt == "quat_xyzw":
        return rot.as_quat(canonical=True)
    if fmt == "quat_wxyz":
        x, y, z, w = rot.as_quat(canonical=True)
        return np.array([w, x, y, z])
    m = rot.as_matrix()
    return np.concatenate([m[:, 0], m[:, 1]])


@pytest.mark.filterwarnings("ignore:Gimbal lock")
@settings(max_examples=40, deadline=None)
@given(quat=quaternions, fmt=st.sampled_from(ROTATION_FORMATS))
def test_each_format_matches_scipy_both_ways(quat, fmt):
    rot = Rotation.from_quat(quat)
    values = rotations.from_rotation(rot, fmt)
    assert values.shape == (rotations.ROTATION_DIMS[fmt],)
    assert np.allclose(values, scipy_values(rot, fmt), atol=1e-12)
    assert np.allclose(rotations.to_matrix(scipy_values(rot, fmt), fmt), rot.as_matrix(), atol=1e-9)
    # via a matrix: the same rotation (angles are not unique at gimbal lock or at pi)
    assert np.allclose(
        rotations.to_matrix(rotations.from_matrix(rot.as_matrix(), fmt), fmt), rot.as_matrix(), atol=1e-6
    )


@pytest.mark.filterwarnings("ignore:Gimbal lock")
@settings(max_examples=30, deadline=None)
@given(quat=quaternions, source=st.sampled_from(ROTATION_FORMATS), target=st.sampled_from(ROTATION_FORMATS))
def test_convert_between_any_two_formats_keeps_the_rotation(quat, source, target):
    rot = Rotation.from_quat(quat)
    converted = rotations.convert(scipy_values(rot, source), source, target)
    assert np.allclose(rotations.to_matrix(converted, target), rot.as_matrix(), atol=1e-6)


def test_euler_xyz_is_extrinsic_roll_pitch_yaw():
    roll, pitch, yaw = 0.1, -0.2, 0.3
    rx = Rotation.from_rotvec([roll, 0, 0]).as_matrix()
    ry = Rotation.from_rotvec([0, pitch, 0]).as_matrix()
    rz = Rotation.from_rotvec([0, 0, yaw]).as_matrix()
    assert np.allclose(rotations.to_matrix([roll, pitch, yaw], "euler_xyz"), rz @ ry @ rx)


def test_unnormalised_quaternions_and_6d_are_normalised():
    assert np.allclose(rotations.to_matrix([0, 0, 0, 5.0], "quat_xyzw"), np.eye(3))
    assert np.allclose(rotations.to_matrix([2.0, 0, 0, 0], "quat_wxyz"), np.eye(3))
    assert np.allclose(rotations.to_matrix([3.0, 0, 0, 0.5, 2.0, 0], "rot6d"), np.eye(3))


def test_batches_keep_their_leading_shape():
    values = Rotation.random(6, random_state=0).as_rotvec().reshape(2, 3, 3)
    assert rotations.to_matrix(values, "axis_angle").shape == (2, 3, 3, 3)


@pytest.mark.parametrize(
    "values, fmt, problem",
    [
        ([0, 0, 0, 0], "quat_xyzw", "zero norm"),
        ([0, 0, 0, 0], "quat_wxyz", "zero norm"),
        ([np.nan, 0, 0], "euler_xyz", "non-finite"),
        ([np.inf, 0, 0], "axis_angle", "non-finite"),
        ([1, 0, 0, 2, 0, 0], "rot6d", "parallel"),
        ([0, 0, 0, 0, 1, 0], "rot6d", "zero norm"),
        ([0, 0, 1], "quat_xyzw", "needs 4 values"),
        ([0, 0, 1], "euler_zyx", "unknown rotation format"),
    ],
)
def test_bad_values_raise_naming_the_value(values, fmt, problem):
    with pytest.raises(ValueError, match=problem):
        rotations.to_matrix(values, fmt)


def test_valid_rows_flags_exactly_the_unusable_rows():
    quats = np.array([[0, 0, 0, 1.0], [0, 0, 0, 0], [np.nan, 0, 0, 1], [1, 0, 0, 0]])
    assert rotations.valid_rows(quats, "quat_xyzw").tolist() == [True, False, False, True]
    six = np.array([[1, 0, 0, 0, 1, 0.0], [1, 0, 0, 3, 0, 0]])
    assert rotations.valid_rows(six, "rot6d").tolist() == [True, False]

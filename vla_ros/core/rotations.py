"""Rotation formats of action and state spaces, converted through `scipy.spatial.transform.Rotation`.

Formats (last axis of an array; any leading batch shape):
- `euler_xyz` (3): roll, pitch, yaw in radians about the fixed base axes x, then y, then z
  (extrinsic, scipy "xyz"; R = Rz(yaw) Ry(pitch) Rx(roll); Bridge's and transforms3d's "sxyz").
- `axis_angle` (3): rotation vector, unit axis times angle in radians (robosuite / LIBERO).
- `quat_xyzw` (4): scipy / ROS order; `quat_wxyz` (4): scalar first. Normalised on input.
- `rot6d` (6): the first two columns of the rotation matrix, column after column
  (r00, r10, r20, r01, r11, r21); orthonormalised by Gram-Schmidt on input.
Non-finite values, zero-norm quaternions and degenerate 6D values raise ValueError naming the value.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

ROTATION_DIMS = {"euler_xyz": 3, "axis_angle": 3, "quat_xyzw": 4, "quat_wxyz": 4, "rot6d": 6}
ROTATION_FORMATS = tuple(ROTATION_DIMS)
_MIN_NORM = 1e-9


def check_format(fmt: str) -> int:
    """The number of values of rotation format `fmt` (ValueError listing the known formats)."""
    if fmt not in ROTATION_DIMS:
        raise ValueError(f"unknown rotation format {fmt!r} (known: {list(ROTATION_FORMATS)})")
    return ROTATION_DIMS[fmt]


def to_rotation(values: np.ndarray, fmt: str) -> Rotation:
    """scipy Rotation from values (..., k) in format `fmt` (k = ROTATION_DIMS[fmt])."""
    values = _checked(values, fmt)
    if fmt == "euler_xyz":
        return Rotation.from_euler("xyz", values)
    if fmt == "axis_angle":
        return Rotation.from_rotvec(values)
    if fmt in ("quat_xyzw", "quat_wxyz"):
        norms = np.linalg.norm(values, axis=-1)
        if np.any(norms < _MIN_NORM):
            raise ValueError(f"{fmt}: quaternion of zero norm: {_show(values)}")
        return Rotation.from_quat(values, scalar_first=fmt == "quat_wxyz")
    return Rotation.from_matrix(rot6d_to_matrix(values))


def from_rotation(rotation: Rotation, fmt: str) -> np.ndarray:
    """Values (..., k) in format `fmt` of a scipy Rotation (quaternions with w >= 0)."""
    check_format(fmt)
    if fmt == "euler_xyz":
        return rotation.as_euler("xyz")
    if fmt == "axis_angle":
        return rotation.as_rotvec()
    if fmt in ("quat_xyzw", "quat_wxyz"):
        return rotation.as_quat(canonical=True, scalar_first=fmt == "quat_wxyz")
    return matrix_to_rot6d(rotation.as_matrix())


def to_matrix(values: np.ndarray, fmt: str) -> np.ndarray:
    """Rotation matrices (..., 3, 3) from values (..., k) in format `fmt`."""
    return to_rotation(values, fmt).as_matrix()


def from_matrix(matrix: np.ndarray, fmt: str) -> np.ndarray:
    """Values (..., k) in format `fmt` from rotation matrices (..., 3, 3)."""
    matrix = np.asarray(matrix, dtype=float)
    if not np.all(np.isfinite(matrix)):
        raise ValueError(f"rotation matrix has non-finite values: {_show(matrix)}")
    return from_rotation(Rotation.from_matrix(matrix), fmt)


def convert(values: np.ndarray, source: str, target: str) -> np.ndarray:
    """Values (..., k_source) in format `source` as (..., k_target) in format `target`."""
    return from_rotation(to_rotation(values, source), target)


def valid_rows(values: np.ndarray, fmt: str) -> np.ndarray:
    """(H,) bool: which rows of values (H, k) are usable rotations (finite; quaternions and 6D non-degenerate)."""
    values = np.asarray(values, dtype=float)
    ok = np.isfinite(values).all(axis=-1)
    if fmt in ("quat_xyzw", "quat_wxyz"):
        ok &= np.linalg.norm(np.where(np.isfinite(values), values, 0.0), axis=-1) >= _MIN_NORM
    elif fmt == "rot6d":
        safe = np.where(np.isfinite(values), values, 0.0)
        a, b = safe[..., :3], safe[..., 3:]
        a_norm = np.linalg.norm(a, axis=-1)
        ok &= (a_norm >= _MIN_NORM) & (np.linalg.norm(np.cross(a, b), axis=-1) >= _MIN_NORM * a_norm)  # |b_perp| >= eps
    return ok


def matrix_to_rot6d(matrix: np.ndarray) -> np.ndarray:
    """(..., 6): the first two columns of (..., 3, 3), column after column."""
    matrix = np.asarray(matrix, dtype=float)
    return np.concatenate([matrix[..., :, 0], matrix[..., :, 1]], axis=-1)


def rot6d_to_matrix(values: np.ndarray) -> np.ndarray:
    """(..., 3, 3) from 6D values (..., 6) by Gram-Schmidt (ValueError if a column is zero or both are parallel)."""
    values = _checked(values, "rot6d")
    a, b = values[..., :3], values[..., 3:]
    a_norm = np.linalg.norm(a, axis=-1, keepdims=True)
    if np.any(a_norm < _MIN_NORM):
        raise ValueError(f"rot6d: first column of zero norm: {_show(values)}")
    x = a / a_norm
    b = b - np.sum(x * b, axis=-1, keepdims=True) * x
    b_norm = np.linalg.norm(b, axis=-1, keepdims=True)
    if np.any(b_norm < _MIN_NORM):
        raise ValueError(f"rot6d: columns zero or parallel: {_show(values)}")
    y = b / b_norm
    return np.stack([x, y, np.cross(x, y)], axis=-1)


def _checked(values: np.ndarray, fmt: str) -> np.ndarray:
    k = check_format(fmt)
    values = np.asarray(values, dtype=float)
    if values.ndim == 0 or values.shape[-1] != k:
        raise ValueError(f"{fmt}: needs {k} values on the last axis, got shape {values.shape}")
    if not np.all(np.isfinite(values)):
        raise ValueError(f"{fmt}: non-finite values: {_show(values)}")
    return values


def _show(values: np.ndarray) -> str:
    flat = np.asarray(values).reshape(-1, np.asarray(values).shape[-1] if np.ndim(values) else 1)
    return str(np.round(flat[:4], 6).tolist()) + (" ..." if len(flat) > 4 else "")

"""Inverse kinematics of a chunk of end-effector poses: differential IK with limits, one point after another.

The problem is pink's (pin-pink) differential IK with one frame task, a configuration limit and a
velocity limit: at each iteration, minimise over a joint step dq

    |W (J dq - e)|^2 + damping |dq|^2   subject to   lower <= dq <= upper

with J the frame Jacobian (6, n) in the base-aligned frame at the EE (pinocchio
LOCAL_WORLD_ALIGNED), e = (target position - position, log3(R_target R^T)) the pose error,
W = diag(1, 1, 1, w, w, w) (w = `orientation_weight`, metres per radian) and the bounds the
intersection of the joint position limits and the velocity budget of the point: every joint
stays within max_velocity * dt_s of the previous point's solution, so consecutive targets can
never jump. The box-constrained QP is solved with daqp (a QP solver pink uses through qpsolvers),
called directly; the unconstrained (Cholesky) solution is used when it is inside the bounds.

Why not pink itself: `pink.solve_ik` costs ~0.4 ms per call on this CPU (task and limit objects,
qpsolvers dispatch, in Python), i.e. >= 20 ms for a 50-point chunk against a 2 ms budget; the
same QP with pinocchio's C++ Jacobians and daqp costs ~25 us per iteration (benchmark:
`python -m vla_ros.benchmarks.ik_latency`).

Each point is warm-started from the previous point's solution (the first from `start_q`) and
iterated at most `max_iterations` times until the residual is within tolerance (position <=
1 mm, rotation <= 0.01 rad by default). A point that does not converge (out of reach, against a
limit, or farther than the velocity budget allows) or that is not finite truncates the chunk:
the solved prefix is returned with the reason.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from vla_ros.core.kinematics import KinematicsError, UrdfKinematics
from vla_ros.core.types import JointLimits


@dataclass(frozen=True)
class IkSettings:
    """Tolerances (metres, radians), iteration budget per point, and the QP's weights."""

    position_tolerance_m: float = 1e-3
    rotation_tolerance_rad: float = 0.01
    max_iterations: int = 20
    damping: float = 1e-6
    orientation_weight: float = 1.0  # metres per radian in the cost; 0 = position only (rotation ignored)

    def __post_init__(self):
        for key in ("position_tolerance_m", "rotation_tolerance_rad", "damping"):
            value = getattr(self, key)
            if not (isinstance(value, (int, float)) and np.isfinite(value) and value > 0):
                raise ValueError(f"{key}: must be a number > 0, got {value!r}")
        if not (isinstance(self.max_iterations, int) and self.max_iterations >= 1):
            raise ValueError(f"max_iterations: must be an integer >= 1, got {self.max_iterations!r}")
        weight = self.orientation_weight
        if not (
            isinstance(weight, (int, float)) and not isinstance(weight, bool) and np.isfinite(weight) and weight >= 0
        ):
            raise ValueError(f"orientation_weight: must be >= 0, got {self.orientation_weight!r}")


@dataclass(frozen=True)
class IkResult:
    """positions: (K, n) joint solutions of the first K = valid_count points (K <= H), in `joints` order.

    reason: why point K was not solved ("" when all H were). position_error_m / rotation_error_rad:
    (K,) residuals of the solved points.
    """

    positions: np.ndarray
    valid_count: int
    reason: str
    position_error_m: np.ndarray
    rotation_error_rad: np.ndarray


class DifferentialIk:
    """IK of the frame `ee_link` over `joints` (a subset of the kinematics' joints; the others stay neutral).

    Targets are in the URDF's root frame. limits: position and velocity limits of (at least) `joints`
    (the robot config's, else the URDF's).
    """

    def __init__(
        self,
        kinematics: UrdfKinematics,
        ee_link: str,
        joints: tuple[str, ...],
        limits: JointLimits | None = None,
        settings: IkSettings = IkSettings(),
    ):
        import daqp
        import pinocchio
        from scipy.linalg.lapack import dposv

        self._pin, self._daqp, self._posv = pinocchio, daqp, dposv
        self.kinematics = kinematics
        self.settings = settings
        self.joints = tuple(joints)
        model = kinematics.model
        self.model, self.data = model, model.createData()
        self.frame_id = kinematics.frame_id(ee_link)
        unknown = [j for j in self.joints if j not in kinematics.joint_names]
        if unknown or not self.joints:
            raise KinematicsError(
                f"{kinematics.path}: IK joints {list(self.joints)} must be a non-empty subset of "
                f"{list(kinematics.joint_names)}"
            )
        ids = [model.getJointId(j) for j in self.joints]
        if any(model.joints[i].nq != 1 or model.joints[i].nv != 1 for i in ids):
            raise KinematicsError(
                f"{kinematics.path}: IK supports 1-DOF revolute/prismatic joints only, got {list(self.joints)}"
            )
        self._q_idx = np.array([model.joints[i].idx_q for i in ids])
        v_idx = [model.joints[i].idx_v for i in ids]
        contiguous = v_idx == list(range(v_idx[0], v_idx[0] + len(v_idx)))
        self._v_idx = (
            slice(v_idx[0], v_idx[0] + len(v_idx)) if contiguous else np.array(v_idx)
        )  # a slice copies nothing
        limits = limits if limits is not None else kinematics.joint_limits()
        missing = [j for j in self.joints if j not in limits.names]
        if missing:
            raise KinematicsError(f"joint limits lack the IK joints {missing}")
        order = [limits.names.index(j) for j in self.joints]
        self.min_position = limits.min_position[order].copy()
        self.max_position = limits.max_position[order].copy()
        self.max_velocity = limits.max_velocity[order].copy()
        self._q_full = pinocchio.neutral(model)
        n = len(self.joints)
        w = settings.orientation_weight
        self._weights_sq = np.array([1.0, 1.0, 1.0, w * w, w * w, w * w])
        self._weighted = w != 1.0
        self._regulariser = settings.damping * np.eye(n)
        self._no_constraints = np.zeros((0, n))
        self._sense = np.zeros(n, dtype=np.int32)

    def forward(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Position (3,) and rotation (3, 3) of the EE in the root frame at IK joints q (n,)."""
        self._q_full[self._q_idx] = q
        self._pin.framesForwardKinematics(self.model, self.data, self._q_full)
        placement = self.data.oMf[self.frame_id]
        return placement.translation.copy(), placement.rotation.copy()

    def solve(self, positions: np.ndarray, rotations: np.ndarray, start_q: np.ndarray, dt_s: float) -> IkResult:
        """Joint solutions of H targets: positions (H, 3) metres, rotations (H, 3, 3), root frame.

        start_q: (n,) joint positions the first point is reached from; dt_s: seconds between points
        (also from start_q to the first), the velocity budget of each point.
        """
        positions = np.asarray(positions, dtype=float)
        rotations = np.asarray(rotations, dtype=float)
        horizon = positions.shape[0]
        if positions.shape != (horizon, 3) or rotations.shape != (horizon, 3, 3):
            raise ValueError(
                f"IK targets must be positions (H, 3) and rotations (H, 3, 3), "
                f"got {positions.shape} and {rotations.shape}"
            )
        if not dt_s > 0:
            raise ValueError(f"IK dt_s must be > 0, got {dt_s}")
        q = np.asarray(start_q, dtype=float).copy()
        if q.shape != self._q_idx.shape or not np.all(np.isfinite(q)):
            raise ValueError(f"IK start_q must be {self._q_idx.size} finite values, got {np.asarray(start_q).tolist()}")
        step_budget = self.max_velocity * dt_s
        solutions = np.empty((horizon, q.size))
        errors = np.empty((horizon, 2))
        finite = np.isfinite(positions).all(axis=1) & np.isfinite(rotations).all(axis=(1, 2))
        self._q_full[self._q_idx] = q
        jacobian = self._pin.computeFrameJacobian(
            self.model, self.data, self._q_full, self.frame_id, self._pin.LOCAL_WORLD_ALIGNED
        )
        for i in range(horizon):
            if not finite[i]:
                return self._result(solutions, errors, i, f"point {i}: target not finite")
            ok, q, pos_err, rot_err, jacobian = self._solve_point(positions[i], rotations[i], q, step_budget, jacobian)
            if not ok:
                return self._result(
                    solutions,
                    errors,
                    i,
                    f"point {i}: unreachable (residual {pos_err * 1e3:.2f} mm, {rot_err:.4f} rad after "
                    f"{self.settings.max_iterations} iterations within the position and velocity limits)",
                )
            solutions[i], errors[i] = q, (pos_err, rot_err)
        return self._result(solutions, errors, horizon, "")

    def _solve_point(self, target_p, target_r, q_prev, step_budget, jacobian):
        """Iterate from q_prev towards one target.

        jacobian: (6, nv) at q_prev, computed with the frame placed at q_prev. Returns (converged, q,
        position error m, rotation error rad, the Jacobian at q with the frame placed there).
        """
        pin, settings, model, data, frame = self._pin, self.settings, self.model, self.data, self.frame_id
        tol_p = settings.position_tolerance_m
        tol_r = settings.rotation_tolerance_rad if settings.orientation_weight > 0 else math.inf
        q = q_prev
        error = np.empty(6)
        for iteration in range(settings.max_iterations + 1):
            placement = data.oMf[frame]
            error[:3] = target_p - placement.translation
            error[3:] = pin.log3(target_r @ placement.rotation.T)
            ex, ey, ez, rx, ry, rz = error.tolist()
            pos_err, rot_err = math.sqrt(ex * ex + ey * ey + ez * ez), math.sqrt(rx * rx + ry * ry + rz * rz)
            if pos_err <= tol_p and rot_err <= tol_r:
                return True, q, pos_err, rot_err, jacobian
            if iteration == settings.max_iterations:
                break
            j = jacobian[:, self._v_idx]
            jw = j.T * self._weights_sq if self._weighted else j.T
            hessian = jw @ j + self._regulariser
            gradient = jw @ error
            _, step, info = self._posv(hessian, gradient)  # Cholesky solve (hessian is positive definite)
            q_next = q + step
            outside = (np.abs(q_next - q_prev) > step_budget).any()
            if info != 0 or outside or (q_next < self.min_position).any() or (q_next > self.max_position).any():
                # bounds on this step: the position limits and the velocity budget of the point; 0 is always
                # feasible (a start outside the limits may stay there)
                lower = np.minimum(np.maximum(self.min_position, q_prev - step_budget) - q, 0.0)
                upper = np.maximum(np.minimum(self.max_position, q_prev + step_budget) - q, 0.0)
                step, _, flag, _ = self._daqp.solve(hessian, -gradient, self._no_constraints, upper, lower, self._sense)
                if flag < 1:
                    break
                q_next = q + step
            q = q_next
            self._q_full[self._q_idx] = q
            # the Jacobian also places the frame: the residual check and the next step (or point) share it
            jacobian = pin.computeFrameJacobian(model, data, self._q_full, frame, pin.LOCAL_WORLD_ALIGNED)
        return False, q_prev, pos_err, rot_err, jacobian

    @staticmethod
    def _result(solutions, errors, count, reason) -> IkResult:
        return IkResult(solutions[:count].copy(), count, reason, errors[:count, 0].copy(), errors[:count, 1].copy())

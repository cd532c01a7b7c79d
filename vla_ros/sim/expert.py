"""Scripted expert for the demo tasks: a Cartesian path to the target cube, solved by damped IK.

The expert is closed-loop: from the current joint state it plans the tool path (up and over to
a point above the target, then down to it) at a fixed speed, and returns the next `horizon`
joint targets spaced `dt_s` apart. That is exactly an action chunk.

The tool orientation is fully specified (pointing down, its x axis pointing back at the base as
in the home pose), so the 6-DOF arm has no redundant direction: the joint targets are a function of the
state, which is what a policy can learn from them.
"""

from __future__ import annotations

import mujoco
import numpy as np

from vla_ros.sim.tabletop import GRIPPER_OPEN_M, TabletopSim

APPROACH_HEIGHT_M = 0.10  # above the touch point, where the descent starts
SPEED_M_S = 0.30
DOWN = np.array([0.0, 0.0, -1.0])


class ScriptedExpert:
    """Plans joint-space action chunks (horizon, 7) for `sim.task` from the sim's current state."""

    def __init__(self, sim: TabletopSim, dt_s: float = 0.1, horizon: int = 8, target: str | None = None):
        """`target`: cube colour to reach; default the current task's."""
        self.sim = sim
        self.target = target
        self.dt_s = dt_s
        self.horizon = horizon
        self._scratch = mujoco.MjData(sim.model)

    def tool_path(self, start: np.ndarray) -> list[np.ndarray]:
        """Polyline of tool positions (metres) from `start` to the target's touch point."""
        goal = self.sim.touch_point(self.target or self.sim.task.target)
        above = goal + np.array([0.0, 0.0, APPROACH_HEIGHT_M])
        horizontal = np.linalg.norm((start - goal)[:2])
        if horizontal < 0.015:  # already over the cube: go straight down
            return [start, goal]
        lift = start.copy()
        lift[2] = max(start[2], above[2])
        return [start, lift, above, goal]

    def chunk(self) -> np.ndarray:
        """Next `horizon` joint targets (horizon, 7), the first one `dt_s` from now."""
        q = self.sim.joint_positions()
        path = self.tool_path(self.sim.tcp_position())
        step = SPEED_M_S * self.dt_s
        targets = [_point_along(path, step * (i + 1)) for i in range(self.horizon)]
        out = np.empty((self.horizon, 7))
        q_arm = q[:6]
        for i, p in enumerate(targets):
            q_arm = self.inverse_kinematics(p, q_arm)
            out[i, :6] = q_arm
            out[i, 6] = GRIPPER_OPEN_M
        return out

    def inverse_kinematics(self, target: np.ndarray, q_seed: np.ndarray, iterations: int = 30) -> np.ndarray:
        """Arm joints (6,) putting the tool at `target` in `tool_orientation(target)`; damped least squares."""
        d, m = self._scratch, self.sim.model
        d.qpos[:] = self.sim.data.qpos
        arm_qpos = np.array([m.joint(i).qposadr[0] for i in range(6)])
        desired = tool_orientation(target)
        q = q_seed.copy()
        for _ in range(iterations):
            d.qpos[arm_qpos] = q
            mujoco.mj_kinematics(m, d)
            mujoco.mj_comPos(m, d)
            site = self.sim._tcp
            pos_err = target - d.site_xpos[site]
            current = d.site_xmat[site].reshape(3, 3)
            rot_err = 0.5 * sum(np.cross(current[:, i], desired[:, i]) for i in range(3))
            err = np.concatenate([pos_err, 0.5 * rot_err])
            if np.linalg.norm(err) < 1e-4:
                break
            jacp = np.zeros((3, m.nv))
            jacr = np.zeros((3, m.nv))
            mujoco.mj_jacSite(m, d, jacp, jacr, site)
            jac = np.vstack([jacp[:, :6], 0.5 * jacr[:, :6]])
            dq = jac.T @ np.linalg.solve(jac @ jac.T + 1e-4 * np.eye(6), err)
            q = q + np.clip(dq, -0.2, 0.2)
        lo, hi = m.jnt_range[:6].T
        return np.clip(q, lo, hi)


def tool_orientation(position: np.ndarray) -> np.ndarray:
    """Rotation (3, 3), columns = tool axes: z down, x horizontal and pointing back at the base (as at home)."""
    radial = np.array([position[0], position[1], 0.0])
    x = -radial / max(np.linalg.norm(radial), 1e-6)
    z = DOWN
    return np.column_stack([x, np.cross(z, x), z])


def _point_along(path: list[np.ndarray], distance: float) -> np.ndarray:
    """The point `distance` metres along a polyline (its end if the polyline is shorter)."""
    for a, b in zip(path[:-1], path[1:]):
        seg = np.linalg.norm(b - a)
        if distance <= seg and seg > 0:
            return a + (b - a) * (distance / seg)
        distance -= seg
    return path[-1].copy()

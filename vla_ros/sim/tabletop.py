"""The demo world: a MuJoCo 6-DOF arm with a gripper, two cubes and language-conditioned tasks.

Plain Python + MuJoCo, no ROS: the `sim_robot` node, the scripted expert, the demonstration
recorder and the tests all drive this class. Units: metres, radians, seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import mujoco
import numpy as np

from vla_ros.sim.rendering import OffscreenCameras

SCENE_XML = Path(__file__).with_name("assets") / "tabletop_arm.xml"

JOINT_NAMES = ("shoulder_pan", "shoulder_lift", "elbow", "wrist_1", "wrist_2", "wrist_3", "gripper")
ARM_JOINTS = JOINT_NAMES[:6]
CAMERAS = ("front", "wrist")
CUBES = ("red", "blue")
GRIPPER_OPEN_M = 0.03

# Where cubes are spawned (x, y ranges, metres) and how far apart they must be.
CUBE_X_RANGE = (0.32, 0.52)
CUBE_Y_RANGE = (-0.22, 0.22)
CUBE_MIN_SEPARATION_M = 0.14
CUBE_HALF_SIZE_M = 0.025

# A cube counts as reached when the tool centre point is within this distance of the point
# just above its top face (the "touch point").
TOUCH_HEIGHT_M = 0.03
REACH_TOLERANCE_M = 0.035

# Joint configuration the arm starts near: gripper above the workspace, pointing down.
HOME_Q = np.array([0.0, 0.15, 1.75, 1.24, 0.0, 0.0, GRIPPER_OPEN_M])


@dataclass(frozen=True)
class Task:
    """One language-conditioned task: reach the cube of `target` colour."""

    target: str

    @property
    def instruction(self) -> str:
        return f"reach the {self.target} cube"


TASKS = tuple(Task(c) for c in CUBES)


def task_for_episode(seed: int) -> Task:
    """The task an evaluation episode with this seed runs (alternates the colours)."""
    return TASKS[seed % len(TASKS)]


class TabletopSim:
    """MuJoCo arm + two cubes. Commands are joint position targets, shape (7,) in JOINT_NAMES order."""

    def __init__(self, image_size: tuple[int, int] = (128, 128)):
        self.model = mujoco.MjModel.from_xml_path(str(SCENE_XML))
        self.data = mujoco.MjData(self.model)
        self.image_size = image_size
        self._cameras = OffscreenCameras(self.model, self.data, image_size)
        self._qpos_idx = np.array([self.model.joint(n).qposadr[0] for n in JOINT_NAMES])
        self._dof_idx = np.array([self.model.joint(n).dofadr[0] for n in JOINT_NAMES])
        self._tcp = self.model.site("tcp").id
        self._cube_qpos = {c: self.model.joint(f"cube_{c}_joint").qposadr[0] for c in CUBES}
        self.task = TASKS[0]
        self.outcome = "running"
        self.reset(seed=0)

    # --- episode -------------------------------------------------------------------------
    def reset(self, seed: int, task: Task | None = None) -> Task:
        """Randomise the cubes and the start pose from `seed`; return the episode's task."""
        rng = np.random.default_rng(seed)
        mujoco.mj_resetData(self.model, self.data)
        self.task = task if task is not None else task_for_episode(seed)
        positions = self._sample_cube_positions(rng)
        for colour, xy in zip(CUBES, positions):
            adr = self._cube_qpos[colour]
            self.data.qpos[adr : adr + 7] = [xy[0], xy[1], CUBE_HALF_SIZE_M, 1, 0, 0, 0]
        q0 = HOME_Q.copy()
        q0[:6] += rng.uniform(-0.08, 0.08, size=6)
        self.data.qpos[self._qpos_idx] = q0
        self.data.qpos[self.model.joint("gripper_mimic").qposadr[0]] = q0[6]
        self.data.ctrl[:] = q0
        mujoco.mj_forward(self.model, self.data)
        self.outcome = "running"
        return self.task

    @staticmethod
    def _sample_cube_positions(rng: np.random.Generator) -> list[np.ndarray]:
        for _ in range(1000):
            a, b = (rng.uniform((CUBE_X_RANGE[0], CUBE_Y_RANGE[0]), (CUBE_X_RANGE[1], CUBE_Y_RANGE[1])) for _ in CUBES)
            if np.linalg.norm(a - b) >= CUBE_MIN_SEPARATION_M:
                return [a, b]
        raise RuntimeError("could not place the cubes apart")  # unreachable with these ranges

    # --- stepping ------------------------------------------------------------------------
    def set_command(self, q_target: np.ndarray) -> None:
        """Joint position targets (7,), radians (gripper: metres), clipped to the actuator ranges."""
        q = np.asarray(q_target, dtype=float)
        if q.shape != (len(JOINT_NAMES),) or not np.all(np.isfinite(q)):
            raise ValueError(f"command must be 7 finite numbers, got {q!r}")
        lo, hi = self.model.jnt_range[[self.model.joint(n).id for n in JOINT_NAMES]].T
        self.data.ctrl[:] = np.clip(q, lo, hi)

    def advance(self, duration_s: float) -> None:
        """Step the physics by `duration_s` (rounded to whole timesteps) and update the outcome."""
        for _ in range(max(1, round(duration_s / self.model.opt.timestep))):
            mujoco.mj_step(self.model, self.data)
        self._update_outcome()

    @property
    def time_s(self) -> float:
        return float(self.data.time)

    def joint_positions(self) -> np.ndarray:
        return self.data.qpos[self._qpos_idx].copy()

    def joint_velocities(self) -> np.ndarray:
        return self.data.qvel[self._dof_idx].copy()

    # --- geometry ------------------------------------------------------------------------
    def tcp_position(self) -> np.ndarray:
        return self.data.site_xpos[self._tcp].copy()

    def cube_position(self, colour: str) -> np.ndarray:
        adr = self._cube_qpos[colour]
        return self.data.qpos[adr : adr + 3].copy()

    def touch_point(self, colour: str) -> np.ndarray:
        return self.cube_position(colour) + np.array([0.0, 0.0, CUBE_HALF_SIZE_M + TOUCH_HEIGHT_M])

    def _update_outcome(self) -> None:
        if self.outcome != "running":
            return
        tcp = self.tcp_position()
        for colour in CUBES:
            if np.linalg.norm(tcp - self.touch_point(colour)) < REACH_TOLERANCE_M:
                self.outcome = "success" if colour == self.task.target else "failure"
                return

    # --- cameras -------------------------------------------------------------------------
    def render(self, camera: str) -> np.ndarray:
        """RGB image (H, W, 3) uint8 from camera `front` or `wrist`."""
        return self._cameras.render(camera)

    def close(self) -> None:
        self._cameras.close()

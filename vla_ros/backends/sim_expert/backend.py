"""The tabletop sim's scripted expert (`vla_ros.sim.expert`) as a policy backend: sim only.

It reads what any policy reads, the observation: the joint positions, one camera frame and the
instruction. The target cube's colour comes from the instruction ("reach the red cube"); the cube is
located in the frame by its colour (pixels of the sim's cube colour, their centroid's ray through the
sim camera's known pose and field of view, met with the plane of the cube centres, z = 25 mm). The
expert then plans on its own copy of the sim's arm model, posed at the observed joints. What makes it
sim-only is what it knows beforehand: the sim's camera calibration, the cubes' colours and size, the
arm's model. No privileged state of the running sim (it may run in another process) is read.

A cube seen with fewer than `min_cube_pixels` pixels (the arm in front of it) keeps its last
estimate until `reset`. An instruction naming no cube colour (the node's warm-up) gives a chunk
holding the observed joints.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import mujoco
import numpy as np

from vla_ros.backends.base import Backend, BackendError, backend_joints, require_cameras
from vla_ros.backends.settings import resolve_settings, settings_layers
from vla_ros.backends.sim_expert.configuration import SimExpertSettings
from vla_ros.core.types import ActionChunk, Observation, PlanPrefix
from vla_ros.sim.expert import ScriptedExpert
from vla_ros.sim.tabletop import CUBE_HALF_SIZE_M, CUBES, JOINT_NAMES, TabletopSim, Task

WHO = "sim_expert backend"


def cube_mask(image: np.ndarray, colour: str) -> np.ndarray:
    """(H, W) bool: the pixels of `image` (H, W, 3) uint8 RGB showing the sim's `colour` cube (red or blue)."""
    r, g, b = (image[..., i].astype(np.int16) for i in range(3))
    if colour == "red":
        return (r > 2 * g + 30) & (r > 2 * b + 30)
    return (b > 2 * r + 30) & (b > g + 60)


def pixel_ray(model: mujoco.MjModel, data: mujoco.MjData, camera: int, u: float, v: float, size: tuple[int, int]):
    """(origin (3,), direction (3,)) in metres, world frame, of image point (u, v) (pixels from the top left)
    of sim camera `camera` rendering `size` = (H, W) images; `data` holds the camera's pose (mj_kinematics)."""
    height, width = size
    focal = 0.5 * height / np.tan(np.radians(model.cam_fovy[camera]) / 2)
    in_camera = np.array([(u - width / 2) / focal, -(v - height / 2) / focal, -1.0])  # MuJoCo cameras look along -z
    return data.cam_xpos[camera].copy(), data.cam_xmat[camera].reshape(3, 3) @ in_camera


def locate_cube(
    model: mujoco.MjModel, data: mujoco.MjData, camera: int, image: np.ndarray, colour: str
) -> tuple[np.ndarray | None, int]:
    """(centre (3,) m or None, pixels seen): the `colour` cube in `image` of sim camera `camera`, on the table."""
    rows, cols = np.nonzero(cube_mask(image, colour))
    if rows.size == 0:
        return None, 0
    origin, direction = pixel_ray(model, data, camera, cols.mean() + 0.5, rows.mean() + 0.5, image.shape[:2])
    if direction[2] > -1e-6:
        return None, int(rows.size)  # a ray that never meets the table
    return origin + direction * ((CUBE_HALF_SIZE_M - origin[2]) / direction[2]), int(rows.size)


def instruction_target(instruction: str) -> str | None:
    """The cube colour the instruction names (the first of CUBES found in it), or None."""
    words = instruction.lower().replace(".", " ").split()
    return next((c for c in CUBES if c in words), None)


class SimExpertBackend(Backend):
    """Chunks (horizon, 7) of the scripted expert, planned from the observation on the sim's arm model."""

    joint_names = JOINT_NAMES

    def __init__(self, settings: SimExpertSettings):
        self.settings = settings
        self.camera_names = (settings.camera,)
        self.horizon, self.dt_s = settings.horizon, settings.dt_s
        self.world = TabletopSim()  # the expert's belief: the arm at the observed joints, cubes where seen
        try:
            self._camera = self.world.model.camera(settings.camera).id
        except KeyError as exc:
            raise BackendError(f"{WHO}: camera '{settings.camera}' is not a camera of the tabletop sim") from exc
        self._qpos = np.array([self.world.model.joint(n).qposadr[0] for n in JOINT_NAMES])
        self._mimic = self.world.model.joint("gripper_mimic").qposadr[0]
        self.expert = ScriptedExpert(self.world, self.dt_s, self.horizon)
        self.cubes: dict[str, np.ndarray] = {}  # colour -> last located centre (3,), metres

    def reset(self) -> None:
        self.cubes.clear()

    def predict(
        self, observation: Observation, noise: np.ndarray | None = None, prefix: PlanPrefix | None = None
    ) -> ActionChunk:
        start = time.perf_counter()
        q = backend_joints(observation.joint_names, observation.joint_positions, self.joint_names, WHO)
        colour = instruction_target(observation.instruction)
        if colour is None:  # nothing to reach (the node's warm-up): hold
            positions = np.repeat(q[None], self.horizon, axis=0)
        else:
            require_cameras(observation, self.camera_names, WHO)
            self._pose_arm(q)
            self.world.task = Task(colour)
            self._place_cube(colour, self._see_cube(observation.images[self.settings.camera], colour))
            positions = self.expert.chunk()
        return ActionChunk(observation.stamp_s, self.dt_s, self.joint_names, positions, time.perf_counter() - start)

    def _pose_arm(self, q: np.ndarray) -> None:
        data = self.world.data
        data.qpos[self._qpos] = q
        data.qpos[self._mimic] = q[6]
        mujoco.mj_kinematics(self.world.model, data)

    def _see_cube(self, image: np.ndarray, colour: str) -> np.ndarray:
        """The cube's centre (3,) m: located in `image` if seen well enough, else the last estimate."""
        centre, pixels = locate_cube(self.world.model, self.world.data, self._camera, image, colour)
        if centre is not None and pixels >= self.settings.min_cube_pixels:
            self.cubes[colour] = centre
        if colour not in self.cubes:
            raise BackendError(
                f"{WHO}: the {colour} cube is not seen in camera '{self.settings.camera}' "
                f"({pixels} pixels of its colour, min_cube_pixels {self.settings.min_cube_pixels}) and was not before"
            )
        return self.cubes[colour]

    def _place_cube(self, colour: str, centre: np.ndarray) -> None:
        adr = self.world.model.joint(f"cube_{colour}_joint").qposadr[0]
        self.world.data.qpos[adr : adr + 3] = centre


def load_sim_expert_backend(
    model_path: Path | None, overrides: dict[str, Any] | None = None, seed: int = 0, robot=None
) -> SimExpertBackend:
    """The sim expert from its settings layers (node parameters over the defaults); `model_path` is ignored."""
    settings, sources = resolve_settings(SimExpertSettings, settings_layers("sim_expert", None, overrides or {}))
    if robot is not None and robot.joint_names and tuple(robot.joint_names) != JOINT_NAMES:
        raise BackendError(
            f"{WHO}: drives the tabletop sim's joints {list(JOINT_NAMES)}, the robot has {list(robot.joint_names)}"
        )
    backend = SimExpertBackend(settings)
    backend.settings_sources = sources
    return backend

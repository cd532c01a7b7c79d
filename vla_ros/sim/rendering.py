"""The cameras of a MuJoCo scene, rendered offscreen on a CPU: quality settings that keep it cheap and one
renderer, made at the first frame and closed with the sim."""

from __future__ import annotations

import mujoco
import numpy as np


class OffscreenCameras:
    """Frames (H, W, 3) uint8 of the named cameras of `model` in the state `data`, at `image_size` (H, W)."""

    def __init__(self, model: mujoco.MjModel, data: mujoco.MjData, image_size: tuple[int, int]):
        model.vis.quality.shadowsize = 0  # shadows and multisampling cost ~6x on a CPU renderer
        model.vis.quality.offsamples = 0
        self.model, self.data, self.image_size = model, data, image_size
        self._renderer: mujoco.Renderer | None = None

    def render(self, camera: str) -> np.ndarray:
        if self._renderer is None:
            self._renderer = mujoco.Renderer(self.model, *self.image_size)
        self._renderer.update_scene(self.data, camera)
        return self._renderer.render().copy()

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None

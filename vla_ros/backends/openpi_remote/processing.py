"""Observation -> the server's request map, and the server's answer -> joint position targets."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from vla_ros.backends.base import BackendError
from vla_ros.core.images import resize_with_pad
from vla_ros.core.types import Observation


def _put(request: dict[str, Any], key: str, value: Any) -> None:
    """Set `key` in `request`, a `.` in the key nesting maps (`images.cam_high`)."""
    *parents, leaf = key.split(".")
    for part in parents:
        request = request.setdefault(part, {})
    request[leaf] = value


@dataclass(frozen=True)
class RemoteProcessor:
    """cameras: server image key -> robot camera; state: server key -> robot joints; joints: the
    robot joints of action columns 0..D-1; image_size: (H, W) to resize with padding to (None: as is);
    layout: 'hwc' or 'chw'."""

    cameras: dict[str, str]
    state: dict[str, tuple[str, ...]]
    joints: tuple[str, ...]
    image_size: tuple[int, int] | None
    layout: str
    prompt_key: str = "prompt"
    actions_key: str = "actions"

    def image(self, rgb: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 -> uint8 at `image_size` (aspect kept, zero padding), in `layout`."""
        out = rgb if self.image_size is None else resize_with_pad(rgb, *self.image_size)
        return np.ascontiguousarray(out.transpose(2, 0, 1) if self.layout == "chw" else out)

    def request(self, observation: Observation, noise: np.ndarray | None = None) -> dict[str, Any]:
        """The request map for `observation` (BackendError naming a missing camera or joint)."""
        request: dict[str, Any] = {}
        for key, camera in self.cameras.items():
            if camera not in observation.images:
                raise BackendError(f"openpi_remote: observation lacks camera '{camera}' (mapped to '{key}')")
            _put(request, key, self.image(observation.images[camera]))
        index = {n: i for i, n in enumerate(observation.joint_names)}
        q = np.asarray(observation.joint_positions, dtype=np.float64)
        for key, joints in self.state.items():
            absent = [j for j in joints if j not in index]
            if absent:
                raise BackendError(f"openpi_remote: observation lacks joints {absent} for '{key}'")
            _put(request, key, q[[index[j] for j in joints]])
        _put(request, self.prompt_key, observation.instruction)
        if noise is not None:
            request["noise"] = np.asarray(noise, dtype=np.float32)
        return request

    def positions(self, response: dict[str, Any], width: int | None = None) -> np.ndarray:
        """(H, width) model actions from the answer's actions (H, A >= width): columns 0..width-1
        (default width: one per joint, absolute joint positions)."""
        actions = response.get(self.actions_key)
        d = len(self.joints) if width is None else width
        if not isinstance(actions, np.ndarray) or actions.ndim != 2 or actions.shape[0] < 1 or actions.shape[1] < d:
            got = f"{actions.dtype} {actions.shape}" if isinstance(actions, np.ndarray) else type(actions).__name__
            raise BackendError(f"openpi_remote: answer's '{self.actions_key}' must be an (H, >={d}) array, got {got}")
        if actions.dtype.kind not in "fiu" or not np.all(np.isfinite(actions[:, :d])):
            raise BackendError(f"openpi_remote: answer's '{self.actions_key}' must hold finite numbers")
        return np.array(actions[:, :d], dtype=np.float64)

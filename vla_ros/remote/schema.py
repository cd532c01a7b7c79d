"""The key scheme of openpi's websocket protocol as `vla-ros serve` speaks it (the server's metadata and
request parsing: `vla_ros.serving.requests`).

Request (one msgpack map per inference):

- `observation/images/<camera>`: uint8 (H, W, 3) RGB, one per camera in the metadata's `cameras`
  (any size: the backend resizes; sending the metadata's `image_size` saves bandwidth);
- `observation/state`: (D,) joint positions in radians, in the metadata's `joints` order;
- `prompt`: the instruction (str);
- `noise` (optional): float32 array of the metadata's `noise_shape` (H, A), fixing the sampler's start,
  or of its `noise_full_shape` (steps, H, A), fixing every draw of the sampler: the answer is then
  the same for the same observations whatever else the server serves;
- `reset` (optional): true starts a new episode for this connection before this observation (its
  history window and noise generator start afresh).

Response: `actions` (H, D) absolute joint positions (radians, `joints` order, point i due at
(i + 1) * dt_s after the observation) and `server_timing` (milliseconds), as openpi's servers send.

Each connection is a session of its own: its observation history, episode and noise generator are
its alone (a reset or a disconnect ends only its own); the model is shared.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from vla_ros.core.types import Observation

IMAGE_PREFIX = "observation/images/"
STATE_KEY = "observation/state"
PROMPT_KEY = "prompt"
NOISE_KEY = "noise"
RESET_KEY = "reset"
ACTIONS_KEY = "actions"
TIMING_KEY = "server_timing"
ACTION_SPACE = "joint_position"
MAX_PROMPT_CHARS = 1000


class RequestError(ValueError):
    """A request that does not follow the key scheme; the text names the key and what is wrong."""


def wants_reset(request: dict) -> bool:
    """Whether the request starts a new episode for its connection (RequestError unless a bool or absent)."""
    value = request.get(RESET_KEY, False)
    if not isinstance(value, (bool, np.bool_)):
        raise RequestError(f"'{RESET_KEY}' must be true or false, got {type(value).__name__}")
    return bool(value)


def make_request(observation: Observation, noise: np.ndarray | None = None, reset: bool = False) -> dict[str, Any]:
    """The request for `observation` (cameras as named in it, state in its joint order); `reset`: start a new
    episode for this connection first."""
    request: dict[str, Any] = {
        IMAGE_PREFIX + c: np.ascontiguousarray(img, dtype=np.uint8) for c, img in observation.images.items()
    }
    request[STATE_KEY] = np.asarray(observation.joint_positions, dtype=np.float64)
    request[PROMPT_KEY] = observation.instruction
    if noise is not None:
        request[NOISE_KEY] = np.asarray(noise, dtype=np.float32)
    if reset:
        request[RESET_KEY] = True
    return request

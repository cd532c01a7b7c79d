"""The server side of the key scheme (`vla_ros.remote.schema`): a backend's metadata and the parsing of one
request into an `Observation`, each error naming the key."""

from __future__ import annotations

from typing import Any

import numpy as np

from vla_ros.backends.base import Backend
from vla_ros.core.types import Observation
from vla_ros.remote.schema import (
    ACTION_SPACE,
    IMAGE_PREFIX,
    MAX_PROMPT_CHARS,
    NOISE_KEY,
    PROMPT_KEY,
    RESET_KEY,
    STATE_KEY,
    RequestError,
)


def noise_full_shape(backend: Backend) -> tuple[int, int, int] | None:
    """(steps, H, A) of every noise draw of one prediction (a flow-matching sampler: 1, its start only; a
    diffusion sampler: its steps + 1), when the backend says (A may exceed D: padding)."""
    shape = getattr(backend, "noise_shape", None)
    if shape is None and hasattr(getattr(backend, "cfg", None), "action_dim"):
        shape = (backend.horizon, backend.cfg.action_dim)
    if shape is None:
        return None
    shape = tuple(int(n) for n in shape)
    return shape if len(shape) == 3 else (1, *shape[-2:])


def noise_shape(backend: Backend) -> tuple[int, int] | None:
    """(H, A) of the backend's sampler noise start, when the backend says."""
    full = noise_full_shape(backend)
    return full[1:] if full is not None else None


def image_size(backend: Backend) -> tuple[int, int] | None:
    """(H, W) the backend's model looks at, when it says (clients may resize to it before sending)."""
    cfg = getattr(backend, "cfg", None)
    size = getattr(cfg, "image_size", None) or getattr(getattr(cfg, "vision", None), "image_size", None)
    return (int(size), int(size)) if isinstance(size, int) else None


def metadata(backend: Backend, backend_name: str, batching: str, max_batch: int) -> dict[str, Any]:
    """What the server sends on connect (plain msgpack types only)."""
    return {
        "server": "vla-ros",
        "backend": backend_name,
        "action_space": ACTION_SPACE,
        "horizon": int(backend.horizon),
        "dt_s": float(backend.dt_s),
        "cameras": list(backend.camera_names),
        "joints": list(backend.joint_names),
        "image_size": list(image_size(backend) or ()) or None,
        "noise_shape": list(noise_shape(backend) or ()) or None,
        "noise_full_shape": list(noise_full_shape(backend) or ()) or None,
        "keys": {
            "images": IMAGE_PREFIX + "<camera>",
            "state": STATE_KEY,
            "prompt": PROMPT_KEY,
            "noise": NOISE_KEY,
            "reset": RESET_KEY,
        },
        "batching": batching,
        "max_batch": int(max_batch),
        "sessions": "per_connection",
    }


def _array(request: dict, key: str) -> np.ndarray:
    value = request.get(key)
    if not isinstance(value, np.ndarray):
        raise RequestError(f"'{key}' must be an array, got {type(value).__name__}")
    return value


def parse_request(request: Any, backend: Backend) -> tuple[Observation, np.ndarray | None]:
    """The observation (stamp 0) and optional noise of one request; RequestError naming the bad key."""
    if not isinstance(request, dict):
        raise RequestError(f"a request must be a map, got {type(request).__name__}")
    images = {}
    for camera in backend.camera_names:
        key = IMAGE_PREFIX + camera
        if key not in request:
            raise RequestError(f"missing '{key}' (this server needs cameras {list(backend.camera_names)})")
        image = _array(request, key)
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3 or min(image.shape[:2]) < 1:
            raise RequestError(f"'{key}' must be uint8 (H, W, 3), got {image.dtype} {image.shape}")
        images[camera] = image
    state = _array(request, STATE_KEY)
    d = len(backend.joint_names)
    if state.shape != (d,) or state.dtype.kind not in "fiu" or not np.all(np.isfinite(state)):
        raise RequestError(
            f"'{STATE_KEY}' must be ({d},) finite numbers for joints {list(backend.joint_names)}, "
            f"got {state.dtype} {state.shape}"
        )
    prompt = request.get(PROMPT_KEY, "")
    if not isinstance(prompt, str) or len(prompt) > MAX_PROMPT_CHARS:
        raise RequestError(f"'{PROMPT_KEY}' must be a string of at most {MAX_PROMPT_CHARS} characters")
    noise = None
    if request.get(NOISE_KEY) is not None:
        noise = _array(request, NOISE_KEY)
        full = noise_full_shape(backend)
        fits = full is None or (noise.shape[-2:] == full[1:] and noise.size in (np.prod(full[1:]), np.prod(full)))
        if noise.dtype.kind != "f" or not fits or not np.all(np.isfinite(noise)):
            raise RequestError(
                f"'{NOISE_KEY}' must be finite floats of shape {full[1:] if full else None} (the start) or {full} "
                f"(every draw), got {noise.dtype} {noise.shape}"
            )
        noise = noise.astype(np.float32)
    observation = Observation(0.0, images, tuple(backend.joint_names), state.astype(np.float64), prompt)
    return observation, noise

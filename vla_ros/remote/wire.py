"""openpi's wire format: msgpack with NumPy arrays, as `openpi-client` packs them.

An array travels as a map `{b"__ndarray__": True, b"data": <raw bytes>, b"dtype": <dtype.str>,
b"shape": [..]}`, a NumPy scalar as `{b"__npgeneric__": True, b"data": <python value>, b"dtype":
<dtype.str>}`; everything else is plain msgpack (str, bytes, numbers, lists, maps). Object, void
and complex dtypes are refused in both directions (no pickle anywhere), and a received array must
have exactly as many bytes as its dtype and shape say. Messages travel as binary websocket frames;
a text frame from the server carries an error message.
"""

from __future__ import annotations

from typing import Any

import msgpack
import numpy as np

from vla_ros.remote import DEFAULT_MAX_MESSAGE_MB

#: default bound on one websocket message, bytes (both directions; websockets' `max_size`)
DEFAULT_MAX_MESSAGE_BYTES = int(DEFAULT_MAX_MESSAGE_MB * 2**20)

_REFUSED_KINDS = ("O", "V", "c")  # object, void/structured, complex: openpi refuses these too


class WireError(ValueError):
    """A message that is not valid openpi msgpack; the text says which part and why."""


def _checked_dtype(spec: Any) -> np.dtype:
    if not isinstance(spec, (str, bytes)):
        raise WireError(f"array dtype must be a dtype string such as '<f4', got {type(spec).__name__}")
    try:
        dtype = np.dtype(spec.decode() if isinstance(spec, bytes) else spec)
    except TypeError as exc:
        raise WireError(f"unknown array dtype {spec!r}") from exc
    if dtype.kind in _REFUSED_KINDS or dtype.hasobject:
        raise WireError(f"array dtype {dtype.str} is not allowed (object, void and complex dtypes are refused)")
    return dtype


def _encode(obj: Any) -> Any:
    """msgpack `default` hook: NumPy arrays and scalars -> openpi's maps."""
    if isinstance(obj, (np.ndarray, np.generic)):
        if obj.dtype.kind in _REFUSED_KINDS or obj.dtype.hasobject:
            raise WireError(f"cannot send an array of dtype {obj.dtype} (object, void and complex dtypes are refused)")
        if isinstance(obj, np.ndarray):
            return {b"__ndarray__": True, b"data": obj.tobytes(), b"dtype": obj.dtype.str, b"shape": obj.shape}
        return {b"__npgeneric__": True, b"data": obj.item(), b"dtype": obj.dtype.str}
    raise WireError(f"cannot send a value of type {type(obj).__name__}")


def _decode(obj: dict) -> Any:
    """msgpack `object_hook`: openpi's maps -> NumPy arrays (read-only views) and scalars."""
    if b"__ndarray__" in obj:
        dtype = _checked_dtype(obj.get(b"dtype"))
        shape = obj.get(b"shape")
        data = obj.get(b"data")
        if not isinstance(shape, (list, tuple)) or not all(isinstance(n, int) and n >= 0 for n in shape):
            raise WireError(f"array shape must be a list of non-negative integers, got {shape!r}")
        if not isinstance(data, bytes):
            raise WireError(f"array data must be bytes, got {type(data).__name__}")
        expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        if len(data) != expected:
            raise WireError(
                f"array of shape {tuple(shape)} and dtype {dtype.str} needs {expected} bytes, got {len(data)}"
            )
        return np.frombuffer(data, dtype=dtype).reshape(shape)
    if b"__npgeneric__" in obj:
        dtype = _checked_dtype(obj.get(b"dtype"))
        value = obj.get(b"data")
        if not isinstance(value, (bool, int, float)):
            raise WireError(f"NumPy scalar data must be a number, got {type(value).__name__}")
        return dtype.type(value)
    return obj


def packb(obj: Any) -> bytes:
    """Serialise `obj` (maps, lists, str, numbers, NumPy arrays/scalars) to openpi msgpack bytes."""
    try:
        return msgpack.packb(obj, default=_encode, use_bin_type=True)
    except (TypeError, ValueError, OverflowError) as exc:
        raise WireError(f"cannot serialise message: {exc}") from exc


def unpackb(data: bytes) -> Any:
    """Parse openpi msgpack bytes; WireError on anything malformed (never executes or unpickles anything)."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise WireError(f"expected a binary message, got {type(data).__name__}")
    try:
        return msgpack.unpackb(data, object_hook=_decode, raw=False)
    except WireError:
        raise
    except (msgpack.ExtraData, msgpack.FormatError, msgpack.StackError, ValueError, TypeError) as exc:
        reason = str(exc) or f"{type(exc).__name__} ({len(data)} bytes)"  # some msgpack errors carry no text
        raise WireError(f"not a valid msgpack message: {reason}") from exc

"""Checks shared by every checkpoint loader: one error listing every mismatch, before any copy."""

from __future__ import annotations

from collections.abc import Mapping

from vla_ros.backends.base import BackendError


def _shape(x) -> tuple[int, ...]:
    return tuple(x.shape) if hasattr(x, "shape") else tuple(x)


def check_state_dict(weights: Mapping, expected: Mapping, where: str) -> None:
    """BackendError listing missing keys, unexpected keys and wrong shapes of `weights` vs `expected`.

    Values are tensors or plain shapes (tuples), so a loader can check before reading any data.
    """
    missing = sorted(set(expected) - set(weights))
    unexpected = sorted(set(weights) - set(expected))
    bad_shapes = [
        f"{k}: {_shape(weights[k])} != {_shape(v)}"
        for k, v in expected.items()
        if k in weights and _shape(weights[k]) != _shape(v)
    ]
    if missing or unexpected or bad_shapes:
        raise BackendError(
            f"{where} does not match the model: missing keys {missing}, unexpected keys {unexpected}, wrong shapes {bad_shapes}"
        )

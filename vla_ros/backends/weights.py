"""Checks shared by every checkpoint loader: one error listing every mismatch, before any copy."""

from __future__ import annotations

from collections.abc import Mapping

from vla_ros.backends.base import BackendError

LISTED = 12  # keys named per category in a truncated listing


def _shape(x) -> tuple[int, ...]:
    return tuple(x.shape) if hasattr(x, "shape") else tuple(x)


def listing(keys: list[str], limit: int | None = LISTED) -> str:
    """`keys` as a list, the first `limit` of them and a count of the rest (None: all)."""
    if limit is None or len(keys) <= limit:
        return f"{keys}"
    return f"{keys[:limit]} (+{len(keys) - limit} more)"


def check_shapes(
    weights: Mapping,
    expected: Mapping,
    what: str,
    file_keys: Mapping[str, str] | None = None,
    limit: int | None = LISTED,
) -> None:
    """BackendError '<what>: missing keys [...], unexpected keys [...], wrong shapes [...]'.

    `weights` and `expected` map model keys to tensors or plain shapes (tuples), so a loader can
    check before reading any data. `file_keys` (model key -> key in the file) names unexpected and
    misshaped entries as the file spells them. Each category lists at most `limit` keys (None: all).
    """
    shown = dict(file_keys or {})
    missing = sorted(set(expected) - set(weights))
    unexpected = sorted(shown.get(k, k) for k in set(weights) - set(expected))
    bad_shapes = [
        f"{shown.get(k, k)}: {_shape(weights[k])} != {_shape(v)}"
        for k, v in expected.items()
        if k in weights and _shape(weights[k]) != _shape(v)
    ]
    if missing or unexpected or bad_shapes:
        raise BackendError(
            f"{what}: missing keys {listing(missing, limit)}, unexpected keys {listing(unexpected, limit)}, "
            f"wrong shapes {listing(bad_shapes, limit)}"
        )

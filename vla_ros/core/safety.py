"""Chunk validation: a chunk is rejected as a whole (with the reason) rather than executed in part.

Limits on the commands themselves are the jerk limiter's (core/jerk_limiter.py).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from vla_ros.core.robot_mapping import JointNameError, select_joints
from vla_ros.core.types import ActionChunk


class ChunkRejected(ValueError):
    """A chunk that must not be executed; the message says why."""


def check_chunk(chunk: ActionChunk, joint_names: tuple[str, ...], now_s: float, max_stamp_skew_s: float) -> ActionChunk:
    """Validate a chunk and return it reordered to `joint_names` order.

    Rejects: missing joints, non-finite positions, a stamp further than `max_stamp_skew_s`
    in the future or the past of `now_s`.
    """
    try:
        positions = select_joints(chunk.joint_names, chunk.positions, joint_names, "chunk")
    except JointNameError as exc:
        raise ChunkRejected(str(exc)) from exc
    if chunk.horizon == 0:
        raise ChunkRejected("chunk has no points")
    if not np.all(np.isfinite(chunk.positions)):
        bad = np.argwhere(~np.isfinite(chunk.positions))[0]
        raise ChunkRejected(f"chunk has a non-finite position at point {bad[0]}, joint '{chunk.joint_names[bad[1]]}'")
    skew = chunk.t0_s - now_s
    if abs(skew) > max_stamp_skew_s:
        when = "future" if skew > 0 else "past"
        raise ChunkRejected(f"chunk stamp is {abs(skew):.3f} s in the {when} (limit {max_stamp_skew_s} s)")
    return dataclasses.replace(chunk, joint_names=tuple(joint_names), positions=positions)


def check_policy_chunk(chunk: object, joint_names: tuple[str, ...]) -> ActionChunk:
    """What a backend returned, checked before it is published; ChunkRejected says what is wrong.

    Rejects: not an ActionChunk, joints other than `joint_names` (in that order), no points,
    a non-finite position (NaN/inf) or time step.
    """
    if not isinstance(chunk, ActionChunk):
        raise ChunkRejected(f"backend output is a {type(chunk).__name__}, not an ActionChunk")
    if tuple(chunk.joint_names) != tuple(joint_names):
        raise ChunkRejected(
            f"backend output has joints {list(chunk.joint_names)} (shape {chunk.positions.shape}), expected "
            f"{list(joint_names)}"
        )
    if chunk.horizon == 0:
        raise ChunkRejected("backend output has no points")
    if not np.all(np.isfinite(chunk.positions)) or not np.isfinite(chunk.dt_s):
        bad = np.argwhere(~np.isfinite(chunk.positions))
        where = f" at point {bad[0][0]}, joint '{joint_names[bad[0][1]]}'" if len(bad) else " (dt_s)"
        raise ChunkRejected(f"backend output is not finite{where}")
    return chunk

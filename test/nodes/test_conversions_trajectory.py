"""Chunk -> JointTrajectory: point times split into sec / nanosec, and the policy node's reused message."""

from __future__ import annotations

import numpy as np

from vla_ros.core.types import ActionChunk
from vla_ros.nodes.conversions import ChunkMessageWriter, chunk_to_trajectory, trajectory_points

JOINTS = ("a", "b", "c")


def _chunk(t0_s: float, positions: np.ndarray, dt_s: float = 0.1) -> ActionChunk:
    return ActionChunk(t0_s, dt_s, JOINTS, positions, 0.0)


def test_trajectory_points_carry_positions_and_times_to_the_nanosecond():
    positions = np.arange(12, dtype=float).reshape(4, 3)
    offsets_s = np.array([0.1, 1.0, 1.999999999, 2.5000000004])
    points = trajectory_points(positions, offsets_s)
    assert [list(p.positions) for p in points] == positions.tolist()
    assert [(p.time_from_start.sec, p.time_from_start.nanosec) for p in points] == [
        (0, 100_000_000),
        (1, 0),
        (1, 999_999_999),
        (2, 500_000_000),
    ]


def test_chunk_to_trajectory_stamps_the_observation_and_times_points_from_it():
    rng = np.random.default_rng(0)
    chunk = _chunk(12.25, rng.normal(size=(5, 3)))
    msg = chunk_to_trajectory(chunk)
    assert (msg.header.stamp.sec, msg.header.stamp.nanosec) == (12, 250_000_000)
    assert tuple(msg.joint_names) == JOINTS
    np.testing.assert_array_equal([list(p.positions) for p in msg.points], chunk.positions)
    times = [p.time_from_start.sec + p.time_from_start.nanosec * 1e-9 for p in msg.points]
    np.testing.assert_allclose(times, 0.1 * np.arange(1, 6), atol=1e-9)


def test_the_reused_message_equals_a_fresh_one_for_every_chunk_also_when_the_layout_changes():
    rng = np.random.default_rng(1)
    writer = ChunkMessageWriter()
    first = writer.message(_chunk(1.0, rng.normal(size=(6, 3))))
    for t0_s, horizon, dt_s in [(1.5, 6, 0.1), (2.0, 6, 0.1), (2.5, 4, 0.1), (3.0, 4, 0.05), (3.5, 6, 0.1)]:
        chunk = _chunk(t0_s, rng.normal(size=(horizon, 3)), dt_s)
        assert writer.message(chunk) == chunk_to_trajectory(chunk)
    same_layout = _chunk(4.0, rng.normal(size=(6, 3)))
    reused = writer.message(same_layout)
    assert reused is writer.message(same_layout) and reused is not first  # rebuilt once at each layout change

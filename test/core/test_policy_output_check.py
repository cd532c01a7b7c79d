"""The check every backend output passes before the policy node publishes it."""

import dataclasses

import numpy as np
import pytest

from vla_ros.core.safety import ChunkRejected, check_policy_chunk
from vla_ros.core.types import ActionChunk

JOINTS = ("a", "b")
GOOD = ActionChunk(0.0, 0.1, JOINTS, np.zeros((4, 2)))


def test_a_whole_finite_chunk_passes():
    assert check_policy_chunk(GOOD, JOINTS) is GOOD


@pytest.mark.parametrize(
    "bad, reason",
    [
        (
            dataclasses.replace(GOOD, positions=np.array([[0, 0], [0, np.nan], [0, 0], [0, 0]], float)),
            "not finite at point 1, joint 'b'",
        ),
        (dataclasses.replace(GOOD, positions=np.full((4, 2), np.inf)), "not finite at point 0, joint 'a'"),
        (ActionChunk(0.0, 0.1, ("a",), np.zeros((4, 1))), "has joints ['a'] (shape (4, 1)), expected ['a', 'b']"),
        (ActionChunk(0.0, 0.1, ("b", "a"), np.zeros((4, 2))), "expected ['a', 'b']"),
        (ActionChunk(0.0, 0.1, JOINTS, np.zeros((0, 2))), "no points"),
        (np.zeros((4, 2)), "is a ndarray, not an ActionChunk"),
    ],
)
def test_a_bad_output_is_rejected_with_the_reason(bad, reason):
    with pytest.raises(ChunkRejected) as info:
        check_policy_chunk(bad, JOINTS)
    assert reason in str(info.value)

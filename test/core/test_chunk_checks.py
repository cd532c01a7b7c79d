"""Chunk rejection: every reason is named."""

import numpy as np
import pytest

from vla_ros.core.safety import ChunkRejected, check_chunk
from vla_ros.core.types import ActionChunk


def chunk(names=("c", "a", "b"), positions=None, t0=10.0):
    return ActionChunk(t0, 0.1, names, np.ones((2, len(names))) if positions is None else positions)


def test_check_chunk_reorders_to_config_order():
    c = ActionChunk(10.0, 0.1, ("c", "a", "b", "extra"), np.array([[3.0, 1.0, 2.0, 9.0]]))
    out = check_chunk(c, ("a", "b", "c"), 10.0, 1.0)
    np.testing.assert_array_equal(out.positions, [[1.0, 2.0, 3.0]])
    assert out.joint_names == ("a", "b", "c")


@pytest.mark.parametrize(
    "c, match",
    [
        (chunk(names=("a", "b")), r"lacks joints \['c'\]"),
        (chunk(positions=np.array([[0.0, np.nan, 0.0], [0, 0, 0]])), "non-finite position at point 0, joint 'a'"),
        (chunk(t0=20.0), "10.000 s in the future"),
        (chunk(t0=0.0), "10.000 s in the past"),
    ],
)
def test_check_chunk_rejections_say_why(c, match):
    with pytest.raises(ChunkRejected, match=match):
        check_chunk(c, ("a", "b", "c"), now_s=10.0, max_stamp_skew_s=1.0)

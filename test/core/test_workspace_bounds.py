"""The workspace's clearance and link speed bound, which let the limiter skip forward kinematics."""

import numpy as np
from test_executor_properties import WORKSPACE

from vla_ros.config import load_robot_config

LIMITS = load_robot_config("sim").limits


def test_the_link_moves_no_further_than_the_bound_allows():
    rng = np.random.default_rng(0)
    bound = WORKSPACE.link_speed_bound_m_per_rad
    assert bound.shape == (7,) and bound[-1] == 0.0  # the gripper does not carry the tool centre point
    for _ in range(500):
        q = rng.uniform(LIMITS.min_position, LIMITS.max_position)
        dq = rng.normal(size=7) * 10 ** rng.uniform(-4, -0.5)
        moved = np.linalg.norm(WORKSPACE.link_position(q + dq) - WORKSPACE.link_position(q))
        assert moved <= bound @ np.abs(dq) + 1e-12


def test_clearance_is_positive_inside_negative_outside_and_a_lower_bound_on_the_distance():
    rng = np.random.default_rng(1)
    for _ in range(500):
        q = rng.uniform(LIMITS.min_position, LIMITS.max_position)
        clearance = WORKSPACE.clearance(q)
        if clearance > 0:
            assert WORKSPACE.contains(q)
            # any point closer than the clearance is inside too
            p = WORKSPACE.link_position(q)
            for direction in rng.normal(size=(5, 3)):
                near = p + 0.999 * clearance * direction / np.linalg.norm(direction)
                assert WORKSPACE.box.contains(near) and not any(b.contains(near) for b in WORKSPACE.keep_out)
        elif clearance < 0:
            assert not WORKSPACE.contains(q)

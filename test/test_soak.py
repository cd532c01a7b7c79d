"""The soak's limit monitor (vla_ros/soak.py): what counts as a violation."""

import numpy as np

from vla_ros.config import load_robot_config
from vla_ros.soak import LimitMonitor

LIMITS = load_robot_config("sim").limits


def test_steps_within_two_ticks_pass_and_a_jump_or_an_out_of_range_position_does_not():
    monitor = LimitMonitor(LIMITS, period_s=0.01)
    q = (LIMITS.min_position + LIMITS.max_position) / 2
    monitor.on_command(q)
    monitor.on_command(q + LIMITS.max_velocity * 0.02)  # a late tick integrates at most two periods
    assert monitor.violations == 0
    monitor.on_command(q + LIMITS.max_velocity * 0.02 + np.r_[0.5, np.zeros(len(q) - 1)])  # a 0.5 rad jump
    monitor.on_command(LIMITS.max_position + 0.1)
    assert monitor.violations == 2
    assert "joint 0 stepped" in monitor.examples[0] and "position outside the limits" in monitor.examples[1]

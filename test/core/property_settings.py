"""How many streams the property tests run.

The default is the proof: 8,000 executor streams (test_executor_properties.py) and 2,000 limiter
streams (test_jerk_limiter.py), 10,000 in all. `VLA_ROS_PROPERTIES=quick` runs a twentieth of
each while iterating on the code.
"""

import os

from hypothesis import HealthCheck, settings


def streams(full: int) -> settings:
    """Settings for a property test that runs `full` examples in the proof."""
    quick = os.environ.get("VLA_ROS_PROPERTIES", "full") == "quick"
    return settings(
        max_examples=max(full // 20, 20) if quick else full, deadline=None, suppress_health_check=[HealthCheck.too_slow]
    )

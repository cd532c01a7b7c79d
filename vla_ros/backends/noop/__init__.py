"""A backend without a model, for measuring the ROS path (benchmarks, tests); never a policy."""

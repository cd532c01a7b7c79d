"""Latency benchmarks of the backends, with random weights: `python -m vla_ros.benchmarks.<name>`."""

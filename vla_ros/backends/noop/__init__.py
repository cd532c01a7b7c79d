"""A backend without a model, for measuring the ROS path (benchmarks, tests); never a policy, so not registered:
name it `vla_ros.backends.noop:BACKEND` (the pipeline benchmark does; the test suite registers it as `noop`)."""

from vla_ros.registry import BackendSpec

BACKEND = BackendSpec(
    loader="vla_ros.backends.noop.backend:load_noop_backend",
    settings="vla_ros.backends.noop.configuration:NoopSettings",
)

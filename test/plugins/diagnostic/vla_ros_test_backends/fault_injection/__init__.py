"""A diagnostic wrapper backend that injects faults (exceptions, NaN/inf, wrong shapes, slowness)
into another backend's output, to test the nodes' fault handling. Not a policy: never deploy it."""

from vla_ros.registry import BackendSpec

BACKEND = BackendSpec(
    loader="vla_ros_test_backends.fault_injection.backend:load_fault_injection_backend",
    settings="vla_ros_test_backends.fault_injection.configuration:FaultInjectionSettings",
)

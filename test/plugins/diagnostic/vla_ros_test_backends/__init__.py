"""Backends the test suite registers (test/conftest.py puts this folder on the path of the tests and of the
nodes they start): `fault_injection` (faults on purpose) and `noop` (vla_ros's model-free benchmark backend,
registered here under a name). Neither is a policy; an installed vla_ros registers neither."""

"""A backend from outside vla_ros, registered only by its package metadata (entry point group
`vla_ros.backends` in ../vla_ros_echo_backend-0.1.dist-info/entry_points.txt): the test that a separate
package adds a backend with no edit to vla_ros. Put `test/plugins` on the Python path to install it."""

from vla_ros.registry import BackendSpec

BACKEND = BackendSpec(loader="vla_ros_echo_backend.backend:load", settings="vla_ros_echo_backend.backend:EchoSettings")

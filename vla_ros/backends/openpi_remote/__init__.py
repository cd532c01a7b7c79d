"""A policy served over openpi's websocket protocol (openpi's `serve_policy.py` or `vla-ros serve`)."""

from vla_ros.registry import BackendSpec

BACKEND = BackendSpec(
    loader="vla_ros.backends.openpi_remote.backend:load_openpi_remote_backend",
    settings="vla_ros.backends.openpi_remote.configuration:RemoteSettings",
)

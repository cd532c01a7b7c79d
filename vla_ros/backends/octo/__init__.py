"""Octo backend: task/observation/readout tokens, Octo's group attention, diffusion head (one model, modeling.py)."""

from vla_ros.registry import BackendSpec

BACKEND = BackendSpec(
    loader="vla_ros.backends.octo.backend:load_octo_backend",
    settings="vla_ros.backends.octo.configuration:OctoSettings",
)

"""OpenVLA backend (Prismatic VLM: fused DINOv2 + SigLIP towers, Llama-2, 256-bin action tokens), real checkpoints."""

from vla_ros.registry import BackendSpec

BACKEND = BackendSpec(
    loader="vla_ros.backends.openvla.backend:load_openvla_backend",
    settings="vla_ros.backends.openvla.configuration:OpenVLASettings",
)

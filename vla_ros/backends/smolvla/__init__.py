"""SmolVLA backend (LeRobot's SmolVLM2 + flow-matching action expert): LeRobot save_pretrained folders."""

from vla_ros.registry import BackendSpec

BACKEND = BackendSpec(
    loader="vla_ros.backends.smolvla.backend:load_smolvla_backend",
    settings="vla_ros.backends.smolvla.settings:SmolVLASettings",
)

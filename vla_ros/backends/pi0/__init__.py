"""π₀ backend (openpi's flow-matching VLA): PaliGemma prefix + Gemma action expert, real checkpoints."""

from vla_ros.registry import BackendSpec

BACKEND = BackendSpec(
    loader="vla_ros.backends.pi0.backend:load_pi0_backend", settings="vla_ros.backends.pi0.settings:Pi0Settings"
)

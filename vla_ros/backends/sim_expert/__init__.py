"""The tabletop sim's scripted expert as a backend (`backend:=sim_expert`): sim only, never a learnt policy."""

from vla_ros.registry import BackendSpec

BACKEND = BackendSpec(
    loader="vla_ros.backends.sim_expert.backend:load_sim_expert_backend",
    settings="vla_ros.backends.sim_expert.configuration:SimExpertSettings",
)

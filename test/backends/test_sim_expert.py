"""The sim expert backend: cubes located in the sim's rendered frames, chunks as the privileged expert plans them."""

from __future__ import annotations

import numpy as np
import pytest

from vla_ros.backends.base import BackendError, load_backend
from vla_ros.core.types import Observation
from vla_ros.sim.expert import ScriptedExpert
from vla_ros.sim.tabletop import CUBES, JOINT_NAMES, TabletopSim


@pytest.fixture(scope="module")
def sim():
    sim = TabletopSim()
    yield sim
    sim.close()


def observation(sim: TabletopSim, instruction: str) -> Observation:
    images = {"front": sim.render("front")}
    return Observation(sim.time_s, images, JOINT_NAMES, sim.joint_positions(), instruction)


def test_cubes_are_located_in_the_front_frame_within_5_mm(sim):
    from vla_ros.backends.sim_expert.backend import locate_cube

    backend = load_backend("sim_expert", None)
    for seed in range(6):
        sim.reset(seed)
        backend._pose_arm(sim.joint_positions())
        for colour in CUBES:
            centre, pixels = locate_cube(
                backend.world.model, backend.world.data, backend._camera, sim.render("front"), colour
            )
            assert pixels > 50, (seed, colour, pixels)
            assert np.linalg.norm(centre - sim.cube_position(colour)) < 0.005, (seed, colour, centre)


def test_the_chunk_is_the_privileged_experts_from_the_observation_alone(sim):
    backend = load_backend("sim_expert", None)
    for seed in (3, 4):
        task = sim.reset(seed)
        chunk = backend.predict(observation(sim, task.instruction))
        expected = ScriptedExpert(sim, backend.dt_s, backend.horizon).chunk()
        assert chunk.positions.shape == (8, 7) and chunk.joint_names == JOINT_NAMES and chunk.dt_s == 0.1
        np.testing.assert_allclose(chunk.positions, expected, atol=0.02)


def test_no_cube_in_the_instruction_holds_and_an_unseen_cube_is_an_error(sim):
    backend = load_backend("sim_expert", None, {"horizon": 4})
    sim.reset(0)
    held = backend.predict(observation(sim, "warm up"))
    np.testing.assert_array_equal(held.positions, np.repeat(sim.joint_positions()[None], 4, axis=0))
    dark = Observation(
        0.0, {"front": np.zeros((128, 128, 3), np.uint8)}, JOINT_NAMES, sim.joint_positions(), "reach the red cube"
    )
    with pytest.raises(BackendError, match="the red cube is not seen in camera 'front' \\(0 pixels"):
        backend.predict(dark)
    backend.predict(observation(sim, "reach the red cube"))  # seen once: the estimate holds while unseen
    assert backend.predict(dark).positions.shape == (4, 7)
    backend.reset()
    with pytest.raises(BackendError, match="not seen"):
        backend.predict(dark)

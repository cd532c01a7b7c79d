"""Training the demo-style Octo (OctoNet with the demo options) at a tiny size, and its checkpoint."""

import numpy as np

from vla_ros.backends.base import load_backend
from vla_ros.backends.octo.checkpoint import save_checkpoint
from vla_ros.core.types import Observation
from vla_ros.sim.tabletop import CAMERAS, JOINT_NAMES
from vla_ros.training.train import TrainSettings, backend_from, make_config, train

TINY = dict(width=32, depth=1, num_heads=2, mlp_dim=64, stem_channels=(8, 16), head_hidden=32, head_blocks=1)


def demonstrations(n: int = 16, horizon: int = 4, size: int = 32) -> dict[str, np.ndarray]:
    """Recorder-shaped data: random frames, poses near a reachable one, targets a small step away."""
    rng = np.random.default_rng(0)
    q = np.array([0.0, -0.5, 0.8, 0.0, 0.5, 0.0, 0.02]) + rng.uniform(-0.05, 0.05, (n, len(JOINT_NAMES)))
    steps = 0.01 * np.arange(1, horizon + 1)[None, :, None] * np.sign(rng.normal(size=(n, 1, len(JOINT_NAMES))))
    return {
        **{f"image_{c}": rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8) for c in CAMERAS},
        "state": q,
        "actions": q[:, None] + steps,
        "task": np.arange(n) % 2,
        "instructions": np.array(["reach the red cube", "reach the blue cube"]),
    }


def test_training_lowers_the_loss_and_the_saved_checkpoint_predicts_the_same(tmp_path):
    data = demonstrations()
    cfg = make_config(data, 0.1, None, diffusion_steps=5, **TINY)
    assert cfg.film and cfg.coord_channels and cfg.vocab == ("blue", "cube", "reach", "red", "the")
    logged: list[str] = []
    settings = TrainSettings(budget_s=120, max_steps=400, batch_size=8, warmup_steps=10, threads=1)
    model, stats, info = train(data, cfg, settings, log=logged.append)
    assert info["steps"] == 400
    first, last = (float(line.split("loss ")[1].split()[0]) for line in (logged[1], logged[-1]))
    assert last < 0.7 * first, logged  # mean loss of steps 1-200 vs 201-400

    save_checkpoint(tmp_path, model, cfg, stats)
    trained, loaded = backend_from(model, cfg, stats), load_backend("octo", tmp_path)
    rng = np.random.default_rng(1)
    obs = Observation(
        2.0, {c: data[f"image_{c}"][3] for c in CAMERAS}, JOINT_NAMES, data["state"][3], "reach the red cube"
    )
    noise = rng.normal(size=(cfg.horizon, cfg.action_dim))
    trained.generator.manual_seed(4)
    loaded.generator.manual_seed(4)
    np.testing.assert_array_equal(trained.predict(obs, noise).positions, loaded.predict(obs, noise).positions)

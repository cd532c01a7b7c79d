"""The bundled demo model through the one Octo implementation: OctoNet with the demo options computes what the
model it was trained as computed (fixture recorded with that model by
scripts/fixtures/make_octo_demo_layout_fixture.py; the weights were re-saved in OctoNet's layout since)."""

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from vla_ros.backends.base import BackendError
from vla_ros.backends.octo.checkpoint import load_config, load_model

ROOT = Path(__file__).resolve().parents[3]
FIXTURES = Path(__file__).parent / "fixtures" / "demo_layout"
TOLERANCE = 1e-5
# models/demo/model.safetensors (OctoNet's layout) of the model the fixture was recorded on (a retrained one differs)
DEMO_SHA256 = "d45685e91aeea206efd9bacfeca590a5052c9f5a2a0605dcd884cee0e8c186ea"


def run(net, ref: dict) -> tuple[np.ndarray, np.ndarray]:
    """The readout embeddings (B, W) and sampled normalised chunks (B, H, A) for the fixture's inputs."""
    b = ref["state"].shape[0]
    names = [g.name for g in net.cfg.images]
    ids, valid = torch.from_numpy(ref["ids"]), torch.from_numpy(ref["valid"])
    with torch.no_grad():
        readouts = net(
            images={n: torch.from_numpy(ref[f"images/{n}"])[:, None] for n in names},
            image_valid={n: torch.ones(b, 1, dtype=torch.bool) for n in names},
            timestep_valid=torch.ones(b, 1, dtype=torch.bool),
            language=net.text_encoder(ids, valid),
            language_valid=valid,
            proprio=torch.from_numpy(ref["state"])[:, None],
        )[:, -1]
        embedding = net.embedding(readouts)
        actions = net.head.sample(embedding, torch.from_numpy(ref["noises"]))
    return embedding.numpy(), actions.numpy()


def test_the_one_implementation_reproduces_the_demo_model():
    folder = ROOT / "models" / "demo"
    if hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest() != DEMO_SHA256:
        pytest.skip("models/demo was retrained after the fixture was recorded")
    cfg, _ = load_config(folder)
    net = load_model(folder, cfg)
    with np.load(FIXTURES / "demo.npz") as z:
        ref = {k: z[k] for k in z.files}
    embedding, actions = run(net, ref)
    d_embedding = np.abs(embedding - ref["embedding"]).max()
    d_actions = np.abs(actions - ref["actions"]).max()
    print(f"demo: max |d| embedding {d_embedding:.2e}, actions {d_actions:.2e}")
    assert d_embedding <= TOLERANCE and d_actions <= TOLERANCE, (d_embedding, d_actions)
    assert np.abs(ref["actions"]).max() > 0.5  # not a trivial chunk


def test_a_checkpoint_missing_a_weight_is_one_error_naming_every_key(tmp_path):
    import shutil

    from safetensors.torch import load_file

    folder = Path(shutil.copytree(ROOT / "models" / "demo", tmp_path / "demo"))
    weights = load_file(str(folder / "model.safetensors"))
    del weights["language_projection.weight"]
    weights["extra.weight"] = torch.zeros(2)
    save_file(weights, str(folder / "model.safetensors"))
    with pytest.raises(
        BackendError, match=r"missing keys \['language_projection.weight'\], unexpected keys \['extra.weight'\]"
    ):
        load_model(folder, load_config(folder)[0])

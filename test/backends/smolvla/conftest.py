"""SmolVLA fixtures: LeRobot-saved parity folders (the real-width one gets its weights rebuilt from their seeds)."""

from __future__ import annotations

import importlib.util
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

FIXTURES = Path(__file__).parent / "fixtures"
SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "fixtures" / "make_smolvla_fixture.py"


def fixture_script():
    """scripts/fixtures/make_smolvla_fixture.py as a module (its weight drawing; LeRobot is imported only when run)."""
    spec = importlib.util.spec_from_file_location("make_smolvla_fixture", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def rebuild_weights(folder: Path, out: Path) -> None:
    """model.safetensors as LeRobot saved it, from weights.json: every tensor drawn from its key's seed and
    checked against the sum and sum of squares LeRobot's file had."""
    from safetensors.torch import save_file

    manifest = json.loads((folder / "weights.json").read_text())
    draw = fixture_script().draw_weight
    tensors, bad = {}, []
    for key, entry in manifest["tensors"].items():
        t = draw(key, tuple(entry["shape"]), manifest["seed"]).to(getattr(torch, entry["dtype"]))
        d = t.double()
        for name, value in (("sum", d.sum().item()), ("sum_sq", d.square().sum().item())):
            if not math.isclose(value, entry[name], rel_tol=1e-9, abs_tol=1e-9):
                bad.append(f"{key}.{name}: {value} != {entry[name]}")
        tensors[key] = t
    assert not bad, f"rebuilt weights differ from LeRobot's: {bad[:5]}"
    save_file(tensors, str(out))


@pytest.fixture(scope="session")
def real_width_folder(tmp_path_factory):
    """lerobot_smolvla/ with the model.safetensors LeRobot saved (rebuilt), in a temporary copy."""
    src = FIXTURES / "lerobot_smolvla"
    folder = tmp_path_factory.mktemp("smolvla") / "lerobot_smolvla"
    shutil.copytree(src, folder)
    rebuild_weights(src, folder / "model.safetensors")
    (folder / "weights.json").unlink()
    yield folder
    shutil.rmtree(folder)  # ~380 MB of weights: not left in pytest's kept temporary folders


def reference(folder: Path) -> dict:
    with np.load(folder / "reference.npz") as ref:
        return {k: ref[k] for k in ref.files}

"""The JAX reference's fixture (scripts/fixtures/make_octo_fixture.py), converted as the converter does."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from vla_ros.backends.octo.convert import convert_params
from vla_ros.backends.octo.modeling import OctoNet

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="session")
def reference():
    with np.load(FIXTURES / "tiny" / "reference.npz") as z:
        return {k: z[k] for k in z.files}


@pytest.fixture(scope="session")
def tiny_net(reference):
    """OctoNet with the reference's params, converted from what orbax wrote."""
    raw = json.loads((FIXTURES / "tiny" / "config.json").read_text())
    params = {k[len("params/") :]: v for k, v in reference.items() if k.startswith("params/")}
    cfg, weights = convert_params(raw, params)
    net = OctoNet(cfg).eval()
    net.load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()})
    return net


def scaled(images: np.ndarray) -> torch.Tensor:
    """uint8 (..., H, W, 3) -> float (..., 3, H, W) in [-1, 1], as the reference scales them."""
    return torch.from_numpy(images.astype(np.float32) / 127.5 - 1.0).movedim(-1, -3)


@pytest.fixture(scope="session")
def inputs(reference) -> dict:
    """OctoNet.forward's keyword arguments for the fixture's windows."""
    ref = reference
    names = ("primary", "wrist")
    return {
        "images": {n: scaled(ref[f"obs/image_{n}"]) for n in names},
        "image_valid": {n: torch.from_numpy(ref[f"obs_pad/image_{n}"]) for n in names},
        "timestep_valid": torch.from_numpy(ref["timestep_pad_mask"]),
        "goals": {n: scaled(ref[f"task/image_{n}"]) for n in names},
        "language": torch.from_numpy(ref["task/language_instruction"]),
        "language_valid": torch.from_numpy(ref["task_pad/language_instruction"]),
    }


JOINTS = ("shoulder_pan", "shoulder_lift", "elbow", "wrist_1", "wrist_2", "wrist_3", "gripper")
T5_WORDS = ["<pad>", "</s>", "<unk>", "pick", "up", "the", "red", "cube", "put", "on", "blue", "plate", "and", "then"]


def make_tiny_t5(folder: Path, d_model: int) -> Path:
    """A local T5 folder (word-level tokenizer appending </s>, 1-layer random encoder) of width d_model."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast, T5Config, T5EncoderModel

    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(T5_WORDS)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>"
    ).save_pretrained(folder)
    torch.manual_seed(0)
    cfg = T5Config(vocab_size=len(T5_WORDS), d_model=d_model, d_kv=8, d_ff=32, num_layers=1, num_heads=2)
    T5EncoderModel(cfg).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def t5_folder(tmp_path_factory) -> Path:
    return make_tiny_t5(tmp_path_factory.mktemp("t5"), 24)


@pytest.fixture(scope="session")
def converted(tmp_path_factory, reference) -> Path:
    """The fixture's reference params converted into a runtime folder, as `vla-ros convert octo` writes it."""
    from vla_ros.backends.octo.convert import write_converted

    raw = json.loads((FIXTURES / "tiny" / "config.json").read_text())
    params = {k[len("params/") :]: v for k, v in reference.items() if k.startswith("params/")}
    cfg, weights = convert_params(raw, params)
    out = tmp_path_factory.mktemp("octo_converted")
    stats = json.loads((FIXTURES / "tiny" / "dataset_statistics.json").read_text())
    action = stats["bridge_dataset"]["action"]  # small EE steps, so the random model's chunks stay reachable
    action["mean"], action["std"] = [0.0] * 7, [0.002] * 7
    (out / "stats.json").write_text(json.dumps(stats))
    return write_converted(out, cfg, weights, out / "stats.json")


@pytest.fixture
def settings(t5_folder) -> dict:
    return {
        "t5_folder": str(t5_folder),
        "dataset_key": "bridge_dataset",
        "cameras": {"primary": "front", "wrist": "wrist"},
        "joints": list(JOINTS),
    }


@pytest.fixture
def make_observation():
    from vla_ros.core.types import Observation

    def make(seed: int = 0, instruction: str = "pick up the red cube", cameras=("front", "wrist"), stamp_s=1.0):
        rng = np.random.default_rng(seed)
        images = {
            "front": rng.integers(0, 256, (48, 64, 3), dtype=np.uint8),
            "wrist": rng.integers(0, 256, (16, 16, 3), dtype=np.uint8),
        }
        q = np.array([0.0, -0.5, 0.8, 0.0, 0.5, 0.0, 0.02]) + rng.uniform(-0.05, 0.05, len(JOINTS))  # a reachable pose
        return Observation(stamp_s, {c: images[c] for c in cameras}, JOINTS, q, instruction)

    return make

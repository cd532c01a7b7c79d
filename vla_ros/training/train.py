"""Train the bundled demo model (Octo with the demo options, tiny) on recorded demonstrations, on the CPU.

`python -m vla_ros.cli train --out models/demo` records demonstrations with the scripted
expert, trains for a fixed wall-clock budget, evaluates closed loop on held-out seeds and writes
the checkpoint folder with a model card.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vla_ros.backends.action_output import ActionOutput, RobotBody, build_action_output, robot_body
from vla_ros.backends.normalization import DatasetStatistics, FeatureStats
from vla_ros.backends.octo.backend import OctoBackend
from vla_ros.backends.octo.checkpoint import demo_checkpoint
from vla_ros.backends.octo.configuration import OctoConfig
from vla_ros.backends.octo.modeling import OctoNet
from vla_ros.backends.octo.processing import feature_statistics, normalize_actions, scale_pixels
from vla_ros.backends.octo.text import WordTokenizer
from vla_ros.sim.tabletop import CAMERAS, JOINT_NAMES

DELTA_MASK = (True,) * 6 + (False,)  # arm joints relative to the current state, gripper absolute
# `--action-space ee_delta`: the expert's joint targets recorded as Bridge's end-effector deltas (xyz and
# roll/pitch/yaw of the tool, base frame, chained along the chunk) with the gripper opening in metres;
# state: the arm joints, the tool position (forward kinematics) and the gripper.
EE_DELTA_SPACE = {
    "preset": "bridge_ee_delta",
    "gripper": {"source_range": None, "binarize_threshold": None},
    "state": {
        "groups": [{"type": "joint_position"}, {"type": "ee_position"}, {"type": "gripper", "source_range": None}]
    },
}
ACTION_SPACES = {"joint": None, "ee_delta": EE_DELTA_SPACE}


@dataclass(frozen=True)
class TrainSettings:
    budget_s: float = 600.0  # wall-clock training budget
    max_steps: int = 100_000
    batch_size: int = 32
    lr: float = 6e-4
    weight_decay: float = 1e-4
    warmup_steps: int = 200
    ema_decay: float = 0.999  # the saved weights are the exponential moving average
    shift_px: int = 0  # random image shift (pixels); 0: the cameras are fixed, a shift would blur where the cubes are
    seed: int = 0
    threads: int = 2
    init_from: str = ""  # checkpoint folder to continue training from (same config); "" = random init


def sim_robot() -> RobotBody:
    """The sim arm as the action space sees it (config/robots/sim.yaml: URDF, tool link, gripper joint)."""
    from vla_ros.config import load_robot_config

    return robot_body(load_robot_config("sim"))


def action_output(action_space: dict | None) -> ActionOutput:
    """The sim arm's ActionOutput for a checkpoint's action space (None: joints relative per DELTA_MASK)."""
    relative = tuple(j for j, rel in zip(JOINT_NAMES, DELTA_MASK) if rel)
    return build_action_output(action_space, JOINT_NAMES, relative, sim_robot(), "training")


def model_space(data: dict[str, np.ndarray], output: ActionOutput) -> tuple[np.ndarray, np.ndarray]:
    """The recorded joint states (N, D) and expert targets (N, H, D) as model states (N, S) and actions (N, H, A)."""
    states = np.stack([output.state_vector(q) for q in data["state"]])
    return states, output.to_model_actions(data["actions"], data["state"])


def dataset_statistics(states: np.ndarray, actions: np.ndarray) -> DatasetStatistics:
    return DatasetStatistics(FeatureStats.from_data(states), FeatureStats.from_data(actions))


def make_config(data: dict[str, np.ndarray], dt_s: float, action_space: dict | None = None, **overrides) -> OctoConfig:
    """The model config for recorded data in `action_space` (None: joint targets, arm joints relative)."""
    instructions = [str(s) for s in data["instructions"]]
    output = action_output(action_space)
    return OctoConfig(
        camera_names=CAMERAS,
        image_size=int(data[f"image_{CAMERAS[0]}"].shape[1]),
        joint_names=JOINT_NAMES,
        horizon=int(data["actions"].shape[1]),
        dt_s=dt_s,
        delta_mask=() if action_space else DELTA_MASK,
        action_space=dict(action_space or {}),
        action_dim=output.action_dim,
        state_dim=output.state_dim,
        vocab=WordTokenizer.build_vocab(instructions),
        **{"coord_channels": True, "film": True, **overrides},
    )


def _shift(images: torch.Tensor, max_px: int, gen: torch.Generator) -> torch.Tensor:
    """Random translation by up to max_px pixels (replicate padding), per sample."""
    if max_px == 0:
        return images
    b, _, h, w = images.shape
    padded = torch.nn.functional.pad(images, (max_px,) * 4, mode="replicate")
    dx = torch.randint(0, 2 * max_px + 1, (b,), generator=gen)
    dy = torch.randint(0, 2 * max_px + 1, (b,), generator=gen)
    return torch.stack([padded[i, :, dy[i] : dy[i] + h, dx[i] : dx[i] + w] for i in range(b)])


def train(
    data: dict[str, np.ndarray], cfg: OctoConfig, settings: TrainSettings, log=print
) -> tuple[OctoNet, DatasetStatistics, dict]:
    torch.manual_seed(settings.seed)
    torch.set_num_threads(settings.threads)
    gen = torch.Generator().manual_seed(settings.seed)
    states, actions = model_space(data, action_output(cfg.action_space or None))
    stats = dataset_statistics(states, actions)
    if settings.init_from:  # fine-tuning: keep the normalisation the weights were trained with
        stats = DatasetStatistics.load(Path(settings.init_from) / "dataset_statistics.json")
    tokenizer = WordTokenizer(cfg.vocab, cfg.max_tokens)
    # Precompute every input once: uint8 images stay uint8 until a batch is drawn.
    images = {
        c: torch.from_numpy(np.ascontiguousarray(data[f"image_{c}"].transpose(0, 3, 1, 2))) for c in cfg.camera_names
    }
    state = torch.from_numpy(stats.state.normalize(states).astype(np.float32))
    targets = torch.from_numpy(normalize_actions(actions, feature_statistics(stats.action), "mean_std"))
    text = [tokenizer(str(s)) for s in data["instructions"]]
    ids = torch.from_numpy(np.stack([text[t][0] for t in data["task"]]))
    valid = torch.from_numpy(np.stack([text[t][1] for t in data["task"]]))
    n = len(state)

    model = OctoNet(cfg.net_config())
    if settings.init_from:
        from vla_ros.backends.octo.checkpoint import load_model

        model.load_state_dict(load_model(Path(settings.init_from), cfg).state_dict())
    optim = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    ema = [p.detach().clone() for p in model.parameters()]
    params = sum(p.numel() for p in model.parameters())
    log(f"training on {n} samples, {params / 1e6:.2f}M parameters, budget {settings.budget_s:.0f} s")
    start = time.monotonic()
    step, losses = 0, []
    while step < settings.max_steps:
        elapsed = time.monotonic() - start
        if elapsed > settings.budget_s:
            break
        progress = elapsed / settings.budget_s
        lr = settings.lr * min(1.0, (step + 1) / settings.warmup_steps) * 0.5 * (1 + math.cos(math.pi * progress))
        for g in optim.param_groups:
            g["lr"] = lr
        idx = torch.randint(0, n, (settings.batch_size,), generator=gen)
        batch_images = {c: _shift(scale_pixels(images[c][idx]), settings.shift_px, gen) for c in cfg.camera_names}
        emb = model.embed_step(batch_images, state[idx], ids[idx], valid[idx])
        loss = model.head.loss(emb, targets[idx], gen)
        optim.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optim.step()
        decay = min(settings.ema_decay, (1 + step) / (10 + step))
        with torch.no_grad():
            for e, p in zip(ema, model.parameters()):
                e.mul_(decay).add_(p.detach(), alpha=1 - decay)
        losses.append(loss.item())
        step += 1
        if step % 200 == 0:
            log(f"step {step}  loss {np.mean(losses[-200:]):.4f}  lr {lr:.2e}  {time.monotonic() - start:.0f} s")
    with torch.no_grad():
        for e, p in zip(ema, model.parameters()):
            p.copy_(e)
    model.eval()
    info = {
        "steps": step,
        "train_seconds": round(time.monotonic() - start, 1),
        "final_loss": float(np.mean(losses[-200:])),
        "parameters": params,
    }
    return model, stats, info


def write_model_card(folder: Path, info: dict) -> None:
    """A short README.md in the checkpoint folder: what the model is, how it was trained, how it does."""
    lines = [
        "# vla_ros demo model (Octo, tiny, with the demo options)",
        "",
        "Octo's task/observation/readout tokens and group attention, DDPM diffusion action head; the demo options",
        "(word encoder, proprio token, FiLM + coordinate channels, x0 clipping): docs/demo.md.",
        f"Cameras {list(CAMERAS)} at {info['image_size']}x{info['image_size']}, joints {list(JOINT_NAMES)}, "
        f"chunks of {info['horizon']} points every {info['dt_s']} s ({info['action_space_text']}).",
        "",
        "## Training",
        (
            f"- Data: {info['episodes']} episodes of the LeRobotDataset {info['dataset']['dataset']} with outcome "
            f"{' or '.join(info['dataset']['outcomes'])} ({info['samples']} samples), tasks {info['instructions']}; "
            f"{'fine-tuned from ' + info['init_from'] + ' (its statistics kept)' if info.get('init_from') else ''}."
            if info.get("dataset")
            else f"- Data: {info['episodes']} scripted-expert episodes in the vla_ros MuJoCo tabletop scene "
            f"({info['samples']} samples, DART noise {info['noise_rad']} rad), tasks {info['instructions']}."
        ),
        f"- {info['steps']} AdamW steps, batch {info['batch_size']}, {info['train_seconds']} s on {info['threads']} "
        "CPU threads; "
        f"{info['parameters'] / 1e6:.2f}M parameters; final loss {info['final_loss']:.4f}.",
        f"- Command: `{info['command']}`",
        "",
        "## Measured (closed loop in the sim, without ROS, on held-out seeds, through the nodes' executor core)",
        f"- Success rate: {info['eval_success_rate']:.2f} over {info['eval_episodes']} episodes "
        f"(scripted expert: {info['expert_eval_success_rate']:.2f}).",
        "- Through the full ROS pipeline: see docs/demo.md.",
        "",
        "Files: `config.json`, `model.safetensors` (safetensors), `dataset_statistics.json`, `training.json`.",
    ]
    (folder / "README.md").write_text("\n".join(lines) + "\n")
    (folder / "training.json").write_text(json.dumps(info, indent=1))


def load_dataset(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as f:
        return {k: f[k] for k in f.files}


def backend_from(model: OctoNet, cfg: OctoConfig, stats: DatasetStatistics) -> OctoBackend:
    """The trained model as a backend on the sim arm."""
    backend = OctoBackend(model, demo_checkpoint(cfg, stats))
    backend.bind_robot(sim_robot())
    return backend

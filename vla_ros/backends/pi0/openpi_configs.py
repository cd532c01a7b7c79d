"""openpi's per-robot conventions by training-config name: what a converted openpi checkpoint does not record.

openpi keeps a checkpoint's data transforms in code: `src/openpi/training/config.py` (`_CONFIGS`, the
DataConfigFactory classes) and the policies' Inputs/Outputs (`src/openpi/policies/*_policy.py`). Its
PyTorch converter writes only action_dim, action_horizon, the variants and the precision to config.json
(`examples/convert_jax_model_to_pytorch.py:544-552`). The setting `openpi_config: <name>` names the config a
checkpoint was trained with; this table says what that means for the raw model output this backend
reads (unnormalised, before openpi's output transforms):

- the action space of the columns the Outputs transform keeps (a block of core/action_space.py; None:
  joint positions of the model joints), and the `DeltaActions` / `AbsoluteActions` mask
  (`src/openpi/transforms.py:204-244`, `make_bool_mask` 433-452): dims where it is True are predicted
  relative to the unnormalised state as the Inputs transform built it (`policy_config.py:75-89`: the
  output transforms run Unnormalize, then AbsoluteActions, then the Outputs transform);
- the control period the actions were recorded at (the runtime of openpi's example for that robot);
- which openpi image fills each π₀ slot (slots not listed are zeros and masked for π₀ / π₀.5);
- the norm-stats asset (`assets/<asset_id>/norm_stats.json`: `create_base_config` takes
  `AssetsConfig.asset_id`, else the repo id, config.py:179-188);
- π₀.5's `discrete_state_input` (the state written into the prompt; pi0_config.py:33,40-41).

Configs whose transforms this backend cannot reproduce are listed with the reason (`unsupported`):
loading refuses them rather than run them wrong. Facts only: each entry cites its sources, all in
Physical-Intelligence/openpi at commit 15a9616 (main, 2026-06-16) unless another repository is named.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

OPENPI_COMMIT = "15a9616a00943ada6c20a0f158e3adb39df2ccac"
CONFIG_PY = "src/openpi/training/config.py"
NORM_STATS = "norm_stats.json"
DT_TOLERANCE = 1e-3  # relative: dt_s 0.0667 states DROID's 1/15 s

# π₀ slot -> the openpi observation image that fills it
DROID_CAMERAS = {"base_0_rgb": "observation/exterior_image_1_left", "left_wrist_0_rgb": "observation/wrist_image_left"}
LIBERO_CAMERAS = {"base_0_rgb": "observation/image", "left_wrist_0_rgb": "observation/wrist_image"}
ALOHA_CAMERAS = {"base_0_rgb": "cam_high", "left_wrist_0_rgb": "cam_left_wrist", "right_wrist_0_rgb": "cam_right_wrist"}

DROID_VELOCITY_SPACE = {"preset": "droid_joint_velocity"}
DROID_POSITION_SPACE = {  # joints relative to the state (DeltaActions mask (7, -1)), gripper position absolute
    "groups": [
        {"type": "joint_position", "mode": "relative"},
        {"type": "gripper", "invert": True, "binarize_threshold": 0.5},
    ],
    "chain": "from_state",
    "state": {"groups": [{"type": "joint_position"}, {"type": "gripper", "invert": True}]},
}
LIBERO_SPACE = {"preset": "libero_ee_delta", "gripper": {"source_range": [-1, 1], "invert": True}}


def make_bool_mask(*dims: int) -> tuple[bool, ...]:
    """openpi's `transforms.make_bool_mask`: n > 0 -> n True, n < 0 -> -n False."""
    return tuple(b for d in dims for b in ([True] * d if d > 0 else [False] * -d))


@dataclass(frozen=True)
class OpenpiConfig:
    """One openpi training config's conventions (module docstring); `sources`: fact -> where openpi says it."""

    name: str
    model: str  # pi0 | pi05 | pi0_fast
    asset_id: str  # norm stats: assets/<asset_id>/norm_stats.json
    action_horizon: int
    action_dims: int  # columns the Outputs transform keeps
    state_dims: int
    action_space: dict | None  # block of the raw output's columns; None: joint positions of the model joints
    delta_mask: tuple[bool, ...] | None  # DeltaActions/AbsoluteActions mask (None: no delta transform)
    dt_s: float
    cameras: dict[str, str]  # π₀ slot -> openpi image; other slots zeros and masked
    state: str  # the state vector, in order
    gripper: str
    state_in_prompt: bool | None = None  # π₀.5: discrete_state_input (None: π₀, a state token)
    default_prompt: str | None = None  # openpi's InjectDefaultPrompt (used when no prompt is given)
    unsupported: str = ""  # why the π₀ backend refuses it ("" = supported)
    caveats: tuple[str, ...] = ()  # where this package's conversion still differs from openpi's runtime
    sources: dict[str, str] = field(default_factory=dict, compare=False)

    def source(self, fact: str = "config") -> str:
        """`openpi config <name> (<file:lines>)`, the source of `fact` (action_space, delta_mask, dt_s, ...)."""
        return f"openpi config {self.name} ({self.sources.get(fact, self.sources['config'])})"

    def relative_dims(self) -> tuple[int, ...]:
        """Model action dims predicted relative to the state (openpi's mask; dims past it are absolute)."""
        return tuple(i for i, rel in enumerate(self.delta_mask or ()) if rel)

    def relative_joints(self, joints: tuple[str, ...]) -> tuple[str, ...]:
        """The joints of the relative dims, `joints` being the model's joints in dim order; () when an action
        space block states the convention."""
        if self.action_space is not None:
            return ()
        return tuple(joints[i] for i in self.relative_dims() if i < len(joints))

    def relative_rule(self) -> str:
        """The relative-dims rule in words, for the docs and errors."""
        if self.delta_mask is None:
            return "none"
        return f"dims {list(self.relative_dims())} of {len(self.delta_mask)} relative, the rest absolute"


def _droid(name: str, model: str, horizon: int, lines: str, **kw) -> OpenpiConfig:
    fast = model == "pi0_fast"
    return OpenpiConfig(
        name=name,
        model=model,
        asset_id="droid",
        action_horizon=horizon,
        action_dims=8,
        state_dims=8,
        action_space=kw.pop("action_space", DROID_VELOCITY_SPACE),
        delta_mask=kw.pop("delta_mask", None),
        dt_s=1 / 15,
        cameras=(
            {"base_0_rgb": DROID_CAMERAS["base_0_rgb"], "wrist_0_rgb": DROID_CAMERAS["left_wrist_0_rgb"]}
            if fast
            else DROID_CAMERAS
        ),
        state="7 joint positions (rad) + gripper position (DroidInputs)",
        gripper="position 0 open .. 1 closed, binarised at 0.5 by the example runtime",
        state_in_prompt=True if model == "pi05" else None,
        unsupported=(
            "π₀-FAST (autoregressive action tokens) is not this backend's model, and openpi's PyTorch converter "
            "refuses non-Pi0Config configs (examples/convert_jax_model_to_pytorch.py:574-576)"
            if fast
            else ""
        ),
        caveats=kw.pop("caveats", ()),
        sources={
            "config": f"{CONFIG_PY}:{lines}",
            "action_space": "src/openpi/policies/droid_policy.py:77-81 DroidOutputs keeps actions[..., :8]; "
            "examples/droid/main.py:80,132,140-149 joint velocities + gripper position, binarised, clipped to [-1, 1]",
            "delta_mask": kw.pop("mask_source", f"{CONFIG_PY}:{lines} (no DeltaActions)"),
            "dt_s": "examples/droid/main.py:22-23 DROID_CONTROL_FREQUENCY = 15",
            "cameras": "src/openpi/policies/droid_policy.py:47-56",
            "asset_id": f"{CONFIG_PY}:{lines} AssetsConfig(asset_id='droid')",
            "state": "src/openpi/policies/droid_policy.py:36-40",
            "state_in_prompt": "src/openpi/models/pi0_config.py:33,40-41 (discrete_state_input defaults to pi05)",
        },
        **kw,
    )


def _libero(name: str, model: str, horizon: int, action_dims: int, lines: str, extra_delta: bool) -> OpenpiConfig:
    unsupported = ""
    if model == "pi0_fast":
        unsupported = "π₀-FAST (autoregressive action tokens) is not this backend's model"
    elif extra_delta:
        unsupported = (
            "trained with extra_delta_transform: DeltaActions(make_bool_mask(6, -1)) subtracts the state's EE "
            "position and axis-angle from LIBERO's EE-delta actions (config.py:336-343), so the model predicts "
            "action - state[:6]; the action-space layer cannot add an EE pose to EE deltas"
        )
    return OpenpiConfig(
        name=name,
        model=model,
        asset_id="physical-intelligence/libero",
        action_horizon=horizon,
        action_dims=action_dims,
        state_dims=8,
        action_space=LIBERO_SPACE,
        delta_mask=make_bool_mask(6, -1) if extra_delta else None,
        dt_s=0.05,
        cameras=LIBERO_CAMERAS,
        state="EE position (3) + axis-angle of the EE quaternion (3) + the 2 finger positions",
        gripper="robosuite's raw command: -1 open, +1 close",
        state_in_prompt=(False if model == "pi05" else None),
        unsupported=unsupported,
        sources={
            "config": f"{CONFIG_PY}:{lines}",
            "action_space": "src/openpi/policies/libero_policy.py:86-100 LiberoOutputs keeps actions[..., :7]; "
            "examples/libero/main.py:17,153 sends them to env.step as is (robosuite OSC_POSE deltas, gripper -1 open)",
            "delta_mask": f"{CONFIG_PY}:289,336-343 extra_delta_transform={extra_delta}",
            "dt_s": "examples/libero/main.py:189-196 OffScreenRenderEnv without control_freq: LIBERO's default 20 Hz "
            "(Lifelong-Robot-Learning/LIBERO libero/libero/envs/bddl_base_domain.py BDDLBaseDomain control_freq=20)",
            "cameras": "src/openpi/policies/libero_policy.py:52-69; examples/libero/main.py:115-116 (agentview and "
            "eye-in-hand images rotated 180°)",
            "asset_id": f"{CONFIG_PY}:179-188 (no AssetsConfig: the repo id physical-intelligence/libero)",
            "state": "examples/libero/main.py:133-139",
            "state_in_prompt": f"{CONFIG_PY}:745 discrete_state_input=False; src/openpi/models/tokenizer.py:22-33",
        },
    )


ADAPT_TO_PI = (
    "trained with adapt_to_pi (AlohaInputs/AlohaOutputs, src/openpi/policies/aloha_policy.py:104-202): the model "
    "works in π's internal ALOHA space (joints 1, 2, 8, 9 sign-flipped; grippers converted between ALOHA's "
    "linear positions and angles), which this backend does not reproduce: a robot in ALOHA's own conventions "
    "would get mirrored shoulder and elbow commands"
)


def _aloha(
    name: str, model: str, lines: str, asset_id: str = "trossen", delta: bool = True, prompt: str | None = None
) -> OpenpiConfig:
    sim = asset_id != "trossen"
    return OpenpiConfig(
        name=name,
        model=model,
        asset_id=asset_id,
        action_horizon=50,
        action_dims=14,
        state_dims=14,
        action_space=None,
        delta_mask=make_bool_mask(6, -1, 6, -1) if delta else None,
        dt_s=0.02,
        cameras={"base_0_rgb": "cam_high"} if sim else ALOHA_CAMERAS,
        state="[left arm 6 joints, left gripper, right arm 6 joints, right gripper], in π's space (adapt_to_pi)",
        gripper="absolute; π's angular gripper units in and out (aloha_policy.py:117-156)",
        state_in_prompt=True if model == "pi05" else None,
        default_prompt=prompt,
        unsupported=ADAPT_TO_PI,
        sources={
            "config": f"{CONFIG_PY}:{lines}",
            "action_space": "src/openpi/policies/aloha_policy.py:90-101 AlohaOutputs keeps actions[:, :14]",
            "delta_mask": (
                f"{CONFIG_PY}:232,263-268 use_delta_joint_actions: make_bool_mask(6, -1, 6, -1)"
                if delta
                else f"{CONFIG_PY}:{lines} use_delta_joint_actions=False"
            ),
            "dt_s": "examples/aloha_sim/main.py:47 max_hz=50" if sim else "examples/aloha_real/main.py:41 max_hz=50",
            "cameras": "src/openpi/policies/aloha_policy.py:49-70"
            + ("; examples/aloha_sim/env.py:48-55 (only cam_high)" if sim else ""),
            "asset_id": f"{CONFIG_PY}:{lines}",
            "state": "src/openpi/policies/aloha_policy.py:159-187",
            "state_in_prompt": "src/openpi/models/pi0_config.py:33,40-41 (discrete_state_input defaults to pi05)",
        },
    )


_ENTRIES = (
    _droid("pi0_droid", "pi0", 10, "601-614"),
    _droid("pi05_droid", "pi05", 15, "629-642"),
    _droid("pi0_fast_droid", "pi0_fast", 10, "615-628"),
    _droid("pi05_droid_finetune", "pi05", 16, "895-918 (LeRobotDROIDDataConfig 426-462: joint velocities, no delta)"),
    _droid(
        "pi05_full_droid_finetune",
        "pi05",
        16,
        "861-894",
        action_space=DROID_POSITION_SPACE,
        delta_mask=make_bool_mask(7, -1),
        mask_source=f"{CONFIG_PY}:403-409 JOINT_POSITION: DeltaActions(make_bool_mask(7, -1)); "
        "src/openpi/training/droid_rlds_dataset.py:119-125 actions = joint_position + gripper_position",
        caveats=(),
    ),
    _libero("pi05_libero", "pi05", 10, 7, "743-763", extra_delta=False),
    _libero("pi0_libero", "pi0", 50, 7, "651-677", extra_delta=True),
    _libero("pi0_fast_libero", "pi0_fast", 10, 7, "699-720", extra_delta=True),
    _aloha("pi0_aloha", "pi0", "564-571"),
    _aloha("pi05_aloha", "pi05", "572-579"),
    _aloha("pi0_aloha_towel", "pi0", "580-588", prompt="fold the towel"),
    _aloha("pi0_aloha_tupperware", "pi0", "589-597", prompt="open the tupperware and put the food on the plate"),
    _aloha("pi0_aloha_pen_uncap", "pi0", "769-797", prompt="uncap the pen"),
    _aloha("pi05_aloha_pen_uncap", "pi05", "798-827", prompt="uncap the pen"),
    _aloha(
        "pi0_aloha_sim",
        "pi0",
        "922-932",
        asset_id="lerobot/aloha_sim_transfer_cube_human",
        delta=False,
        prompt="Transfer cube",
    ),
)
OPENPI_CONFIGS: dict[str, OpenpiConfig] = {c.name: c for c in _ENTRIES}

# Released base checkpoints: openpi has no config of these names (README "Model Checkpoints")
BASE_CHECKPOINTS = ("pi0_base", "pi0_fast_base", "pi05_base")


def lookup(name: str) -> OpenpiConfig:
    """The entry of `name`; ValueError listing the known names (a base checkpoint's name says what to name)."""
    if name in OPENPI_CONFIGS:
        return OPENPI_CONFIGS[name]
    if name in BASE_CHECKPOINTS:
        raise ValueError(
            f"openpi_config: {name!r} is a base checkpoint, not an openpi training config: its assets/ hold norm "
            "stats of several robots; name the config it runs with (openpi's scripts/serve_policy.py runs "
            f"pi05_base with pi05_aloha), one of {sorted(OPENPI_CONFIGS)}"
        )
    raise ValueError(f"openpi_config: unknown openpi config {name!r} (known: {sorted(OPENPI_CONFIGS)})")


def asset_ids(folder: Path) -> list[str]:
    """The asset ids of a folder's `assets/<asset_id>/norm_stats.json` (ids may hold a '/')."""
    root = Path(folder) / "assets"
    return sorted(str(p.parent.relative_to(root)) for p in root.glob(f"**/{NORM_STATS}") if p.parent != root)


def configs_for_assets(folder: Path, model: str) -> dict[str, list[str]]:
    """asset id -> the supported configs of `model` (pi0 | pi05) whose norm stats it is, for the folder's assets."""
    out = {}
    for asset in asset_ids(folder):
        names = [c.name for c in _ENTRIES if c.asset_id == asset and c.model == model and not c.unsupported]
        names = names or [c.name for c in _ENTRIES if c.asset_id == asset and c.model == model]
        if names:
            out[asset] = names
    return out


def same_dt(a: float, b: float) -> bool:
    return abs(a - b) <= DT_TOLERANCE * max(abs(a), abs(b))


def merged_action_space(config: OpenpiConfig, stated: dict | None, stated_source: str) -> tuple[dict | None, str]:
    """(block, source): the config's block, with the fields of an action_space setting that states the same
    meaning (preset, groups, chain) over it; ValueError naming both when the setting means something else."""
    if stated is None:
        return config.action_space, config.source("action_space")
    own = config.action_space or {}
    meaning = ("preset", "groups", "chain")
    if config.action_space is None or any(k in stated and stated[k] != own.get(k) for k in meaning):
        raise ValueError(
            f"{stated_source}: action_space {stated} contradicts {config.source('action_space')}, whose raw output "
            f"is {own or 'joint positions of the model joints'}: remove action_space or openpi_config"
        )
    merged = dict(own)
    for key, value in stated.items():
        merged[key] = {**own[key], **value} if isinstance(value, dict) and isinstance(own.get(key), dict) else value
    return merged, f"{config.source('action_space')} < {stated_source}"

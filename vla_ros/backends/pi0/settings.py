"""Runtime settings of the π₀ backend (`config/backends/pi0.yaml`, layered as backends/settings.py
says): robot mapping and sampler.

The checkpoint says what the model is (`config.json`); this file says how our robot talks to it:
which robot camera fills each π₀ camera slot, which joints are the state/action dimensions
(dimension i is `joints[i]`, the rest up to 32 is zero padding), which of them the checkpoint
predicts relative to the current state, the chunk timing and the sampler. `openpi_config` names the
openpi training config of a converted openpi checkpoint, whose conventions (openpi_configs.py) then
fill action_space, relative_joints, dt_s and the camera slots; settings that contradict them fail.
Errors name the file and the key.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from vla_ros.backends.settings import SettingsBase, check_choice, post_init_flow_settings

FAST_PATHS = ("eager", "compile", "cuda_graph", "auto")  # backends/pi0/fast.py


@dataclass(frozen=True)
class Pi0Settings(SettingsBase):
    KEY_GROUPS = (("joints", "relative_joints"),)

    joints: tuple[str, ...] = ()  # robot joints of state/action dims 0..D-1 (empty: the robot config's joints)
    cameras: dict[str, str] | None = None  # π₀ image slot -> robot camera; unmapped slots are masked (None: same
    # names as the robot's cameras, else the robot's cameras in slot order)
    relative_joints: tuple[str, ...] = ()  # joints whose actions are relative to the current state
    dt_s: float = 0.1  # seconds between chunk points
    steps: int | None = None  # Euler steps; None = the checkpoint's (LeRobot num_inference_steps), else 10
    max_guidance: float = 5.0  # RTC guidance weight clip (beta)
    guidance_overlap: str = "plan"  # guided: the soft mask decays to 0 at the running plan's end (RTC) | chunk's end
    checkpoint: str | None = None  # default checkpoint folder (absolute or relative to the package root)
    device: str = "cpu"
    dtype: str = "float32"  # transformer dtype: float32 | bfloat16
    norm_stats: str | None = None  # statistics file relative to the checkpoint; None = search the folder
    max_token_len: int | None = None  # override the checkpoint's prompt length
    skip_masked_slots: bool = True  # do not encode masked camera slots (same result, less compute)
    origin: str | None = None  # openpi | lerobot: toolchain that trained the checkpoint; None = detect from its files
    action_space: dict | None = (
        None  # the checkpoint's action space (preset + overrides); None: joints per relative_joints
    )
    fast_path: str = "auto"  # denoising loop: eager | compile | cuda_graph | auto (cuda_graph on CUDA, else eager)
    openpi_config: str | None = None  # openpi training config the checkpoint comes from (openpi_configs.py): its
    # action space, relative dims, dt_s, camera slots and norm-stats asset; None = not given
    source: str = field(default="<memory>", compare=False)

    def __post_init__(self):
        post_init_flow_settings(self)
        where = self.source
        if self.origin not in (None, "openpi", "lerobot"):
            raise ValueError(f"{where}: origin: must be openpi, lerobot or null, got {self.origin!r}")
        check_choice(where, "fast_path", self.fast_path, FAST_PATHS)
        if self.openpi_config is not None:
            from vla_ros.backends.pi0.openpi_configs import lookup

            try:
                lookup(self.openpi_config)  # an unknown name lists the known ones
            except ValueError as exc:
                raise ValueError(f"{where}: {exc}") from None
        if self.max_token_len is not None and self.max_token_len < 1:
            raise ValueError(f"{where}: max_token_len: must be >= 1, got {self.max_token_len}")

    def check_slots(self, slots: tuple[str, ...]) -> None:
        """ValueError unless every mapped slot is one of the model's `slots`."""
        bad = sorted(s for s in self.cameras if s not in slots)
        if bad:
            raise ValueError(f"{self.source}: cameras: unknown π₀ slots {bad} (the model has {list(slots)})")

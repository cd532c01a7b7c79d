"""Runtime settings of the SmolVLA backend (`config/backends/smolvla.yaml`, layered as backends/settings.py says).

The checkpoint says what the model is (LeRobot's config.json, processor pipelines, statistics); these
settings say how the robot talks to it: which robot camera feeds each model camera, which joints are
the state/action dimensions (dimension i is `joints[i]`; the rest up to max_state_dim / max_action_dim
is zero padding), the chunk timing, the sampler, and where the SmolVLM2 backbone's config and
tokenizer are (LeRobot names the backbone on the hub; this backend reads local files only).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from vla_ros.backends.normalization import check_normalization
from vla_ros.backends.settings import SettingsBase, post_init_flow_settings

NORMALIZATION = ("mean_std", "quantiles", "min_max")


@dataclass(frozen=True)
class SmolVLASettings(SettingsBase):
    KEY_GROUPS = (("joints", "relative_joints"),)

    joints: tuple[str, ...] = ()  # robot joints of state/action dims 0..D-1 (empty: the robot config's joints)
    cameras: dict[str, str] | None = None  # model camera (LeRobot feature name without observation.images.) ->
    # robot camera; unmapped model cameras are left out, as LeRobot leaves out missing ones (None: same names
    # as the robot's cameras, else the robot's cameras in the checkpoint's order)
    relative_joints: tuple[str, ...] = ()  # joints whose actions are relative to the state (LeRobot's
    # relative-action pipeline steps set them when the checkpoint has them)
    dt_s: float = 1 / 30  # seconds between chunk points: the dataset's frame period (LeRobot SO-101 data: 30 fps)
    steps: int | None = None  # Euler steps; None = the checkpoint's num_steps
    max_guidance: float = 5.0  # RTC guidance weight clip (beta)
    guidance_overlap: str = "plan"  # guided: the soft mask decays to 0 at the running plan's end (RTC) | chunk's end
    checkpoint: str | None = None  # default checkpoint folder (absolute or relative to the package root)
    vlm: str | None = None  # local SmolVLM2 folder (its config.json and tokenizer files), absolute or relative to
    # the checkpoint folder; None = the checkpoint folder's vlm_config.json and tokenizer files
    normalization: str | None = None  # the checkpoint's state/action normalisation, for folders that do not say;
    # None = read from the folder (a value that contradicts the folder is refused)
    device: str = "cpu"
    dtype: str = "float32"  # VLM and expert dtype: float32 | bfloat16 (projections and RoPE stay float32)
    action_space: dict | None = None  # the checkpoint's action space (preset + overrides); None: joints per
    # relative_joints
    source: str = field(default="<memory>", compare=False)

    def __post_init__(self):
        post_init_flow_settings(self)
        if self.normalization is not None:
            check_normalization(self.source, self.normalization, NORMALIZATION)

    def check_cameras(self, cameras: tuple[str, ...], empty: tuple[str, ...]) -> None:
        """ValueError unless every mapped model camera is one of the checkpoint's real `cameras`."""
        bad = sorted(c for c in self.cameras if c not in cameras)
        if bad:
            hint = " (empty cameras were always black and masked in training)" if set(bad) & set(empty) else ""
            raise ValueError(
                f"{self.source}: cameras: {bad} are not cameras of the checkpoint (it has {list(cameras)}){hint}"
            )

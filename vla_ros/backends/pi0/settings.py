"""Runtime settings of the π₀ backend (`config/backends/pi0.yaml`, layered as backends/settings.py
says): robot mapping and sampler.

The checkpoint says what the model is (`config.json`); this file says how our robot talks to it:
which robot camera fills which π₀ camera slot, which joints are the state/action dimensions
(dimension i is `joints[i]`, the rest up to 32 is zero padding), which of them the checkpoint
predicts relative to the current state, the chunk timing and the sampler. Errors name the file
and the key.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from vla_ros.backends.settings import SettingsBase
from vla_ros.core.robot_mapping import RobotMapping

DTYPES = ("float32", "bfloat16")


@dataclass(frozen=True)
class Pi0Settings(SettingsBase):
    KEY_GROUPS = (("joints", "delta_joints"),)

    joints: tuple[str, ...]  # robot joints of state/action dims 0..D-1, radians (the gripper as the robot reports it)
    cameras: dict[str, str]  # robot camera -> π₀ image slot; unmapped slots are masked
    delta_joints: tuple[str, ...] = ()  # joints whose actions are relative to the current state
    dt_s: float = 0.1  # seconds between chunk points
    steps: int | None = None  # Euler steps; None = the checkpoint's (LeRobot num_inference_steps), else 10
    max_guidance: float = 5.0  # RTC guidance weight clip (beta)
    checkpoint: str | None = None  # default checkpoint folder (absolute or relative to the package root)
    device: str = "cpu"
    dtype: str = "float32"  # transformer dtype: float32 | bfloat16
    norm_stats: str | None = None  # statistics file relative to the checkpoint; None = search the folder
    max_token_len: int | None = None  # override the checkpoint's prompt length
    skip_masked_slots: bool = True  # do not encode masked camera slots (same result, less compute)
    origin: str | None = None  # openpi | lerobot: toolchain that trained the checkpoint; None = detect from its files
    source: str = field(default="<memory>", compare=False)

    def __post_init__(self):
        object.__setattr__(self, "joints", tuple(self.joints))
        object.__setattr__(self, "delta_joints", tuple(self.delta_joints))
        where = self.source
        if not self.joints or len(set(self.joints)) != len(self.joints):
            raise ValueError(f"{where}: joints: need a non-empty list of distinct names, got {list(self.joints)}")
        stray = [j for j in self.delta_joints if j not in self.joints]
        if stray:
            raise ValueError(f"{where}: delta_joints: {stray} are not in joints {list(self.joints)}")
        if not self.cameras:
            raise ValueError(f"{where}: cameras: map at least one robot camera to a π₀ slot")
        slots = list(self.cameras.values())
        if len(set(slots)) != len(slots):
            raise ValueError(f"{where}: cameras: two cameras share a slot: {self.cameras}")
        if not self.dt_s > 0:
            raise ValueError(f"{where}: dt_s: must be > 0, got {self.dt_s}")
        if self.steps is not None and self.steps < 1:
            raise ValueError(f"{where}: steps: must be >= 1, got {self.steps}")
        if self.max_guidance < 0:
            raise ValueError(f"{where}: max_guidance: must be >= 0, got {self.max_guidance}")
        if self.dtype not in DTYPES:
            raise ValueError(f"{where}: dtype: must be one of {list(DTYPES)}, got {self.dtype!r}")
        if self.origin not in (None, "openpi", "lerobot"):
            raise ValueError(f"{where}: origin: must be openpi, lerobot or null, got {self.origin!r}")
        if self.max_token_len is not None and self.max_token_len < 1:
            raise ValueError(f"{where}: max_token_len: must be >= 1, got {self.max_token_len}")

    @property
    def mapping(self) -> RobotMapping:
        """The robot mapping (joints -> dims, cameras -> slots, relative joints)."""
        return RobotMapping(self.joints, self.cameras, self.delta_joints, self.source)

    def check_slots(self, slots: tuple[str, ...]) -> None:
        """ValueError unless every mapped slot is one of the model's `slots`."""
        bad = sorted(s for s in self.cameras.values() if s not in slots)
        if bad:
            raise ValueError(f"{self.source}: cameras: unknown π₀ slots {bad} (the model has {list(slots)})")

    def to_yaml(self) -> str:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "source"}
        out["joints"], out["delta_joints"] = list(self.joints), list(self.delta_joints)
        return yaml.safe_dump(out, sort_keys=False)

    @classmethod
    def load(cls, path: Path) -> Pi0Settings:
        if not path.is_file():
            raise ValueError(f"π₀ settings file not found: {path}")
        try:
            raw = yaml.safe_load(path.read_text())
        except yaml.YAMLError as exc:
            raise ValueError(f"{path}: not valid YAML ({exc})") from exc
        return cls.from_dict(raw or {}, str(path))

    @classmethod
    def from_dict(cls, raw: Any, where: str, sources: dict[str, str] | None = None) -> Pi0Settings:
        if not isinstance(raw, dict):
            raise ValueError(f"{where}: expected a mapping of settings, got {type(raw).__name__}")
        sources = sources or {}
        fields = {f.name: f for f in dataclasses.fields(cls) if f.name != "source"}
        unknown = sorted(set(raw) - set(fields))
        if unknown:
            raise ValueError(f"{where}: unknown keys {unknown} (known: {sorted(fields)})")
        missing = [k for k in ("joints", "cameras") if k not in raw]
        if missing:
            raise ValueError(f"{where}: missing keys {missing}")
        for key, value in raw.items():
            _check_type(key, value, sources.get(key, where))
        return cls(**raw, source=where)


_TYPES = {
    "joints": list,
    "delta_joints": list,
    "cameras": dict,
    "dt_s": (int, float),
    "steps": (int, type(None)),
    "max_guidance": (int, float),
    "checkpoint": (str, type(None)),
    "device": str,
    "dtype": str,
    "norm_stats": (str, type(None)),
    "max_token_len": (int, type(None)),
    "skip_masked_slots": bool,
    "origin": (str, type(None)),
}


def _check_type(key: str, value: Any, where: str) -> None:
    expected = _TYPES[key]
    ok = isinstance(value, expected) and not (
        isinstance(value, bool) and expected in (int, (int, float), (int, type(None)))
    )
    if key in ("joints", "delta_joints") and ok:
        ok = all(isinstance(v, str) for v in value)
    if key == "cameras" and ok:
        ok = all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())
    if not ok:
        raise ValueError(f"{where}: {key}: wrong type, got {value!r}")

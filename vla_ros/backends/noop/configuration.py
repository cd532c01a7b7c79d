"""Settings of the no-op backend (`backend:=noop`): the robot mapping and the image size it prepares."""

from __future__ import annotations

from dataclasses import dataclass, field

from vla_ros.backends.settings import SettingsBase


@dataclass(frozen=True)
class NoopSettings(SettingsBase):
    joints: tuple[str, ...] = ()  # joints of the chunk, in order (radians); empty: the robot config's
    cameras: tuple[str, ...] = ()  # robot cameras it reads; empty: the robot config's
    horizon: int = 50  # points per chunk
    dt_s: float = 0.1  # seconds between chunk points
    image_size: int = 224  # each frame is fitted into image_size x image_size uint8 (0: left as received)
    source: str = field(default="<memory>", compare=False)

    def __post_init__(self):
        object.__setattr__(self, "joints", tuple(self.joints))
        object.__setattr__(self, "cameras", tuple(self.cameras))
        if self.horizon < 1 or not self.dt_s > 0 or self.image_size < 0:
            raise ValueError(
                f"{self.source}: need horizon >= 1, dt_s > 0, image_size >= 0; "
                f"got {self.horizon}, {self.dt_s}, {self.image_size}"
            )

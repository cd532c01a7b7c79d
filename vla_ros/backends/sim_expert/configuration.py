"""Settings of the sim expert backend (`backend:=sim_expert`): its chunk and the camera it locates cubes in."""

from __future__ import annotations

from dataclasses import dataclass, field

from vla_ros.backends.settings import SettingsBase


@dataclass(frozen=True)
class SimExpertSettings(SettingsBase):
    horizon: int = 8  # points per chunk
    dt_s: float = 0.1  # seconds between chunk points
    camera: str = "front"  # the camera the cubes are located in: a camera of the tabletop sim (front, wrist)
    min_cube_pixels: int = 20  # fewer pixels of the target's colour: the cube is not seen, the last estimate holds
    source: str = field(default="<memory>", compare=False)

    def __post_init__(self):
        if self.horizon < 1 or not self.dt_s > 0 or self.min_cube_pixels < 1:
            raise ValueError(
                f"{self.source}: need horizon >= 1, dt_s > 0, min_cube_pixels >= 1; "
                f"got {self.horizon}, {self.dt_s}, {self.min_cube_pixels}"
            )

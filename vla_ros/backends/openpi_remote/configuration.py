"""Settings of the `openpi_remote` backend (`openpi_remote.yaml`): the server and the key mapping.

The observation keys follow one of openpi's example conventions (`keys`):

- `vla_ros`: `vla-ros serve`'s scheme (cameras, joints and image size from the server's metadata);
- `droid`: `observation/exterior_image_1_left`, `observation/wrist_image_left` (224x224 HWC),
  `observation/joint_position` (all joints but the last) + `observation/gripper_position` (the last);
- `libero`: `observation/image`, `observation/wrist_image` (224x224 HWC), `observation/state`;
- `aloha`: `images.cam_high`, `images.cam_low`, `images.cam_left_wrist`, `images.cam_right_wrist`
  (224x224 CHW), `state`;
- `custom`: `cameras`, `state` and `image_size` given explicitly.

A `.` in a key nests maps (`images.cam_high` travels as `{"images": {"cam_high": ...}}`). `cameras`
maps server image key -> robot camera; `state` maps server state key -> robot joints (concatenated
in that order). Times are seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from vla_ros.backends.settings import SettingsBase

LAYOUTS = ("hwc", "chw")


@dataclass(frozen=True)
class KeyPreset:
    """One of openpi's example observation conventions."""

    image_keys: tuple[str, ...]
    state_keys: tuple[str, ...]  # one key: all joints; two keys: all but the last, then the last
    image_size: tuple[int, int] | None
    image_layout: str = "hwc"


PRESETS: dict[str, KeyPreset] = {
    "vla_ros": KeyPreset((), ("observation/state",), None),
    "droid": KeyPreset(
        ("observation/exterior_image_1_left", "observation/wrist_image_left"),
        ("observation/joint_position", "observation/gripper_position"),
        (224, 224),
    ),
    "libero": KeyPreset(("observation/image", "observation/wrist_image"), ("observation/state",), (224, 224)),
    "aloha": KeyPreset(
        ("images.cam_high", "images.cam_low", "images.cam_left_wrist", "images.cam_right_wrist"),
        ("state",),
        (224, 224),
        "chw",
    ),
    "custom": KeyPreset((), (), None),
}


@dataclass(frozen=True)
class RemoteSettings(SettingsBase):
    """Where the server is, how the link behaves, and how observations map to the server's keys.
    Layered like every backend's settings (backends/settings.py): node parameters (`backend_settings`)
    over `<model_path>/openpi_remote.yaml` over `config/backends/openpi_remote.yaml`."""

    host: str = "127.0.0.1"
    port: int | None = 8000  # None: the host is a full ws:// or wss:// URL
    tls: bool = False  # wss://
    ca_file: str | None = None  # PEM bundle verifying the server (None: the system's)
    api_key_file: str | None = None  # file with the key sent as `Authorization: Api-Key <key>`
    timeout_s: float = 1.0  # per request: no answer by then -> no chunk for that observation
    connect_timeout_s: float = 2.0
    wait_for_server_s: float = 30.0  # how long loading waits for the server's first answer
    reconnect_backoff_s: float = 0.5  # first wait after a failed connection, doubled each time
    max_backoff_s: float = 5.0
    max_message_mb: float = 16.0
    keys: str = "vla_ros"  # observation key preset (see the module docstring)
    joints: tuple[str, ...] = ()  # robot joints of action columns 0..D-1 (vla_ros: from the server)
    cameras: dict[str, str] = field(default_factory=dict)  # server image key -> robot camera
    state: dict[str, tuple[str, ...]] = field(default_factory=dict)  # server state key -> robot joints
    image_size: tuple[int, ...] | None = None  # (H, W) images are resized with padding to
    image_layout: str | None = None  # hwc | chw (default: the preset's)
    prompt_key: str = "prompt"
    actions_key: str = "actions"
    # what the server's actions are: None = absolute joint positions (columns = `joints`), or an `action_space`
    # block of core/action_space.py (e.g. {preset: droid_joint_velocity}), applied by the shared output step
    # with the robot config's URDF and end effector
    action_space: dict | None = None
    dt_s: float | None = None  # seconds between action points (None: the server's metadata)
    source: str = field(default="<memory>", compare=False)

    def __post_init__(self):
        where = self.source
        object.__setattr__(self, "joints", tuple(self.joints))
        object.__setattr__(self, "cameras", dict(self.cameras))
        object.__setattr__(self, "state", {k: tuple(v) for k, v in dict(self.state).items()})
        if self.image_size is not None:
            object.__setattr__(self, "image_size", tuple(self.image_size))
        if self.keys not in PRESETS:
            raise ValueError(f"{where}: keys: must be one of {list(PRESETS)}, got {self.keys!r}")
        if not self.host:
            raise ValueError(f"{where}: host: must not be empty")
        if self.port is not None and not 0 < self.port < 65536:
            raise ValueError(f"{where}: port: must be in 1..65535, got {self.port}")
        for key in ("timeout_s", "connect_timeout_s", "reconnect_backoff_s", "max_backoff_s", "max_message_mb"):
            if not getattr(self, key) > 0:
                raise ValueError(f"{where}: {key}: must be > 0, got {getattr(self, key)}")
        if self.wait_for_server_s < 0:
            raise ValueError(f"{where}: wait_for_server_s: must be >= 0, got {self.wait_for_server_s}")
        if self.dt_s is not None and not self.dt_s > 0:
            raise ValueError(f"{where}: dt_s: must be > 0, got {self.dt_s}")
        from vla_ros.core.action_space import PRESETS as SPACE_PRESETS

        preset = (self.action_space or {}).get("preset")
        if preset is not None and preset not in SPACE_PRESETS:
            raise ValueError(f"{where}: action_space.preset: must be one of {sorted(SPACE_PRESETS)}, got {preset!r}")
        if self.image_layout is not None and self.image_layout not in LAYOUTS:
            raise ValueError(f"{where}: image_layout: must be one of {list(LAYOUTS)}, got {self.image_layout!r}")
        if self.image_size is not None and (len(self.image_size) != 2 or min(self.image_size) < 1):
            raise ValueError(f"{where}: image_size: must be [height, width] > 0, got {list(self.image_size)}")
        if len(set(self.joints)) != len(self.joints):
            raise ValueError(f"{where}: joints: names must be distinct, got {list(self.joints)}")
        preset = PRESETS[self.keys]
        stray = [k for k in self.cameras if preset.image_keys and k not in preset.image_keys]
        if stray:
            raise ValueError(
                f"{where}: cameras: {stray} are not image keys of preset '{self.keys}' {list(preset.image_keys)}"
            )
        unknown = [j for joints in self.state.values() for j in joints if self.joints and j not in self.joints]
        if unknown:
            raise ValueError(f"{where}: state: joints {unknown} are not in joints {list(self.joints)}")
        if self.keys not in ("vla_ros",):
            if not self.joints:
                raise ValueError(f"{where}: joints: preset '{self.keys}' needs the robot joints of the action columns")
            if not self.cameras:
                raise ValueError(
                    f"{where}: cameras: preset '{self.keys}' needs image key -> robot camera, "
                    f"e.g. {{{(preset.image_keys or ('observation/image',))[0]}: front}}"
                )
        if self.keys == "custom" and (not self.state or self.image_size is None):
            raise ValueError(
                f"{where}: keys 'custom' needs 'state' (server key -> joints) and 'image_size' [height, width]"
            )

    @property
    def url(self) -> str:
        if self.host.startswith(("ws://", "wss://")):
            return self.host if self.port is None else f"{self.host}:{self.port}"
        return f"{'wss' if self.tls else 'ws'}://{self.host}" + ("" if self.port is None else f":{self.port}")

    def state_map(self, joints: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
        """Server state key -> robot joints: the explicit `state`, else the preset's split of `joints`."""
        if self.state:
            return dict(self.state)
        keys = PRESETS[self.keys].state_keys
        if len(keys) == 1:
            return {keys[0]: tuple(joints)}
        return {keys[0]: tuple(joints[:-1]), keys[1]: tuple(joints[-1:])}

    def layout(self) -> str:
        return self.image_layout or PRESETS[self.keys].image_layout

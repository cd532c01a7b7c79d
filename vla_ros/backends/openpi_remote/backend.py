"""The `openpi_remote` backend: the policy runs on an openpi-protocol server (openpi's
`serve_policy.py` or `vla-ros serve`); `predict` is one round trip.

Settings: node parameters (`backend_settings`) over `<model_path>/openpi_remote.yaml` over the
package's `config/backends/openpi_remote.yaml` (backends/settings.py).
A failed, refused or late round trip raises BackendError: the node publishes nothing for that
observation and the executor's watchdogs hold; the next `predict` (a fresh observation)
reconnects. A chunk always carries its own observation's stamp.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from vla_ros.backends.base import Backend, BackendError
from vla_ros.backends.openpi_remote.configuration import PRESETS, RemoteSettings
from vla_ros.backends.openpi_remote.processing import RemoteProcessor
from vla_ros.backends.settings import resolve_settings, settings_layers
from vla_ros.core.robot_mapping import JointNameError, select_joints
from vla_ros.core.types import ActionChunk, Observation, PlanPrefix
from vla_ros.remote.auth import read_api_key
from vla_ros.remote.client import LinkError, LinkSettings, PolicyLink
from vla_ros.remote.schema import ACTION_SPACE, IMAGE_PREFIX, RESET_KEY

# metadata that must not change when the link reconnects (another model behind the same address)
_STABLE_METADATA = ("backend", "action_space", "horizon", "dt_s", "cameras", "joints", "image_size")


class OpenpiRemoteBackend(Backend):
    supports_prefix = False

    def __init__(self, settings: RemoteSettings, link: PolicyLink):
        self.settings = settings
        self.link = link
        self.server_metadata = dict(link.metadata or {})
        self.processor = self._processor(settings, self.server_metadata)
        self.joint_names = self.processor.joints
        self.camera_names = tuple(dict.fromkeys(self.processor.cameras.values()))
        self.dt_s = self._dt_s(settings, self.server_metadata)
        self.horizon = int(self.server_metadata.get("horizon") or 0)  # 0 until the first answer when unknown
        self._connections_checked = link.connections
        self.chunks = 0
        self._reset_pending = False  # the next request starts a new episode on a vla-ros server (reset: true)
        self.action_space = settings.action_space
        self.action_space_source = settings.source
        if self.action_space is None:  # joint positions need no robot; presets wait for bind_robot
            self.bind_robot(None)

    @staticmethod
    def _processor(settings: RemoteSettings, metadata: dict) -> RemoteProcessor:
        where = f"openpi_remote ({settings.source}, server {settings.url})"
        space = metadata.get("action_space")
        declared = (settings.action_space or {}).get("preset", ACTION_SPACE)
        if space is not None and space != declared:
            raise BackendError(
                f"{where}: the server's actions are '{space}', settings.action_space is {settings.action_space!r}"
            )
        served_joints = tuple(metadata.get("joints") or ())
        joints = settings.joints or served_joints
        if not joints:
            raise BackendError(f"{where}: the server names no joints; set 'joints'")
        if settings.keys == "vla_ros" and served_joints and served_joints != joints:
            raise BackendError(f"{where}: joints {list(joints)} differ from the server's {list(served_joints)}")
        cameras = settings.cameras
        if not cameras and settings.keys == "vla_ros":
            cameras = {IMAGE_PREFIX + c: c for c in metadata.get("cameras") or ()}
        if not cameras:
            raise BackendError(f"{where}: no cameras: set 'cameras' (server image key -> robot camera)")
        size = settings.image_size or PRESETS[settings.keys].image_size or metadata.get("image_size")
        return RemoteProcessor(
            cameras,
            settings.state_map(joints),
            tuple(joints),
            tuple(size) if size else None,
            settings.layout(),
            settings.prompt_key,
            settings.actions_key,
        )

    @staticmethod
    def _dt_s(settings: RemoteSettings, metadata: dict) -> float:
        served = metadata.get("dt_s")
        if settings.dt_s is not None and served is not None and abs(float(served) - settings.dt_s) > 1e-9:
            raise BackendError(
                f"openpi_remote ({settings.source}): dt_s {settings.dt_s} differs from the server's {served}"
            )
        dt_s = settings.dt_s if settings.dt_s is not None else served
        if dt_s is None:
            raise BackendError(
                f"openpi_remote ({settings.source}): the server does not say dt_s; set 'dt_s' (seconds between actions)"
            )
        return float(dt_s)

    def _check_reconnected(self) -> None:
        """After a reconnection, refuse a server that now serves something else."""
        if self.link.connections == self._connections_checked:
            return
        new = self.link.metadata or {}
        changed = [k for k in _STABLE_METADATA if new.get(k) != self.server_metadata.get(k)]
        if changed:
            self.link.close()
            raise BackendError(
                f"openpi_remote: after reconnecting, {self.settings.url} serves different {changed}; "
                "refusing its actions"
            )
        self._connections_checked = self.link.connections

    def predict(
        self, observation: Observation, noise: np.ndarray | None = None, prefix: PlanPrefix | None = None
    ) -> ActionChunk:
        """One round trip for `observation`; the chunk's t0 is the observation's stamp."""
        start = time.perf_counter()
        request = self.processor.request(observation, noise)
        try:
            metadata = self.link.ensure_connected()
            self._check_reconnected()
            if self._reset_pending and metadata.get("sessions") == "per_connection":
                request[RESET_KEY] = True
            response, _timing = self.link.infer(request)
        except LinkError as exc:
            raise BackendError(f"openpi_remote: {exc}") from exc
        self._reset_pending = False
        if self.output is None:
            raise BackendError("openpi_remote: call bind_robot first (load_backend does)")
        actions = self.processor.positions(response, self.output.action_dim)
        self.horizon = actions.shape[0]
        self.chunks += 1
        try:
            q = select_joints(observation.joint_names, observation.joint_positions, self.joint_names, "observation")
        except JointNameError as exc:
            raise BackendError(f"openpi_remote: {exc}") from exc
        return self.output.to_chunk(
            actions, q.astype(np.float64), observation.stamp_s, self.dt_s, prefix, time.perf_counter() - start
        )

    def diagnostics(self) -> dict[str, str]:
        """Link state and the last round trip split into server inference and network (milliseconds)."""
        t = self.link.last_timing
        ms = (lambda v: f"{v * 1e3:.2f}") if t else (lambda v: "nan")
        return {
            "link_state": self.link.state,
            "link_url": self.settings.url,
            "link_connections": str(self.link.connections),
            "link_errors": str(self.link.errors),
            "link_last_error": self.link.last_error,
            "server_inference_ms": ms(t.server_infer_s if t else 0),
            "server_queue_ms": ms(t.server_queue_s if t else 0),
            "network_ms": ms(t.network_s if t else 0),
            "round_trip_ms": ms(t.round_trip_s if t else 0),
        }

    def reset(self) -> None:
        """A new episode: the next request asks a `vla-ros serve` server (metadata `sessions: per_connection`) to
        start this connection's episode afresh (`reset: true`); openpi's protocol has no reset, other servers are
        told nothing."""
        self._reset_pending = True

    def close(self) -> None:
        """Close the connection; the backend cannot predict afterwards."""
        self.link.close()


def connect_with_wait(link: PolicyLink, wait_s: float) -> None:
    """Connect, retrying until `wait_s` has passed (the server may still be loading its model)."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            link.connect()
            return
        except LinkError as exc:
            if time.monotonic() + 0.2 > deadline or "refused the connection: HTTP 401" in str(exc):
                raise BackendError(f"openpi_remote: {exc} (waited {wait_s} s)") from exc
            time.sleep(0.2)


def load_openpi_remote_backend(
    model_path: Path | None, overrides: dict[str, Any] | None = None, seed: int = 0, robot=None
) -> OpenpiRemoteBackend:
    """Connect to the server the settings name and build the backend from its metadata.

    Settings: `overrides` (node parameters) over `<model_path>/openpi_remote.yaml` over the
    package's `config/backends/openpi_remote.yaml`. The seed belongs to the server (`vla-ros serve --seed`).
    """
    settings, sources = resolve_settings(RemoteSettings, settings_layers("openpi_remote", model_path, overrides or {}))
    try:
        api_key = read_api_key(settings.api_key_file) if settings.api_key_file else None
    except ValueError as exc:
        raise BackendError(f"openpi_remote ({sources.get('api_key_file')}): api_key_file: {exc}") from exc
    link = PolicyLink(
        LinkSettings(
            settings.url,
            api_key,
            settings.ca_file,
            settings.connect_timeout_s,
            settings.timeout_s,
            settings.reconnect_backoff_s,
            settings.max_backoff_s,
            int(settings.max_message_mb * 2**20),
        )
    )
    connect_with_wait(link, settings.wait_for_server_s)
    try:
        backend = OpenpiRemoteBackend(settings, link)
    except BackendError:
        link.close()
        raise
    backend.settings_sources = sources
    return backend

"""The robot side of the link: one websocket to an openpi-protocol policy server.

`PolicyLink.infer` sends one observation map and waits at most `timeout_s` for its answer. A
request is never retried: on a timeout, a closed connection or an error frame the connection is
dropped (a late answer can then never be taken for a newer observation's), `infer` raises
`LinkError`, and the next call reconnects, no sooner than the backoff allows (doubling from
`reconnect_backoff_s` up to `max_backoff_s`, reset by a successful connection).
"""

from __future__ import annotations

import ssl
import time
from dataclasses import dataclass
from typing import Any

import websockets
from websockets.sync.client import ClientConnection, connect

from vla_ros.remote.auth import HEADER, header_value
from vla_ros.remote.wire import DEFAULT_MAX_MESSAGE_BYTES, WireError, packb, unpackb

CONNECTED, DISCONNECTED, BACKOFF = "connected", "disconnected", "backoff"


class LinkError(RuntimeError):
    """The server could not be reached or did not answer in time; the text says which and why."""


@dataclass(frozen=True)
class LinkSettings:
    """url: ws://host:port or wss://host:port; api_key: sent as `Authorization: Api-Key <key>`;
    ca_file: PEM bundle that verifies a wss:// server (None: the system's); times in seconds."""

    url: str
    api_key: str | None = None
    ca_file: str | None = None
    connect_timeout_s: float = 2.0
    timeout_s: float = 1.0
    reconnect_backoff_s: float = 0.5
    max_backoff_s: float = 5.0
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES


@dataclass(frozen=True)
class LinkTiming:
    """One round trip, seconds: total, the server's inference and queueing, and the rest (network,
    serialisation, websocket framing)."""

    round_trip_s: float
    server_infer_s: float
    server_queue_s: float

    @property
    def network_s(self) -> float:
        return max(0.0, self.round_trip_s - self.server_infer_s - self.server_queue_s)


class PolicyLink:
    """A websocket client of openpi's protocol, with timeouts and reconnection (one caller thread)."""

    def __init__(self, settings: LinkSettings):
        self.settings = settings
        self.metadata: dict[str, Any] | None = None
        self._ws: ClientConnection | None = None
        self._next_attempt_s = 0.0
        self._backoff_s = settings.reconnect_backoff_s
        self.connections = 0
        self.errors = 0
        self.last_error = ""
        self.last_timing: LinkTiming | None = None

    @property
    def state(self) -> str:
        if self._ws is not None:
            return CONNECTED
        return BACKOFF if time.monotonic() < self._next_attempt_s else DISCONNECTED

    def _ssl(self) -> ssl.SSLContext | None:
        if not self.settings.url.startswith("wss://"):
            return None
        return ssl.create_default_context(cafile=self.settings.ca_file)

    def _fail(self, text: str, backoff: bool) -> LinkError:
        """Drop the connection, remember why, and return the error to raise."""
        self.close()
        self.errors += 1
        self.last_error = text
        if backoff:
            self._next_attempt_s = time.monotonic() + self._backoff_s
            self._backoff_s = min(self._backoff_s * 2, self.settings.max_backoff_s)
        return LinkError(text)

    def connect(self) -> dict[str, Any]:
        """Open the connection and read the server's metadata (LinkError if unreachable or refused)."""
        s = self.settings
        headers = {HEADER: header_value(s.api_key)} if s.api_key else None
        try:
            ws = connect(
                s.url,
                compression=None,
                max_size=s.max_message_bytes,
                additional_headers=headers,
                open_timeout=s.connect_timeout_s,
                ssl=self._ssl(),
                proxy=None,
                close_timeout=min(1.0, s.connect_timeout_s),
                legacy=True,
            )
        except websockets.InvalidStatus as exc:
            raise self._fail(
                f"{s.url} refused the connection: HTTP {exc.response.status_code} "
                f"{exc.response.body.decode(errors='replace').strip()}",
                True,
            ) from exc
        except (OSError, TimeoutError, websockets.WebSocketException) as exc:
            raise self._fail(f"cannot connect to {s.url}: {exc!r}", True) from exc
        self._ws = ws
        try:
            metadata = unpackb(ws.recv(timeout=s.connect_timeout_s))
        except (TimeoutError, websockets.ConnectionClosed, WireError) as exc:
            raise self._fail(f"{s.url} sent no valid metadata: {exc!r}", True) from exc
        if not isinstance(metadata, dict):
            raise self._fail(f"{s.url} sent metadata of type {type(metadata).__name__}, expected a map", True)
        self.metadata = metadata
        self.connections += 1
        self._backoff_s = s.reconnect_backoff_s
        return metadata

    def ensure_connected(self) -> dict[str, Any]:
        """The server's metadata, connecting first if needed (LinkError while backing off or unreachable)."""
        if self._ws is None:
            wait_s = self._next_attempt_s - time.monotonic()
            if wait_s > 0:
                raise LinkError(
                    f"link to {self.settings.url} down ({self.last_error}); next connection attempt in {wait_s:.2f} s"
                )
            self.connect()
        return self.metadata

    def infer(self, request: dict[str, Any]) -> tuple[dict[str, Any], LinkTiming]:
        """Send `request`, return the server's answer and the timing (LinkError on any failure)."""
        s = self.settings
        self.ensure_connected()
        start = time.perf_counter()
        try:
            self._ws.send(packb(request))
            answer = self._ws.recv(timeout=s.timeout_s)
        except TimeoutError as exc:
            raise self._fail(f"{s.url} did not answer within timeout_s={s.timeout_s}", False) from exc
        except websockets.ConnectionClosed as exc:
            raise self._fail(f"connection to {s.url} lost: {exc}", True) from exc
        except (OSError, websockets.WebSocketException) as exc:
            raise self._fail(f"connection to {s.url} failed: {exc!r}", True) from exc
        round_trip_s = time.perf_counter() - start
        if isinstance(answer, str):
            reason = answer.strip()[:500] or "(the server gave no reason)"
            raise self._fail(f"{s.url} refused the request: {reason}", False)
        try:
            response = unpackb(answer)
        except WireError as exc:
            raise self._fail(f"{s.url} sent an invalid answer: {exc}", False) from exc
        if not isinstance(response, dict):
            raise self._fail(f"{s.url} answered with {type(response).__name__}, expected a map", False)
        timing = response.get("server_timing") if isinstance(response.get("server_timing"), dict) else {}
        self.last_timing = LinkTiming(
            round_trip_s, float(timing.get("infer_ms", 0.0)) / 1e3, float(timing.get("queue_ms", 0.0)) / 1e3
        )
        return response, self.last_timing

    def close(self) -> None:
        if self._ws is not None:
            ws, self._ws = self._ws, None
            try:
                ws.close()
            except Exception:  # noqa: BLE001 - the socket may already be gone
                pass

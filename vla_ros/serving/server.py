"""`vla-ros serve`: any vla_ros backend behind openpi's websocket policy protocol.

Protocol (what `openpi_client.websocket_client_policy.WebsocketClientPolicy` speaks): on connect
the server sends its metadata (one binary msgpack frame); then, per request, the client sends one
observation map and receives one map with `actions` and `server_timing`. A request the server
cannot answer gets a text frame with the reason, then the connection is closed (as openpi's server
does), a message over the size limit included; other connections are not affected. Keys:
`vla_ros.remote.schema` (parsed by `vla_ros.serving.requests`). `GET /healthz` answers 200. With an
API key, a handshake without `Authorization: Api-Key <key>` is refused with HTTP 401 before any inference.

Each connection is a session: its own episode state of the backend (`Backend.new_episode_state`: the
observation history window and the noise generator, seeded with the server's seed as a freshly loaded
backend is), swapped in for its requests on the one inference thread; a request with `reset: true`
starts a new one, a disconnect drops it. The model is loaded once. Requests carry no plan prefix, so
none is shared either.
"""

from __future__ import annotations

import asyncio
import http
import json
import logging
import ssl
import time
from dataclasses import dataclass
from typing import Any

import websockets
from websockets.asyncio.server import Request, Response, ServerConnection, serve
from websockets.frames import CloseCode
from websockets.protocol import State
from websockets.server import ServerProtocol

from vla_ros.backends.base import Backend
from vla_ros.remote import schema
from vla_ros.remote.auth import HEADER, key_matches, read_api_key
from vla_ros.remote.wire import DEFAULT_MAX_MESSAGE_BYTES, WireError, packb, unpackb
from vla_ros.serving import requests
from vla_ros.serving.batching import Batcher, batching_mode

log = logging.getLogger("vla_ros.serve")


@dataclass(frozen=True)
class ServeSettings:
    """host/port to listen on (port 0: any free port); api_key: required key or None; certfile/keyfile:
    PEM paths for TLS (wss://); max_batch / batch_wait_s: batching; max_message_bytes: per message;
    inference_delay_s: artificial latency per forward pass (to rehearse a slow link or GPU)."""

    host: str = "127.0.0.1"
    port: int = 8000
    api_key: str | None = None
    certfile: str | None = None
    keyfile: str | None = None
    max_batch: int = 1
    batch_wait_s: float = 0.002
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    inference_delay_s: float = 0.0  # artificial latency added to every forward pass
    seed: int = 0  # each session's noise generator starts from it (as the backend loaded with it)


@dataclass
class Session:
    """One connection's episode: the backend's episode state (history window, noise generator) and counts."""

    number: int
    state: dict[str, Any]
    requests: int = 0
    episodes: int = 1


class _ReasonBeforeClose(ServerProtocol):
    """websockets' server protocol that, on a message over `max_size`, sends the reason as a text frame before
    its close frame (openpi's convention for every refusal), so a client's `recv` reads why."""

    def fail(self, code: int, reason: str = "") -> None:
        if code == CloseCode.MESSAGE_TOO_BIG and self.state is State.OPEN:
            self.send_text(
                f"bad request: message too big: {reason or 'over the limit'} (vla-ros serve --max-message-mb)".encode()
            )
        super().fail(code, reason)


class _Connection(ServerConnection):
    def __init__(self, protocol: ServerProtocol, *args, **kwargs):
        protocol.__class__ = _ReasonBeforeClose  # the same object, with the override above
        super().__init__(protocol, *args, **kwargs)


def server_ssl_context(certfile: str, keyfile: str | None) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certfile, keyfile)
    return context


class PolicyServer:
    """Serves `backend` (registered as `backend_name`) to any number of websocket clients."""

    def __init__(self, backend: Backend, backend_name: str, settings: ServeSettings = ServeSettings()):
        self.backend = backend
        self.settings = settings
        self.metadata = requests.metadata(backend, backend_name, batching_mode(backend), settings.max_batch)
        self._metadata_bytes = packb(self.metadata)
        self.batcher = Batcher(backend, settings.max_batch, settings.batch_wait_s, settings.inference_delay_s)
        self.port: int | None = None
        self.requests_served = 0
        self.requests_refused = 0
        self.sessions: dict[int, Session] = {}  # open connections' sessions, by number
        self._sessions_started = 0

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        """Health check, and the API key check before the websocket handshake completes."""
        if request.path == "/healthz":
            return connection.respond(http.HTTPStatus.OK, "OK\n")
        key = self.settings.api_key
        if key is not None:
            given = request.headers.get(HEADER, "")
            if not key_matches(given, key):
                self.requests_refused += 1
                reason = "missing API key" if not given else "wrong API key"
                log.warning("refused %s: %s", connection.remote_address, reason)
                return connection.respond(
                    http.HTTPStatus.UNAUTHORIZED, f"{reason} (send 'Authorization: Api-Key <key>')\n"
                )
        return None

    async def _refuse(self, websocket: ServerConnection, reason: str, code: CloseCode) -> None:
        """openpi's error convention: a text frame with the reason, then close."""
        self.requests_refused += 1
        reason = reason.strip() or f"refused ({code.name})"
        log.warning("%s: %s", websocket.remote_address, reason)
        try:
            await websocket.send(reason)
            await websocket.close(code, reason.encode()[:120].decode(errors="ignore"))  # close reasons: <= 123 bytes
        except websockets.ConnectionClosed:
            pass

    async def _handler(self, websocket: ServerConnection) -> None:
        self.batcher.clients += 1
        self._sessions_started += 1
        session = Session(self._sessions_started, self.backend.new_episode_state(self.settings.seed))
        self.sessions[session.number] = session
        log.info("session %d opened by %s", session.number, websocket.remote_address)
        try:
            await self._serve_connection(websocket, session)
        finally:
            self.batcher.clients -= 1
            del self.sessions[session.number]
            log.info("session %d ended (%d requests, %d episodes)", session.number, session.requests, session.episodes)

    async def _serve_connection(self, websocket: ServerConnection, session: Session) -> None:
        await websocket.send(self._metadata_bytes)
        prev_total_ms = None
        while True:
            try:
                message = await websocket.recv()
            except websockets.ConnectionClosed:
                return
            started = time.perf_counter()
            if isinstance(message, str):
                await self._refuse(
                    websocket, "bad request: expected a binary msgpack frame, got text", CloseCode.UNSUPPORTED_DATA
                )
                return
            try:
                request = unpackb(message)
                observation, noise = requests.parse_request(request, self.backend)
                reset = schema.wants_reset(request)
            except (WireError, schema.RequestError) as exc:
                await self._refuse(websocket, f"bad request: {exc}", CloseCode.INVALID_DATA)
                return
            if reset and session.requests:
                session.state = self.backend.new_episode_state(self.settings.seed)
                session.episodes += 1
            session.requests += 1
            result = await self.batcher.submit(observation, noise, session.state)
            if isinstance(result.chunk, Exception):
                await self._refuse(websocket, f"inference failed: {result.chunk!r}", CloseCode.INTERNAL_ERROR)
                return
            timing = {
                "infer_ms": result.infer_s * 1e3,
                "queue_ms": result.queue_s * 1e3,
                "batch_size": result.batch_size,
            }
            if prev_total_ms is not None:
                timing["prev_total_ms"] = prev_total_ms
            try:
                await websocket.send(packb({schema.ACTIONS_KEY: result.chunk.positions, schema.TIMING_KEY: timing}))
            except websockets.ConnectionClosed:
                return
            self.requests_served += 1
            prev_total_ms = (time.perf_counter() - started) * 1e3

    async def run(self, ready: asyncio.Event | None = None, on_ready=None) -> None:
        """Serve until cancelled; `on_ready(url)` is called once listening."""
        s = self.settings
        context = server_ssl_context(s.certfile, s.keyfile) if s.certfile else None
        self.batcher.start()
        try:
            async with serve(
                self._handler,
                s.host,
                s.port,
                compression=None,
                max_size=s.max_message_bytes,
                process_request=self._process_request,
                ssl=context,
                create_connection=_Connection,
            ) as server:
                self.port = next(iter(server.sockets)).getsockname()[1]
                if on_ready is not None:
                    on_ready(f"{'wss' if context else 'ws'}://{s.host}:{self.port}")
                if ready is not None:
                    ready.set()
                await server.serve_forever()
        finally:
            await self.batcher.close()


def serve_main(args) -> int:
    """`vla-ros serve`: load the backend, print one JSON line when listening, serve until interrupted."""
    from vla_ros.backends.base import BackendError, load_backend

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    from vla_ros.backends.action_output import robot_body
    from vla_ros.config import load_robot_config
    from vla_ros.paths import resolve_model_path

    try:
        api_key = read_api_key(args.api_key_file) if args.api_key_file else None
        overrides = {"device": args.device} if args.device else {}
        robot = robot_body(load_robot_config(args.robot)) if args.robot else None
        backend = load_backend(
            args.backend,
            resolve_model_path(args.model_path),
            overrides,
            seed=args.seed,
            num_threads=args.num_threads or 0,
            robot=robot,
        )
    except (BackendError, ValueError, FileNotFoundError) as exc:
        log.error("%s", exc)
        return 2
    settings = ServeSettings(
        args.host,
        args.port,
        api_key,
        args.certfile,
        args.keyfile,
        args.max_batch,
        args.batch_wait_ms / 1e3,
        int(args.max_message_mb * 2**20),
        args.inference_delay_s,
        args.seed,
    )
    server = PolicyServer(backend, args.backend, settings)

    def ready(url: str) -> None:
        print(
            json.dumps(
                {
                    "serving": url,
                    "port": server.port,
                    **{k: server.metadata[k] for k in ("backend", "horizon", "batching")},
                }
            ),
            flush=True,
        )

    try:
        asyncio.run(server.run(on_ready=ready))
    except KeyboardInterrupt:
        pass
    return 0

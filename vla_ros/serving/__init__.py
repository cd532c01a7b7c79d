"""`vla-ros serve`: any vla_ros backend behind openpi's websocket protocol (the server, its request
parsing and batching, and the server as a child process for the remote demo, tests and benchmarks)."""

from vla_ros.remote import DEFAULT_MAX_MESSAGE_MB


def add_serve_arguments(parser) -> None:
    """The `vla-ros serve` options (importable without the server's dependencies: `vla-ros --help` and
    `vla-ros convert` run where websockets is not installed)."""
    parser.add_argument("--backend", required=True, help="backend name (octo, openvla, pi0, ...)")
    parser.add_argument(
        "--model-path", required=True, help="checkpoint folder (relative: the working directory, else the package)"
    )
    parser.add_argument(
        "--robot",
        default="",
        help="robot config (name or YAML path) whose joints, cameras, URDF and end effector the checkpoint's "
        "actions are converted with; needed for end-effector checkpoints (default: joint spaces only)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface)")
    parser.add_argument("--port", type=int, default=8000, help="port (0: any free port, printed when listening)")
    parser.add_argument("--api-key-file", default=None, help="file holding the key clients must send")
    parser.add_argument("--certfile", default=None, help="PEM certificate: serve wss:// (TLS)")
    parser.add_argument("--keyfile", default=None, help="PEM private key of --certfile (if not inside it)")
    parser.add_argument("--max-batch", type=int, default=1, help="requests run in one forward pass at most")
    parser.add_argument("--batch-wait-ms", type=float, default=2.0, help="how long the first request waits for others")
    parser.add_argument("--max-message-mb", type=float, default=DEFAULT_MAX_MESSAGE_MB, help="largest accepted message")
    parser.add_argument(
        "--inference-delay-s", type=float, default=0.0, help="artificial latency added to every forward pass"
    )
    parser.add_argument("--device", default=None, help="torch device for the backend (default: its settings')")
    parser.add_argument("--seed", type=int, default=0, help="sampler seed")
    parser.add_argument("--num-threads", type=int, default=None, help="torch CPU threads (default: torch's)")

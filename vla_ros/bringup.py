"""Pip-only bring-up: the nodes of `policy.launch.py`, started as subprocesses with `--ros-args`.

    python -m vla_ros.bringup robot:=sim [backend:=octo] [model_path:=...] [device:=...]
                              [use_sim:=true] [autostart:=true] [respawn:=false]
                              [dds_profile:=shm|shm_loopback|none|/path.xml]

Same node list, parameters and remaps as the launch file (both come from
`vla_ros.launch_description`), the lifecycle manager included: it configures and activates the
managed nodes (`autostart`) and reports one that fails. SIGINT (Ctrl-C), SIGTERM and SIGHUP stop
every node (SIGINT, then SIGTERM, then SIGKILL; the executor brakes to rest first); a node that
dies is reported with its exit code and the others are stopped — or, with `respawn:=true`, it is
restarted (and the lifecycle manager configures and activates it again). No node outlives the bring-up,
even a SIGKILLed one: each child asks the kernel for SIGTERM when its parent dies.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import yaml

from vla_ros.launch_description import (
    LAUNCH_ARGUMENTS,
    NodeSpec,
    dds_environment,
    params_yaml,
    respawn_from_launch_arguments,
    specs_from_launch_arguments,
)

PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _die_with_parent(parent_pid: int):
    """preexec_fn: SIGTERM this child when the bring-up dies, however it dies (Linux)."""

    def set_death_signal() -> None:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent_pid:  # the parent died before prctl took effect
            os.kill(os.getpid(), signal.SIGTERM)

    return set_death_signal


class Bringup:
    """Owns the node processes of one bring-up."""

    def __init__(
        self,
        specs: list[NodeSpec],
        log_dir: Path | None = None,
        env: dict[str, str] | None = None,
        respawn: bool = False,
    ):
        """respawn: restart a node that exits (checked every 0.2 s), reported on stderr and counted
        in `restarts`; the lifecycle manager brings it up again (autostart)."""
        self.specs = specs
        self.env = {**os.environ, **(env or {})}
        self._tmp = tempfile.TemporaryDirectory(prefix="vla_ros_bringup_")
        self.log_dir = log_dir
        self.procs: dict[str, subprocess.Popen] = {}
        self.respawn = respawn
        self.restarts: dict[str, int] = {}
        self._stopping = threading.Event()

    def start(self) -> None:
        for spec in self.specs:
            self._spawn(spec)
        if self.respawn:
            threading.Thread(target=self._respawn_loop, name="respawn", daemon=True).start()

    def _spawn(self, spec: NodeSpec) -> None:
        params_file = Path(self._tmp.name) / f"{spec.name}.yaml"
        params_file.write_text(yaml.safe_dump(params_yaml(spec)))
        out = None
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            out = open(self.log_dir / f"{spec.name}.log", "a")  # noqa: SIM115 - closed with the process
        self.procs[spec.name] = subprocess.Popen(
            spec.command(str(params_file)),
            env=self.env,
            stdout=out,
            stderr=subprocess.STDOUT if out else None,
            start_new_session=True,
            preexec_fn=_die_with_parent(os.getpid()),
        )

    def _respawn_loop(self) -> None:
        while not self._stopping.wait(0.2):
            for spec in self.specs:
                code = self.procs[spec.name].poll()
                if code is None or self._stopping.is_set():
                    continue
                self.restarts[spec.name] = self.restarts.get(spec.name, 0) + 1
                print(
                    f"[bringup] {spec.name} exited with code {code}; respawning (restart {self.restarts[spec.name]})",
                    file=sys.stderr,
                    flush=True,
                )
                self._spawn(spec)

    def dead(self) -> dict[str, int]:
        """Nodes that have exited, with their exit codes."""
        return {name: p.returncode for name, p in self.procs.items() if p.poll() is not None}

    def stop(self, timeout_s: float = 15.0) -> None:
        """SIGINT every node, then SIGTERM, then SIGKILL, each after `timeout_s` seconds: a node
        finishes its transition in progress (a model load), brakes to rest and exits on the first."""
        self._stopping.set()
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
            alive = [p for p in self.procs.values() if p.poll() is None]
            if not alive:
                break
            for p in alive:
                try:
                    os.killpg(p.pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline and any(p.poll() is None for p in alive):
                time.sleep(0.05)
        self._tmp.cleanup()

    def __enter__(self) -> "Bringup":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def parse_launch_args(argv: list[str]) -> dict[str, str]:
    """`name:=value` arguments, as ros2 launch takes them."""
    args = {}
    for a in argv:
        if ":=" not in a:
            raise SystemExit(f"argument '{a}' is not of the form name:=value")
        k, v = a.split(":=", 1)
        args[k] = v
    return args


def usage() -> str:
    """`--help`: the launch arguments with their defaults and meanings."""
    lines = [__doc__.split("\n\n")[1], "", "arguments (name:=value):"]
    for name, (default, meaning) in LAUNCH_ARGUMENTS.items():
        lines.append(f"  {name:12s} {meaning}" + ("" if "default" in meaning else f" (default: {default or 'none'})"))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if any(a in ("-h", "--help") for a in argv):
        print(usage())
        return 0
    try:
        args = parse_launch_args(argv)
        specs = specs_from_launch_arguments(args)
        env = dds_environment(args.get("dds_profile", LAUNCH_ARGUMENTS["dds_profile"][0]))
        respawn = respawn_from_launch_arguments(args)
    except ValueError as exc:  # ConfigError too
        print(f"[bringup] {exc}", file=sys.stderr, flush=True)
        return 2
    stop = {"signal": None}

    def on_signal(signum, _frame):
        stop["signal"] = signal.Signals(signum).name

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # set even if inherited as ignored
        signal.signal(sig, on_signal)
    bringup = Bringup(specs, env=env, respawn=respawn)
    bringup.start()
    dds = ", ".join(f"{k}={v}" for k, v in env.items()) or "DDS profile left as the environment has it"
    print(f"[bringup] started {[s.name for s in specs]} ({dds}); Ctrl-C to stop", flush=True)
    code = 0
    try:
        while stop["signal"] is None:
            dead = {} if respawn else bringup.dead()
            if dead:
                print(f"[bringup] node(s) exited: {dead}; stopping the others", file=sys.stderr, flush=True)
                code = 1
                break
            time.sleep(0.2)
        else:
            print(f"[bringup] {stop['signal']}: stopping", flush=True)
    finally:
        bringup.stop()
    return code


if __name__ == "__main__":
    sys.exit(main())

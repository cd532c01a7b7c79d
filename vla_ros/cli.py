"""`vla-ros COMMAND` (also `python -m vla_ros.cli COMMAND`): `vla-ros --help` lists the commands, `vla-ros COMMAND
--help` their options."""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from vla_ros.serving import add_serve_arguments


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _demo(args) -> int:
    from vla_ros.demo import run_demo

    log = _log
    if args.remote:
        return _demo_remote(args, log)
    summary = run_demo(
        args.episodes,
        args.first_seed,
        args.run_dir,
        args.model_path,
        episode_timeout_s=args.episode_timeout_s,
        blend_mode=args.blend,
        inference_delay_s=args.inference_delay_s,
        backend=args.backend,
        log=log,
        record=args.record,
        viz=args.viz,
        output=args.output,
        bypass_executor=args.bypass_executor,
        domain_id=args.domain_id,
    )
    return _demo_result(summary, args)


def _demo_result(summary: dict, args) -> int:
    short = {k: v for k, v in summary.items() if k != "episodes_detail"}
    print(json.dumps(short), flush=True)
    return 0 if summary["success_rate"] >= args.min_success_rate else 1


def _soak(args) -> int:
    from vla_ros.soak import FAULTS, run_soak

    report = run_soak(
        args.minutes,
        args.run_dir,
        args.seed,
        transport=args.transport,
        faults=tuple(args.faults) if args.faults else FAULTS,
        domain_id=args.domain_id,
        log=lambda m: print(m, file=sys.stderr, flush=True),
    )
    print(json.dumps(report), flush=True)
    return (
        0
        if report["limit_violations"] == 0
        and not any(n["fds"] and n["fds"][1] > n["fds"][0] for n in report["nodes"].values())
        else 1
    )


def _demo_remote(args, log) -> int:
    """The demo with the policy node's backend `openpi_remote`, talking to `vla-ros serve` in another process."""
    from vla_ros.config import load_robot_config
    from vla_ros.demo import run_demo
    from vla_ros.paths import resolve_package_path
    from vla_ros.serving.local_server import ServedPolicy, write_remote_settings

    policy = load_robot_config("sim").policy
    run_dir = (args.run_dir or Path("runs") / time.strftime("demo-remote-%Y%m%d-%H%M%S")).resolve()
    model_path = resolve_package_path(args.model_path or policy.get("model_path", "models/demo"))
    backend = args.backend or policy.get("backend", "octo")
    with ServedPolicy(backend, model_path, run_dir / "logs" / "serve.log") as served:
        log(f"serving {model_path} at {served.url}")
        settings = write_remote_settings(run_dir / "remote_policy", served.port)
        summary = run_demo(
            args.episodes,
            args.first_seed,
            run_dir,
            str(settings),
            episode_timeout_s=args.episode_timeout_s,
            blend_mode=args.blend,
            inference_delay_s=args.inference_delay_s,
            backend="openpi_remote",
            log=log,
            output=args.output,
            bypass_executor=args.bypass_executor,
            domain_id=args.domain_id,
        )
    summary["remote"] = {"server": served.url, "served_backend": backend, "model_path": str(model_path)}
    return _demo_result(summary, args)


def _compare_blends(args) -> int:
    """The demo for every (delay, blend mode): one markdown table row each."""
    import numpy as np

    from vla_ros.demo import run_demo

    log = _log
    base = args.run_dir or Path("runs") / time.strftime("blends-%Y%m%d-%H%M%S")
    print(
        "| inference delay | blend mode | success | max jerk (rad/s^3) | RMS jerk (rad/s^3) | switch jump p50 / max "
        "(rad) | switch jump p50 / p90 / max at a running plan (rad), switches |"
    )
    print("|---|---|---|---|---|---|---|")
    for delay in args.delays:
        for mode in args.modes:
            s = run_demo(
                args.episodes,
                args.first_seed,
                base / f"{mode}-{int(delay * 1000)}ms",
                domain_id=args.domain_id,
                blend_mode=mode,
                inference_delay_s=delay,
                log=log,
            )
            m = s["smoothness"]
            jumps = np.load(Path(s["run_dir"]) / "executor_run.npz")["switch_jump"]
            running = jumps[jumps > 0]  # a chunk that found no plan (start, or the plan ran out) records 0
            at_plan = " / ".join(f"{np.percentile(running, q):.4f}" for q in (50, 90, 100)) if running.size else "n/a"
            print(
                f"| {delay * 1000:.0f} ms | {mode} | {s['success_rate']:.2f} | {m['max_jerk']:.1f} | "
                f"{m['rms_jerk']:.2f} | {m['switch_jump_p50']:.4f} / {m['switch_jump_max']:.4f} | "
                f"{at_plan}, {running.size} of {jumps.size} |",
                flush=True,
            )
    return 0


def _plot(args) -> int:
    from vla_ros.report import load_run, plot_run, smoothness

    run = load_run(args.run)
    out = plot_run(run, args.out or args.run.with_suffix(".png"), tuple(args.window) if args.window else None)
    print(json.dumps({"plot": str(out), **smoothness(run)}))
    return 0


def _train(args) -> int:
    from vla_ros.backends.octo.checkpoint import save_checkpoint
    from vla_ros.evaluation import ExpertBackend, success_rate
    from vla_ros.sim.recorder import RecorderSettings, record
    from vla_ros.training.train import (
        ACTION_SPACES,
        TrainSettings,
        backend_from,
        load_dataset,
        make_config,
        train,
        write_model_card,
    )

    start = time.monotonic()
    if args.dataset and not Path(args.dataset).exists() and Path(args.dataset).suffix != ".npz":
        _log(f"--dataset {args.dataset}: no such LeRobotDataset folder (a new expert recording needs a .npz path)")
        return 2
    rec = RecorderSettings(episodes=args.episodes)
    dt_s, recorded = rec.dt_s, None
    if args.dataset and Path(args.dataset).is_dir():  # a LeRobotDataset (the recorder's lerobot/, vla-ros export)
        from vla_ros.training.lerobot_data import load_lerobot

        data, dt_s, recorded = load_lerobot(Path(args.dataset), horizon=rec.horizon, outcomes=tuple(args.outcomes))
        summary = {}
        _log(f"training set: {recorded}")
    else:
        with tempfile.TemporaryDirectory() as tmp:
            data_path = Path(args.dataset) if args.dataset else Path(tmp) / "demos.npz"
            summary = (
                record(rec, data_path) if not (args.dataset and data_path.is_file()) else {"episodes": rec.episodes}
            )
            data = load_dataset(data_path)
    cfg = make_config(data, dt_s, ACTION_SPACES[args.action_space])
    settings = TrainSettings(
        budget_s=args.budget_s, seed=args.seed, threads=args.threads, lr=args.lr, init_from=args.init_from
    )
    model, stats, info = train(data, cfg, settings)
    out = Path(args.out)
    save_checkpoint(out, model, cfg, stats)
    seeds = list(range(args.eval_first_seed, args.eval_first_seed + args.eval_episodes))
    backend = backend_from(model, cfg, stats)
    info.update(
        eval_success_rate=success_rate(lambda sim: backend, seeds),
        expert_eval_success_rate=success_rate(ExpertBackend, seeds),
        eval_episodes=len(seeds),
        episodes=recorded["episodes"] if recorded else rec.episodes,
        samples=int(len(data["state"])),
        dataset=recorded,
        init_from=args.init_from,
        noise_rad=rec.noise_rad,
        instructions=[str(s) for s in data["instructions"]],
        image_size=cfg.image_size,
        horizon=cfg.horizon,
        dt_s=cfg.dt_s,
        action_space=args.action_space,
        action_space_text=(
            "arm joints relative to the state"
            if args.action_space == "joint"
            else f"action space {cfg.action_space}: end-effector deltas of the tool, base frame, through IK"
        ),
        batch_size=settings.batch_size,
        threads=settings.threads,
        total_seconds=round(time.monotonic() - start, 1),
        command=" ".join(["python -m vla_ros.cli train", *sys.argv[2:]]),
        expert_recording_success_rate=summary.get("expert_success_rate"),
    )
    write_model_card(out, info)
    print(json.dumps({k: info[k] for k in ("eval_success_rate", "expert_eval_success_rate", "steps", "total_seconds")}))
    return 0


def _evaluate(args) -> int:
    from vla_ros.backends.action_output import robot_body
    from vla_ros.backends.base import load_backend
    from vla_ros.backends.settings import parse_overrides
    from vla_ros.config import load_robot_config
    from vla_ros.evaluation import ExpertBackend, success_rate
    from vla_ros.launch_description import policy_parameters
    from vla_ros.paths import resolve_package_path

    seeds = list(range(args.first_seed, args.first_seed + args.episodes))
    if args.expert:
        rate = success_rate(ExpertBackend, seeds)
    else:
        robot = load_robot_config("sim")
        params = policy_parameters(robot, args.backend, args.model_path)
        path = params.get("model_path", "")
        settings = parse_overrides(params.get("backend_settings", ""))
        backend = load_backend(
            params.get("backend", "octo"),
            resolve_package_path(path) if path else None,
            settings,
            robot=robot_body(robot),
        )
        rate = success_rate(lambda sim: backend, seeds)
    print(
        json.dumps(
            {
                "success_rate": rate,
                "episodes": len(seeds),
                "backend": "expert" if args.expert else args.backend or "octo",
            }
        )
    )
    return 0


def _export(args) -> int:
    from vla_ros.recording.export import export

    report = export(
        args.bags,
        args.lerobot,
        args.robot,
        args.fps,
        args.video_codec,
        args.outcome_topic,
        args.task_topic,
        args.task,
        log=_log,
    )
    print(json.dumps(report))
    return 0 if report["episodes"] else 1


def _view(args) -> int:
    from vla_ros.viz.view import view

    out = view(args.run, args.robot, args.rrd, viewer=not args.no_viewer)
    print(json.dumps({"rrd": str(out)}))
    return 0


def _params(args) -> int:
    from vla_ros import reference_tables

    print(reference_tables.tables())
    if args.write:
        reference_tables.write()
    return 0


class DefaultsHelpFormatter(argparse.HelpFormatter):
    """Help lines end with the option's default, unless the help text already says it or there is none."""

    def _get_help_string(self, action):
        text = action.help or ""
        if "default" in text or action.default in (None, False, argparse.SUPPRESS) or not action.option_strings:
            return text
        return f"{text} (default: %(default)s)"


# `vla-ros bench NAME`: the benchmark module and what it measures (random weights unless it says otherwise)
BENCHMARKS = {
    "pi0": ("vla_ros.benchmarks.bench", "π₀ / π₀.5 latency per size, device, dtype and fast path"),
    "octo": ("vla_ros.benchmarks.octo_latency", "Octo latency per size and sampler path"),
    "openvla": ("vla_ros.benchmarks.openvla_latency", "OpenVLA / OFT latency at reduced or real size"),
    "fastpath": ("vla_ros.benchmarks.fastpath_check", "π₀ fast paths (compile, CUDA graphs) against eager"),
    "pipeline": ("vla_ros.benchmarks.pipeline", "camera frame -> chunk through the real policy node (noop backend)"),
    "executor": ("vla_ros.benchmarks.executor_tick", "executor core CPU per tick on recorded sim chunk streams"),
    "jitter": ("vla_ros.benchmarks.executor_jitter", "the executor node's tick lateness and CPU over DDS"),
    "publish": ("vla_ros.benchmarks.publish_cost", "CPU of building and publishing one command through rclpy"),
    "ik": ("vla_ros.benchmarks.ik_latency", "differential IK solve time per chunk"),
    "remote": ("vla_ros.benchmarks.remote_roundtrip", "vla-ros serve round trip on loopback"),
    "plan_stream": ("vla_ros.benchmarks.plan_stream", "executor CPU: per-tick commands vs streamed plans (JTC)"),
    "recording": ("vla_ros.benchmarks.recording_overhead", "the demo's latencies and CPU with and without recording"),
}


def _bench(argv: list[str]) -> int:
    """`vla-ros bench NAME [options]` runs benchmark NAME (its own --help); no NAME or --help lists them."""
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in BENCHMARKS:
        if argv and argv[0] not in ("-h", "--help"):
            print(f"vla-ros bench: unknown benchmark '{argv[0]}'", file=sys.stderr)
        print("usage: vla-ros bench NAME [options]   (vla-ros bench NAME --help: its options)\n\nbenchmarks:")
        width = max(map(len, BENCHMARKS))
        for name, (_, what) in BENCHMARKS.items():
            print(f"  {name:{width}s}  {what}")
        return 0 if not argv or argv[0] in ("-h", "--help") else 2
    module = __import__(BENCHMARKS[argv[0]][0], fromlist=["main"])
    program, sys.argv[0] = sys.argv[0], f"vla-ros bench {argv[0]}"  # its usage line names the command
    try:
        return module.main(argv[1:]) or 0
    finally:
        sys.argv[0] = program


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vla-ros", description="Vision-Language-Action policies for ROS 2.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    defaults = functools.partial(sub.add_parser, formatter_class=DefaultsHelpFormatter)
    sub.add_parser = lambda name, **kw: defaults(name, **kw)  # every subcommand's --help shows the defaults
    p = sub.add_parser("demo", help="closed-loop demo through the real ROS nodes; prints one JSON line")
    p.add_argument("--episodes", type=int, default=20, help="episodes to run")
    p.add_argument(
        "--first-seed",
        type=int,
        default=1000,
        help="seed of the first episode (later ones count up; training used seeds >= 100000)",
    )
    p.add_argument(
        "--run-dir",
        type=Path,
        default=None,
        help="folder for logs, the recorded run, video and plot (default: runs/demo-<time>)",
    )
    p.add_argument("--model-path", default="", help="checkpoint folder (default: the robot config's)")
    p.add_argument(
        "--episode-timeout-s",
        type=float,
        default=10.0,
        help="an episode not done by then counts as a failure (seconds)",
    )
    p.add_argument("--min-success-rate", type=float, default=0.0, help="exit 1 below this rate")
    p.add_argument(
        "--blend", default="replace", help="executor blend mode: replace, crossfade, temporal_ensemble, guided"
    )
    p.add_argument(
        "--inference-delay-s", type=float, default=0.0, help="artificial latency added to every chunk (seconds)"
    )
    p.add_argument("--backend", default="", help="policy backend (default: the robot config's)")
    p.add_argument(
        "--remote",
        action="store_true",
        help="serve the backend with `vla-ros serve` in another process (node: openpi_remote)",
    )
    p.add_argument(
        "--record", action="store_true", help="record every episode: run_dir/recording/{bags,lerobot} (docs/data.md)"
    )
    p.add_argument("--viz", action="store_true", help="log the run to rerun: run_dir/run.rrd (vla-ros view opens it)")
    p.add_argument(
        "--output",
        choices=("joint_trajectory_plan", "joint_trajectory", "position_array"),
        default="joint_trajectory_plan",
        help="the executor's output and the sim's controller: joint_trajectory_plan (the limited plan at each change) "
        "or joint_trajectory (a one-point trajectory per tick), both run by the sim's model of ros2_control's "
        "JointTrajectoryController at 500 Hz, or position_array (a forward position controller)",
    )
    p.add_argument(
        "--bypass-executor",
        action="store_true",
        help="no executor: the policy's chunks straight to the sim's JointTrajectoryController model "
        "(positions_upsampling on; --output unused; docs/real-robots.md: bypass)",
    )
    p.add_argument(
        "--domain-id",
        type=int,
        default=None,
        help="ROS_DOMAIN_ID of the demo's nodes (default: 40 + the process id mod 50; name a free one when other ROS "
        "work runs on this host)",
    )
    p.set_defaults(func=_demo)
    p = sub.add_parser(
        "soak",
        help="the demo with randomly injected faults for N minutes; prints one JSON report "
        "(exit 1 on a limit violation or fd growth)",
    )
    p.add_argument("--minutes", type=float, default=2.0, help="how long to run")
    p.add_argument(
        "--run-dir", type=Path, default=None, help="folder for logs and the report (default: runs/soak-<time>)"
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the fault draws and episodes")
    p.add_argument(
        "--transport",
        choices=("default", "udp"),
        default="default",
        help="DDS transports: Fast DDS's default (shared memory + UDP on one host) or UDP only "
        "(FASTDDS_BUILTIN_TRANSPORTS=UDPv4; see docs/faults.md, soak)",
    )
    p.add_argument(
        "--faults",
        nargs="+",
        default=None,
        metavar="FAULT",
        help="draw only these faults (second_writer future_chunk joint_glitch bad_frame instruction_flood "
        "bad_params estop kill_policy; default: all)",
    )
    p.add_argument("--domain-id", type=int, default=None, help="ROS_DOMAIN_ID of the run (default: from the pid)")
    p.set_defaults(func=_soak)
    p = sub.add_parser("compare-blends", help="the demo per inference delay and blend mode; prints a markdown table")
    p.add_argument(
        "--delays", type=float, nargs="+", default=[0.1, 0.2, 0.3], help="inference delays to compare (seconds)"
    )
    p.add_argument(
        "--modes", nargs="+", default=["replace", "temporal_ensemble", "guided"], help="executor blend modes to compare"
    )
    p.add_argument("--episodes", type=int, default=10, help="episodes per delay and mode")
    p.add_argument("--first-seed", type=int, default=1000, help="seed of the first episode")
    p.add_argument("--run-dir", type=Path, default=None, help="folder for the runs (default: runs/compare-<time>)")
    p.add_argument(
        "--domain-id",
        type=int,
        default=int(os.environ["ROS_DOMAIN_ID"]) if os.environ.get("ROS_DOMAIN_ID", "").isdigit() else None,
        help="ROS_DOMAIN_ID of the demo's nodes (default: $ROS_DOMAIN_ID, else one from the process id)",
    )
    p.set_defaults(func=_compare_blends)
    p = sub.add_parser("plot", help="plot a run recorded by the executor (record_path) to PNG; prints smoothness")
    p.add_argument("run", type=Path, help="the .npz the executor wrote")
    p.add_argument("--out", type=Path, default=None, help="PNG path (default: next to the run)")
    p.add_argument(
        "--window",
        type=float,
        nargs=2,
        default=None,
        metavar=("START_S", "END_S"),
        help="seconds after the first command",
    )
    p.set_defaults(func=_plot)
    p = sub.add_parser("train", help="record expert demonstrations and train the demo model")
    p.add_argument("--out", default="models/demo", help="checkpoint folder to write")
    p.add_argument("--episodes", type=int, default=1000, help="expert demonstration episodes to record")
    p.add_argument("--budget-s", type=float, default=600.0, help="training wall-clock budget (seconds)")
    p.add_argument(
        "--dataset",
        default="",
        help="a LeRobotDataset folder to train on (the recorder's lerobot/, vla-ros export), or an expert .npz to "
        "reuse/keep",
    )
    p.add_argument(
        "--outcomes",
        nargs="+",
        default=["success"],
        help="with a LeRobotDataset: train on the episodes with these outcomes (success failure interrupted unknown)",
    )
    p.add_argument(
        "--action-space",
        choices=["joint", "ee_delta"],
        default="joint",
        help="what the model predicts: joint targets (models/demo) or end-effector deltas through IK (models/demo_ee)",
    )
    p.add_argument("--seed", type=int, default=0, help="training seed")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (1 on a machine shared with other jobs)")
    p.add_argument("--lr", type=float, default=6e-4, help="peak learning rate")
    p.add_argument("--init-from", default="", help="continue training from this checkpoint folder (same action space)")
    p.add_argument("--eval-episodes", type=int, default=50, help="closed-loop evaluation episodes after training")
    p.add_argument("--eval-first-seed", type=int, default=1000, help="seed of the first evaluation episode")
    p.set_defaults(func=_train)
    p = sub.add_parser(
        "evaluate", help="closed-loop success rate in the sim without ROS (same executor core as the nodes)"
    )
    p.add_argument("--backend", default="", help="policy backend (default: the sim robot config's)")
    p.add_argument("--model-path", default="", help="checkpoint folder (default: the robot config's)")
    p.add_argument("--episodes", type=int, default=20, help="episodes")
    p.add_argument("--first-seed", type=int, default=1000, help="seed of the first episode")
    p.add_argument("--expert", action="store_true", help="evaluate the scripted expert instead")
    p.set_defaults(func=_evaluate)
    p = sub.add_parser(
        "bringup",
        help="pip-only equivalent of ros2 launch vla_ros policy.launch.py (args name:=value; bringup --help)",
        add_help=False,
    )
    p.add_argument("launch_args", nargs=argparse.REMAINDER, help="name:=value launch arguments, or --help")
    p.set_defaults(func=lambda a: __import__("vla_ros.bringup", fromlist=["main"]).main(a.launch_args))
    sub.add_parser("bench", help="benchmarks: vla-ros bench {" + ",".join(BENCHMARKS) + "} [options]; bench --help")
    p = sub.add_parser(
        "check",
        help="preflight before powering the arm: settings and their sources, mappings, action space and IK, "
        "one inference, limits (args name:=value: robot, backend, model_path, device, backend_settings)",
    )
    p.add_argument("launch_args", nargs="*", help="robot:=NAME backend:=NAME model_path:=DIR ...")
    p.set_defaults(func=lambda a: __import__("vla_ros.preflight", fromlist=["main"]).main(a.launch_args))
    p = sub.add_parser("export", help="bags (MCAP, rosbag2) to a LeRobotDataset: export BAG... --lerobot OUT --robot R")
    __import__("vla_ros.recording.export", fromlist=["add_arguments"]).add_arguments(p)
    p.set_defaults(func=_export)
    p = sub.add_parser("view", help="a recorded run (bags or .rrd) in the rerun viewer: view RUN [--no-viewer]")
    __import__("vla_ros.viz.view", fromlist=["add_arguments"]).add_arguments(p)
    p.set_defaults(func=_view)
    p = sub.add_parser("params", help="print the node parameter and backend settings tables (markdown)")
    p.add_argument("--write", action="store_true", help="and replace them in docs/configuration.md")
    p.set_defaults(func=_params)
    p = sub.add_parser("convert", help="convert a released checkpoint for the runtime: convert octo <folder> <out>")
    p.add_argument("kind", choices=["octo"], help="checkpoint family")
    p.add_argument("folder", type=Path, help="the released checkpoint folder (config.json, orbax <step>/)")
    p.add_argument("out", type=Path, help="output folder (model.safetensors, config.json, dataset_statistics.json)")
    p.add_argument("--step", type=int, default=None, help="orbax step (default: the latest)")
    p.add_argument("--action-space", default=None, help="preset recorded in the config (default: bridge_ee_delta)")
    p.set_defaults(func=lambda a: __import__("vla_ros.backends.octo.convert", fromlist=["main"]).main(a))
    p = sub.add_parser("serve", help="serve a backend over openpi's websocket protocol")
    add_serve_arguments(p)
    p.set_defaults(func=lambda a: __import__("vla_ros.serving.server", fromlist=["serve_main"]).serve_main(a))
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["bench"]:  # each benchmark has its own options
        return _bench(argv[1:])
    if argv[:1] == ["bringup"]:  # name:=value arguments (and its own --help)
        return __import__("vla_ros.bringup", fromlist=["main"]).main(argv[1:])
    if argv[:1] == ["check"]:
        return __import__("vla_ros.preflight", fromlist=["main"]).main(argv[1:])
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())

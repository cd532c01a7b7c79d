"""The closed-loop demo: sim robot + policy node + chunk executor, three processes over DDS.

A supervisor node in this process runs the episodes through standard interfaces only: it
deactivates the policy and the executor (lifecycle `~/change_state`; the executor brakes to rest),
resets the sim (`~/reset` with parameter `episode_seed`), activates the executor (it starts from
the measured position), sets the policy's `instruction` parameter through the parameter service,
activates the policy, and waits for the sim's `~/outcome`. `output` picks what the executor sends
and how the sim follows it: `position_array` to a forward position controller, `joint_trajectory` (a
one-point trajectory per tick) or `joint_trajectory_plan` (the limited plan at each change) to the
sim's model of ros2_control's JointTrajectoryController, which interpolates them at every physics step
(500 Hz). It prints one JSON line with the success rate and latencies, and writes a run folder with a
video of the first episode, the executor's record of the run (`executor_run.npz`), a plot of planned
vs. commanded vs. measured joints of the first episode and the smoothness of the commands.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vla_ros.bringup import Bringup
from vla_ros.launch_description import node_specs, sim_controller

EVAL_FIRST_SEED = 1000  # demonstrations are recorded from seed 100000 on: these are unseen
# the executor outputs the sim follows (its controller: launch_description.sim_controller)
DEMO_OUTPUTS = ("joint_trajectory_plan", "joint_trajectory", "position_array")
SIM_CONTROLLER_RATE_HZ = 500.0  # the sim's JTC runs at every physics step (tabletop_arm.xml: timestep 2 ms)
PLAN_COUNTERS = ("plans_sent", "plans_late", "plans_rejected", "plans_recomputed_late")
CONTROLLER_COUNTERS = ("trajectories_received", "trajectories_rejected")  # the sim's JTC model


@dataclass
class EpisodeRecord:
    """What the supervisor saw of one episode: front camera frames (the executor records the joints)."""

    frames: list[np.ndarray] = field(default_factory=list)


def demo_environment(run_dir: Path, domain_id: int) -> dict[str, str]:
    """DDS kept on this host, logs in the run folder, a domain of its own."""
    return {
        "ROS_DOMAIN_ID": str(domain_id),
        "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
        "ROS_LOG_DIR": str(run_dir / "ros_logs"),
        "RCUTILS_COLORIZED_OUTPUT": "0",
    }


class Supervisor:
    """A small rclpy node driving episodes through the nodes' standard services and topics."""

    def __init__(self, executor: bool = True, chunk_topic: str = "action_chunk"):
        """executor: a chunk executor to deactivate and activate around each episode (none with bypass_executor);
        chunk_topic: where the policy's chunks go."""
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from lifecycle_msgs.srv import ChangeState
        from rcl_interfaces.srv import SetParameters
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import qos_profile_sensor_data
        from sensor_msgs.msg import Image
        from std_msgs.msg import String
        from std_srvs.srv import Trigger
        from trajectory_msgs.msg import JointTrajectory

        from vla_ros.nodes.sim_robot_node import LATCHED

        rclpy.init(args=[])
        self.node = rclpy.create_node("vla_demo_supervisor")
        n = self.node
        self.clients = {
            "policy_state": n.create_client(ChangeState, "/vla_policy/change_state"),
            "policy_params": n.create_client(SetParameters, "/vla_policy/set_parameters"),
            "sim_reset": n.create_client(Trigger, "/vla_sim_robot/reset"),
            "sim_params": n.create_client(SetParameters, "/vla_sim_robot/set_parameters"),
        }
        if executor:
            self.clients["executor_state"] = n.create_client(ChangeState, "/vla_chunk_executor/change_state")
        self.outcome = "unknown"
        self.record: EpisodeRecord | None = None
        self.diagnostics: dict[str, dict[str, str]] = {}
        self.lateness_p99_ms: list[float] = []  # the executor's tick lateness p99 (last 1000 ticks), once a second
        self.chunk_latency_s: list[float] = []
        n.create_subscription(String, "/vla_sim_robot/outcome", lambda m: setattr(self, "outcome", m.data), LATCHED)
        n.create_subscription(Image, "camera/image_raw", self._on_image, qos_profile_sensor_data)
        n.create_subscription(JointTrajectory, chunk_topic, self._on_chunk, 10)
        n.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, 10)
        self.executor = SingleThreadedExecutor()
        self.executor.add_node(n)
        self._spin = threading.Thread(target=self.executor.spin, daemon=True)
        self._spin.start()
        self._types = {"Trigger": Trigger, "ChangeState": ChangeState, "SetParameters": SetParameters}
        self._state_clients: dict[str, object] = {}  # node -> its get_state client

    def _now(self) -> float:
        return self.node.get_clock().now().nanoseconds * 1e-9

    # --- recording -----------------------------------------------------------------------
    def _on_image(self, msg) -> None:
        if self.record is not None:
            from vla_ros.nodes.conversions import image_msg_to_rgb

            self.record.frames.append(image_msg_to_rgb(msg))

    def _on_chunk(self, msg) -> None:
        from vla_ros.nodes.conversions import trajectory_to_chunk

        now = self._now()
        chunk = trajectory_to_chunk(msg, now)
        self.chunk_latency_s.append(now - chunk.t0_s)

    def _on_diagnostics(self, msg) -> None:
        for status in msg.status:
            self.diagnostics[status.name] = values = {kv.key: kv.value for kv in status.values}
            if status.name.endswith(": executor") and "tick_lateness_p99_ms" in values:
                self.lateness_p99_ms.append(float(values["tick_lateness_p99_ms"]))

    # --- calls ---------------------------------------------------------------------------
    def wait_for_services(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        for name, client in self.clients.items():
            if not client.wait_for_service(timeout_sec=max(0.1, deadline - time.monotonic())):
                raise TimeoutError(f"service of '{name}' ({client.srv_name}) not available after {timeout_s} s")

    def call(self, name: str, request, timeout_s: float = 10.0, repeatable: bool = False):
        """The answer (TimeoutError after `timeout_s`); `repeatable` requests are sent again while
        answers are lost (service_calls)."""
        from vla_ros.nodes.service_calls import call

        return call(self.clients[name], request, timeout_s, repeatable=repeatable)

    def trigger(self, name: str) -> str:
        from std_srvs.srv import Trigger

        res = self.call(name, Trigger.Request())
        if not res.success:
            raise RuntimeError(f"{self.clients[name].srv_name} failed: {res.message}")
        return res.message

    def set_parameter(self, client: str, name: str, value) -> None:
        from rclpy.parameter import Parameter

        res = self.call(
            client,
            self._types["SetParameters"].Request(parameters=[Parameter(name, value=value).to_parameter_msg()]),
            repeatable=True,
        )
        if not res.results[0].successful:
            raise RuntimeError(f"setting {name}={value!r} failed: {res.results[0].reason}")

    def set_active(self, client: str, active: bool, timeout_s: float = 10.0) -> None:
        """Activate / deactivate a managed node (no-op when it already is, or for deactivate when it is
        not active); RuntimeError if it refuses or cannot be activated from its state."""
        from lifecycle_msgs.msg import State

        from vla_ros.nodes.service_calls import change_state, get_state

        node = self.clients[client].srv_name.rsplit("/", 1)[0]  # "/vla_policy"
        step = "activate" if active else "deactivate"
        if not active and get_state(self._get_state(node), timeout_s) != State.PRIMARY_STATE_ACTIVE:
            return  # not active (inactive, or unconfigured after a restart): nothing to deactivate
        if not change_state(self.clients[client], self._get_state(node), step, timeout_s):
            raise RuntimeError(f"{node} refused to {step} (its log says why)")

    def _get_state(self, node: str):
        """The `get_state` client of `node` ("/vla_policy"), made once."""
        from lifecycle_msgs.srv import GetState

        if node not in self._state_clients:
            self._state_clients[node] = self.node.create_client(GetState, f"{node}/get_state")
        return self._state_clients[node]

    def wait_until_active(self, timeout_s: float) -> None:
        """Wait for the lifecycle manager's start-up (both nodes active)."""
        from lifecycle_msgs.msg import State

        from vla_ros.nodes.service_calls import ANSWER_WAIT_S, get_state

        deadline = time.monotonic() + timeout_s
        managed = ("/vla_chunk_executor", "/vla_policy") if "executor_state" in self.clients else ("/vla_policy",)
        for node in managed:
            while True:
                try:  # a node that died (respawn) never answers: ask again until the deadline
                    if get_state(self._get_state(node), ANSWER_WAIT_S) == State.PRIMARY_STATE_ACTIVE:
                        break
                except TimeoutError:
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{node} not active after {timeout_s} s (see the node logs)")
                time.sleep(0.2)

    # --- episodes ------------------------------------------------------------------------
    def run_episode(
        self, seed: int, timeout_s: float, record: bool, send_instruction: bool = True
    ) -> tuple[bool, str, float]:
        """Reset the sim to episode `seed` and run it (at most `timeout_s`): (success, the instruction the sim asks
        for, duration in seconds). `send_instruction` False: the policy keeps the task it holds (the soak)."""
        executor = "executor_state" in self.clients
        self.set_active("policy_state", False)
        if executor:
            self.set_active("executor_state", False)
        self.set_parameter("sim_params", "episode_seed", seed)
        self.outcome = "unknown"
        instruction = self.trigger("sim_reset")
        time.sleep(0.3)  # fresh joint states and frames of the new episode
        self.record = EpisodeRecord() if record else None
        if executor:
            self.set_active("executor_state", True)
        if send_instruction:
            self.set_parameter("policy_params", "instruction", instruction)
        start = time.monotonic()
        self.set_active("policy_state", True)
        deadline = start + timeout_s
        while self.outcome in ("running", "unknown") and time.monotonic() < deadline:
            time.sleep(0.02)
        self.set_active("policy_state", False)
        return self.outcome == "success", instruction, time.monotonic() - start

    def close(self) -> None:
        import rclpy

        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown()


def wait_for_recorder(sup: Supervisor, episodes: int, log, timeout_s: float = 120.0) -> dict:
    """Wait until the recorder has closed and converted the run's episodes (its /diagnostics); its counters."""
    deadline = time.monotonic() + timeout_s
    values: dict[str, str] = {}
    while time.monotonic() < deadline:
        values = next((v for k, v in sup.diagnostics.items() if k.endswith(": recorder")), {})
        done = int(values.get("episodes_converted", 0)) + int(values.get("episodes_conversion_failed", 0))
        if values.get("recording") == "false" and done >= int(values.get("episodes_recorded", 0)) >= episodes:
            break
        time.sleep(0.5)
    else:
        log(f"the recorder had not finished after {timeout_s} s: {values}")
    out = Path(values.get("output_dir", ""))
    return {
        "bags": str(out / "bags"),
        "lerobot": str(out / "lerobot"),
        "episodes_recorded": int(values.get("episodes_recorded", 0)),
        "episodes_converted": int(values.get("episodes_converted", 0)),
        "conversion_failed": int(values.get("episodes_conversion_failed", 0)),
        "dropped": int(values.get("dropped_total", 0)),
    }


def run_demo(
    episodes: int = 20,
    first_seed: int = EVAL_FIRST_SEED,
    run_dir: Path | None = None,
    model_path: str = "",
    domain_id: int | None = None,
    episode_timeout_s: float = 10.0,
    blend_mode: str = "replace",
    inference_delay_s: float = 0.0,
    backend: str = "",
    log=print,
    record: bool = False,
    viz: bool = False,
    output: str = "position_array",
    bypass_executor: bool = False,
) -> dict:
    """Run the demo; return (and write to run_dir/summary.json) the summary.

    blend_mode: the executor's; inference_delay_s: artificial latency added to every chunk (seconds);
    output: the executor's (one of DEMO_OUTPUTS; the sim runs the controller that takes it);
    record: the recorder node too (run_dir/recording: bags/ and lerobot/), waited for at the end;
    viz: the rerun node too, logging the run to run_dir/run.rrd;
    bypass_executor: no executor, the policy's chunks straight to the sim's JointTrajectoryController model
    (`output` unused; no executor record, so no smoothness or joint plot).
    """
    if output not in DEMO_OUTPUTS:
        raise ValueError(f"demo output {output!r}: one of {list(DEMO_OUTPUTS)} (the sim has no other controller)")
    if bypass_executor and (record or viz):
        raise ValueError("bypass_executor: the recorder and the rerun node need the executor's commands")
    run_dir = Path(run_dir or Path("runs") / time.strftime("demo-%Y%m%d-%H%M%S")).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    domain_id = domain_id if domain_id is not None else 40 + os.getpid() % 50
    env = demo_environment(run_dir, domain_id)
    os.environ.update(env)  # the supervisor in this process joins the same domain
    record_path = run_dir / "executor_run.npz"
    specs = node_specs(
        "sim",
        backend=backend,
        model_path=model_path,
        use_sim=True,
        overrides={
            "vla_sim_robot": {"max_episode_s": episode_timeout_s},
            "vla_policy": {"inference_delay_s": inference_delay_s},
            "vla_chunk_executor": {
                "blend_mode": blend_mode,
                "record_path": str(record_path),
                "output": output,
                "controller_rate_hz": SIM_CONTROLLER_RATE_HZ,
            },
            "vla_recorder": {"output_dir": str(run_dir / "recording"), "executor_output": output},
            "vla_rerun": {"target": str(run_dir / "run.rrd"), "executor_output": output},
        },
        record=record,
        viz="rerun" if viz else "",
        bypass_executor=bypass_executor,
    )
    first_episode_s = (0.0, 0.0)
    results = []
    with Bringup(specs, log_dir=run_dir / "logs", env=env) as bringup:
        sup = Supervisor(executor=not bypass_executor, chunk_topic="commands" if bypass_executor else "action_chunk")
        try:
            sup.wait_for_services(120.0)
            sup.wait_until_active(180.0)
            first_record = None
            for i in range(episodes):
                dead = bringup.dead()
                if dead:
                    raise RuntimeError(f"node(s) died: {dead}; see {run_dir / 'logs'}")
                started = sup._now()
                ok, instruction, duration = sup.run_episode(first_seed + i, episode_timeout_s + 1.0, record=i == 0)
                if i == 0:
                    first_record = sup.record
                    sup.record = None
                    first_episode_s = (started, started + duration + 0.5)
                results.append(
                    {
                        "seed": first_seed + i,
                        "instruction": instruction,
                        "success": ok,
                        "duration_s": round(duration, 2),
                    }
                )
                log(
                    f"episode {i + 1}/{episodes} seed {first_seed + i} '{instruction}': "
                    f"{'success' if ok else 'failure'} ({duration:.1f} s)"
                )
            time.sleep(1.2)  # one more diagnostics period
            recording = wait_for_recorder(sup, len(results), log) if record else None
            policy_diag = next((v for k, v in sup.diagnostics.items() if k.endswith(": policy")), {})
            executor_diag = next((v for k, v in sup.diagnostics.items() if k.endswith(": executor")), {})
            controller_diag = next((v for k, v in sup.diagnostics.items() if k.endswith(": controller")), {})
            latency = np.array(sup.chunk_latency_s) * 1e3
            lateness = np.array(sup.lateness_p99_ms)
        finally:
            sup.close()
    from vla_ros.report import load_run, plot_run, smoothness, write_video

    video = write_video(first_record.frames, run_dir / "episode0") if first_record and first_record.frames else None
    run = None if bypass_executor else load_run(record_path)  # bypass: no executor, no record
    plot = None
    if run is not None:
        t_first = float(run["command_t"][0]) if run["command_t"].size else 0.0
        window = (first_episode_s[0] - t_first, first_episode_s[1] - t_first)
        plot = plot_run(run, run_dir / "episode0_joints.png", window)
    summary = {
        "success_rate": float(np.mean([r["success"] for r in results])) if results else 0.0,
        "episodes": len(results),
        "blend_mode": blend_mode,
        "inference_delay_s": inference_delay_s,
        "output": None if bypass_executor else output,
        "bypass_executor": bypass_executor,
        "smoothness": None
        if run is None
        else {k: round(v, 4) if isinstance(v, float) else v for k, v in smoothness(run).items()},
        "frame_to_chunk_ms": {
            "p50": float(policy_diag.get("frame_to_chunk_p50_ms", "nan")),
            "p99": float(policy_diag.get("frame_to_chunk_p99_ms", "nan")),
        },
        "observation_to_chunk_received_ms": {
            "p50": float(np.percentile(latency, 50)) if latency.size else None,
            "p99": float(np.percentile(latency, 99)) if latency.size else None,
        },
        "inference_ms": {
            "p50": float(policy_diag.get("inference_p50_ms", "nan")),
            "p99": float(policy_diag.get("inference_p99_ms", "nan")),
        },
        "tick_lateness_p99_ms": {  # the executor's p99 over its last 1000 ticks, sampled once a second
            "median": float(np.median(lateness)) if lateness.size else None,
            "max": float(lateness.max()) if lateness.size else None,
        },
        "run_dir": str(run_dir),
        "video": str(video) if video else None,
        "plot": str(plot) if plot else None,
        "episodes_detail": results,
    }
    if output == "joint_trajectory_plan" and not bypass_executor:  # the executor's plan counters (real-robots.md)
        summary["plans"] = {k: int(executor_diag.get(k, 0)) for k in PLAN_COUNTERS}
    if (
        sim_controller(output, bypass_executor) == "joint_trajectory"
    ):  # what the sim's JointTrajectoryController model took
        summary["controller"] = {k: int(controller_diag.get(k, 0)) for k in CONTROLLER_COUNTERS}
        speed = controller_diag.get("command_speed_max_rad_s", "nan")  # the controller's command, between updates
        summary["controller"]["command_speed_max_rad_s"] = float(speed)
    if recording is not None:
        summary["recording"] = recording
    if viz:
        summary["rrd"] = str(run_dir / "run.rrd")
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary

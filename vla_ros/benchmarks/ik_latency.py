"""IK latency for action chunks on a 7-DOF arm (Franka Panda from example-robot-data).

    python -m vla_ros.benchmarks.ik_latency [--chunks 300] [--horizon 50] [--dt 0.1]

Each chunk is a smooth random joint path from a random start near the Panda's ready pose
(per-step joint moves up to 30% of the velocity limit), turned into EE poses by forward
kinematics, then solved back: `DifferentialIk.solve` alone, and the whole
`ActionSpaceConverter.to_joint_targets` of the `bridge_ee_delta` preset (EE deltas chained,
euler conversion, IK, gripper). Prints p50/p99 milliseconds per chunk and the share of chunks
fully solved, as wall-clock time and as this thread's CPU time (the latter is what a loaded,
shared machine does not inflate by waiting). A benchmark, not a test: the numbers depend on the
machine and its load.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy.spatial.transform import Rotation

from vla_ros.core.action_space import action_space_from_dict
from vla_ros.core.action_space_converter import ActionSpaceConverter
from vla_ros.core.ik import DifferentialIk
from vla_ros.core.kinematics import UrdfKinematics
from vla_ros.core.robot_descriptions import franka_urdf_path

ARM = tuple(f"panda_joint{i}" for i in range(1, 8))
JOINTS = (*ARM, "panda_finger_joint1")
READY_Q = np.array([0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785])
SPEED = 0.1  # joint speeds of the generated paths, share of the velocity limits


def make_chunks(ik: DifferentialIk, count: int, horizon: int, dt_s: float, seed: int = 0):
    """(start (7,), joint path (H, 7), EE positions (H, 3), rotations (H, 3, 3)) per chunk."""
    rng = np.random.default_rng(seed)
    chunks = []
    for _ in range(count):
        start = np.clip(READY_Q + rng.uniform(-0.4, 0.4, 7), ik.min_position + 0.1, ik.max_position - 0.1)
        velocity = rng.uniform(-1, 1, 7) * SPEED * ik.max_velocity  # a slowly turning direction
        path = []
        q = start
        for _ in range(horizon):
            velocity = np.clip(
                velocity + rng.normal(0, SPEED / 5, 7) * ik.max_velocity,
                -SPEED * ik.max_velocity,
                SPEED * ik.max_velocity,
            )
            q = np.clip(q + velocity * dt_s, ik.min_position + 0.05, ik.max_position - 0.05)
            path.append(q)
        poses = [ik.forward(p) for p in path]
        chunks.append((start, np.array(path), np.array([p for p, _ in poses]), np.array([r for _, r in poses])))
    return chunks


class Timer:
    """Wall-clock and thread CPU seconds of each timed call."""

    def __init__(self):
        self.wall_s: list[float] = []
        self.cpu_s: list[float] = []

    def __enter__(self):
        self._wall, self._cpu = time.perf_counter(), time.thread_time()

    def __exit__(self, *exc):
        self.wall_s.append(time.perf_counter() - self._wall)
        self.cpu_s.append(time.thread_time() - self._cpu)

    def summary(self) -> str:
        wall, cpu = np.array(self.wall_s) * 1e3, np.array(self.cpu_s) * 1e3
        return (
            f"wall p50 {np.percentile(wall, 50):.2f} ms, p99 {np.percentile(wall, 99):.2f} ms; "
            f"CPU p50 {np.percentile(cpu, 50):.2f} ms, p99 {np.percentile(cpu, 99):.2f} ms"
        )


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chunks", type=int, default=300)
    parser.add_argument("--horizon", type=int, default=50)
    parser.add_argument("--dt", type=float, default=0.1, help="seconds between chunk points")
    args = parser.parse_args(argv)

    kinematics = UrdfKinematics(franka_urdf_path(), JOINTS)
    space = action_space_from_dict({"preset": "bridge_ee_delta"})
    converter = ActionSpaceConverter(
        space, kinematics, JOINTS, "panda_hand_tcp", "panda_link0", gripper_joint=JOINTS[-1]
    )
    ik = DifferentialIk(kinematics, "panda_hand_tcp", ARM)
    chunks = make_chunks(ik, args.chunks, args.horizon, args.dt)

    ik_timer, solved = Timer(), 0
    for start, _, positions, rotations in chunks:
        with ik_timer:
            result = ik.solve(positions, rotations, start, args.dt)
        solved += result.valid_count == args.horizon

    converter_timer = Timer()
    for start, _, positions, rotations in chunks:
        # the same chunk as Bridge-style actions: base-frame deltas, euler xyz, gripper
        p_prev, r_prev = ik.forward(start)
        deltas_p = np.diff(np.vstack([p_prev, positions]), axis=0)
        r_all = np.concatenate([r_prev[None], rotations])
        deltas_r = Rotation.from_matrix(r_all[1:] @ np.transpose(r_all[:-1], (0, 2, 1))).as_euler("xyz")
        actions = np.hstack([deltas_p, deltas_r, np.ones((args.horizon, 1))])
        q_full = np.r_[start, 0.04]
        with converter_timer:
            converter.to_joint_targets(actions, q_full, q_full, args.dt)

    print(f"Panda (7 DOF), {args.chunks} chunks of {args.horizon} points, dt {args.dt} s, tolerances 1 mm / 0.01 rad")
    print(f"DifferentialIk.solve per chunk: {ik_timer.summary()}; chunks fully solved: {solved}/{args.chunks}")
    print(f"ActionSpaceConverter.to_joint_targets (bridge_ee_delta) per chunk: {converter_timer.summary()}")


if __name__ == "__main__":
    main()

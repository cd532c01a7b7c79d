"""Adversarial chunk streams through the executor on the sim arm (its URDF, limits and workspace).

Whatever arrives (huge jumps, NaN/inf, out-of-order and duplicated stamps, delays, bursts, wrong
joints, e-stops, joint states stopping), the executor never raises and every sampled command
respects the position, velocity, acceleration, jerk and workspace limits.

Tolerances: limits are checked on finite differences of the command stream (a difference is a
weighted mean of the derivative, so it obeys the bound) with 1e-6 relative slack; the workspace
with 5 mm (braking is checked at a few points of its trajectory, see core/jerk_limiter.py).
"""

import numpy as np
from hypothesis import example, given
from hypothesis import strategies as st
from property_settings import streams
from test_jerk_limiter import assert_within_limits

from vla_ros.config import load_robot_config
from vla_ros.core.executor import ExecutorCore, ExecutorSettings
from vla_ros.core.plan import BLEND_MODES
from vla_ros.core.safety import ChunkRejected
from vla_ros.core.types import ActionChunk
from vla_ros.core.workspace import urdf_workspace
from vla_ros.paths import resolve_package_path
from vla_ros.sim.tabletop import HOME_Q

ROBOT = load_robot_config("sim")
WS = ROBOT.workspace
WORKSPACE = urdf_workspace(resolve_package_path(ROBOT.urdf), ROBOT.joint_names, WS.link, WS.min, WS.max, WS.keep_out)
NAMES = ROBOT.joint_names
DT = 0.01
WORKSPACE_TOL_M = 0.005

joint_offsets = st.lists(st.floats(-3, 3), min_size=len(NAMES), max_size=len(NAMES))
chunk_event = st.tuples(
    st.just("chunk"),
    st.one_of(st.floats(-0.3, 0.05), st.floats(-1.5, 1.5)),  # stamp relative to now: mostly recent, sometimes far off
    st.tuples(joint_offsets, joint_offsets, st.integers(1, 10)),  # from, to, points: a straight move, arbitrarily far
    st.sampled_from([0.02, 0.1, 0.3]),
    st.sampled_from(["ok"] * 6 + ["nan", "inf", "huge", "shuffled", "missing_joint"]),
)
events = st.lists(
    st.one_of(
        chunk_event,
        st.tuples(st.just("duplicate"), st.none(), st.none(), st.none(), st.none()),
        st.tuples(st.just("burst"), st.integers(2, 5), st.none(), st.none(), st.none()),
        st.tuples(st.just("joints_dropout"), st.integers(1, 60), st.none(), st.none(), st.none()),
        st.tuples(st.just("wait"), st.integers(1, 60), st.none(), st.none(), st.none()),
        st.tuples(st.just("estop"), st.booleans(), st.none(), st.none(), st.none()),
    ),
    min_size=1,
    max_size=25,
)


def make_chunk(t0, move, dt, layout) -> ActionChunk:
    start, end, n = move
    positions = HOME_Q + np.linspace(np.array(start), np.array(end), n)
    names = NAMES
    if layout in ("nan", "inf", "huge"):
        positions[n // 2, n % len(NAMES)] = {"nan": np.nan, "inf": np.inf, "huge": 1e6}[layout]
    elif layout == "shuffled":
        order = np.arange(len(NAMES))[::-1]
        names, positions = tuple(NAMES[i] for i in order), positions[:, order]
    elif layout == "missing_joint":
        names, positions = NAMES[:-1], positions[:, :-1]
    return ActionChunk(t0, dt, names, positions)


def outside_workspace(q: np.ndarray) -> bool:
    p = WORKSPACE.link_position(q)
    box = WORKSPACE.box
    if np.any(p < box.lower - WORKSPACE_TOL_M) or np.any(p > box.upper + WORKSPACE_TOL_M):
        return True
    return any(
        np.all(p > b.lower + WORKSPACE_TOL_M) and np.all(p < b.upper - WORKSPACE_TOL_M) for b in WORKSPACE.keep_out
    )


@streams(8000)
@example(  # found in CI: the 4-point sampled braking check let the brake leave the workspace by 7.5 mm
    events=[
        ("chunk", -0.25, ([0.0] * 7, [1.4375, 0.0, 1.0, 2.0, 0.0, -1.75, 0.0], 3), 0.1, "ok"),
        ("wait", 37, None, None, None),
    ],
    blend="replace",
    start=[0.0] * 7,
)
@given(
    events=events,
    blend=st.sampled_from(BLEND_MODES),
    start=st.lists(st.floats(-0.05, 0.05), min_size=len(NAMES), max_size=len(NAMES)),
)
def test_no_command_leaves_any_limit_whatever_the_stream(events, blend, start):
    ex = ExecutorCore(
        ROBOT.limits, ExecutorSettings(max_stamp_skew_s=1.0, position_margin_rad=0.02, blend=blend), WORKSPACE
    )
    ex.activate()
    t, last_chunk, commands, dropout_until = 0.0, None, [], -1.0
    ex.on_joint_state(t, HOME_Q + np.array(start))  # the arm starts inside the workspace

    def offer(chunk):
        try:
            ex.on_chunk(chunk, t)
        except ChunkRejected:
            pass

    def run(ticks):
        nonlocal t
        for _ in range(ticks):
            t += DT
            if t > dropout_until:  # the arm follows its commands exactly, and says so
                ex.on_joint_state(t, ex.limiter.position)
            commands.append(ex.tick(t).positions)

    for kind, a, b, c, d in events:
        if kind == "chunk":
            last_chunk = make_chunk(t + a, b, c, d)
            offer(last_chunk)
        elif kind == "duplicate" and last_chunk is not None:
            offer(last_chunk)
        elif kind == "burst" and last_chunk is not None:
            for i in range(a):
                offer(
                    ActionChunk(
                        last_chunk.t0_s + 0.001 * i,
                        last_chunk.dt_s,
                        last_chunk.joint_names,
                        last_chunk.positions[::-1].copy(),
                    )
                )
        elif kind == "joints_dropout":
            dropout_until = t + a * DT
        elif kind == "estop":
            ex.estop() if a else ex.reset_estop()
        elif kind == "wait":
            run(a)
    ex.estop()
    run(80)  # and whatever happened, an e-stop brings the arm to rest
    stream = np.array(commands)
    assert_within_limits(stream, DT, ROBOT.limits)
    assert not any(outside_workspace(q) for q in stream[::3])
    assert ex.limiter.at_rest

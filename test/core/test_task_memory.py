"""What a restarted policy process takes over from its predecessor's task state (core/task_memory.py)."""

from __future__ import annotations

from vla_ros.core.task_memory import CLEARED, SET, TaskRestore, TaskState


def test_a_restarted_process_resumes_its_predecessors_task_once():
    restore = TaskRestore("host:2:20", lambda: True)
    assert restore.on_predecessor(TaskState("reach the red cube", "host:1:10", SET, restarts=2)) == "reach the red cube"
    assert restore.restarts == 3 and "resumed 'reach the red cube'" in restore.outcome
    assert restore.on_predecessor(TaskState("reach the blue cube", "host:0:5", SET)) is None  # decided already
    assert not restore.start_fresh()


def test_without_resume_the_task_waits_for_a_new_instruction_and_a_cleared_task_stays_cleared():
    held = TaskState("reach the red cube", "host:1:10", SET)
    no_resume = TaskRestore("host:2:20", lambda: False)
    assert no_resume.on_predecessor(held) == "" and "not resumed (resume_after_restart is false)" in no_resume.outcome
    cleared = TaskRestore("host:3:30", lambda: True)
    assert cleared.on_predecessor(TaskState("", "host:1:10", CLEARED)) == ""
    assert "no task to resume" in cleared.outcome


def test_its_own_state_coming_back_and_an_operators_earlier_instruction_win():
    restore = TaskRestore("host:2:20", lambda: True)
    assert restore.on_predecessor(TaskState("own", "host:2:20", SET)) is None and not restore.settled
    restore.operator_changed()  # an instruction given to this process before the predecessor's state arrived
    assert restore.on_predecessor(TaskState("older", "host:1:10", SET)) is None
    assert restore.outcome == "no restart seen" and restore.restarts == 0


def test_a_first_start_is_decided_at_activation():
    restore = TaskRestore("host:2:20", lambda: True)
    assert restore.start_fresh() and not restore.start_fresh()
    assert restore.on_predecessor(TaskState("late", "host:1:10", SET)) is None


def test_a_task_state_round_trips_through_its_key_values():
    state = TaskState("reach the red cube", "host:1:10", SET, 4)
    assert TaskState.from_values(state.values()) == state
    assert TaskState.from_values({"instruction": "x"}) is None

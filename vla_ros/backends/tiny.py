"""What the tiny random-weight checkpoints of the backends share (for tests and demos of the plumbing):
the sim instructions their tokenizers are trained on, the rule that joints named *gripper* are
absolute targets (the others relative to the current position), and the settings file they write.
"""

from __future__ import annotations

from pathlib import Path

SIM_INSTRUCTIONS = (
    "reach the red cube",
    "reach the blue cube",
    "pick up the red cube",
    "push the blue cube to the left",
    "put the red cube on the blue cube",
    "move the gripper up",
    "open the gripper",
    "close the gripper",
)


def is_gripper(joint: str) -> bool:
    return "gripper" in joint


def relative_joints(joint_names: tuple[str, ...]) -> tuple[str, ...]:
    """The joints a tiny checkpoint predicts relative to the current position: all but the grippers."""
    return tuple(j for j in joint_names if not is_gripper(j))


def write_settings(path: Path, settings, model: str, module: str) -> None:
    """`settings.to_yaml()` under a comment naming the tiny `model` and the `module` that wrote it."""
    path.write_text(f"# tiny random-weight {model} for tests ({module})\n" + settings.to_yaml())

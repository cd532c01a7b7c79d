"""Settings of the fault-injection wrapper (a test and diagnostic tool, not a policy)."""

from __future__ import annotations

from dataclasses import dataclass, field

from vla_ros.backends.settings import SettingsBase

FAULTS = ("none", "raise", "nan", "inf", "wrong_shape", "slow", "hang")


@dataclass(frozen=True)
class FaultInjectionSettings(SettingsBase):
    """Which fault to inject into the wrapped backend's predictions.

    fault: none | raise (predict raises RuntimeError) | nan / inf (one position is NaN / inf) |
    wrong_shape (the last joint is missing) | slow (predict sleeps `delay_s` first) | hang (predict sleeps
    `delay_s` seconds, 0 = until the process is killed, in C without releasing Python's interpreter lock: every
    thread of the node stops, it answers no service and publishes nothing, like a deadlocked extension).
    every_n: fault every n-th call (1 = every call). The first call (the configure warm-up) is
    never faulted, so the node configures.
    """

    inner: str = "octo"  # the wrapped backend (registry name)
    fault: str = "none"
    every_n: int = 1
    delay_s: float = 0.0  # seconds, for faults 'slow' and 'hang' (hang: 0 = until killed)
    source: str = field(default="<memory>", compare=False)

    def __post_init__(self):
        if self.fault not in FAULTS:
            raise ValueError(f"{self.source}: fault: must be one of {list(FAULTS)}, got {self.fault!r}")
        if self.every_n < 1:
            raise ValueError(f"{self.source}: every_n: must be >= 1, got {self.every_n}")
        if self.delay_s < 0:
            raise ValueError(f"{self.source}: delay_s: must be >= 0, got {self.delay_s}")
        if self.inner == "fault_injection":
            raise ValueError(f"{self.source}: inner: cannot wrap itself")

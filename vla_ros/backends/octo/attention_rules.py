"""Octo's block-transformer attention rules: which token group may attend to which, per timestep.

A sequence is [prefix groups] then, for each timestep t = 0..T-1, [timestep groups]. Each group has
a name and rules {name pattern (fnmatch): rule}; the first pattern matching the other group's name
decides, and no match means NEVER. Prefix tokens have timestep -1. The rule mask is then combined
with the keys' pad mask (padding masks keys only, never queries).
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatch

import numpy as np

NEVER, CAUSAL, CURRENT, STRICT_PAST, ALL = "never", "causal", "current", "strict_past", "all"
RULES = (NEVER, CAUSAL, CURRENT, STRICT_PAST, ALL)

TASK_RULES = (("task_*", CAUSAL),)
OBS_RULES = (("task_*", CAUSAL), ("obs_*", CAUSAL))


def readout_rules(name: str) -> tuple[tuple[str, str], ...]:
    """A readout group reads tasks and observations causally and only its own readout group."""
    return (("task_*", CAUSAL), ("obs_*", CAUSAL), (name, CAUSAL))


@dataclass(frozen=True)
class TokenGroup:
    """A named run of `n_tokens` tokens (per timestep for timestep groups) and its attention rules."""

    name: str
    n_tokens: int
    rules: tuple[tuple[str, str], ...]

    def __post_init__(self):
        bad = [r for _, r in self.rules if r not in RULES]
        if bad:
            raise ValueError(f"token group {self.name}: unknown attention rules {bad} (known: {list(RULES)})")

    def rule_for(self, other: str) -> str:
        return next((rule for pattern, rule in self.rules if fnmatch(other, pattern)), NEVER)


def _allowed(rule: str, query_step: int, key_step: int) -> bool:
    if rule == CAUSAL:
        return key_step <= query_step
    if rule == CURRENT:
        return key_step == query_step
    if rule == STRICT_PAST:
        return key_step < query_step
    return rule == ALL


def token_owners(
    prefix: list[TokenGroup], timestep: list[TokenGroup], horizon: int, correct: bool = True
) -> list[tuple[TokenGroup, int]]:
    """(group, timestep) of every token in sequence order.

    correct=False reproduces the attention of Octo's December-2023 release (`use_correct_attention`
    off): the first token of each group but the first is attributed to the group before it.
    """
    side = "right" if correct else "left"

    def owners(groups: list[TokenGroup]) -> list[TokenGroup]:
        ends = np.cumsum([g.n_tokens for g in groups])
        return [groups[int(np.searchsorted(ends, i, side=side))] for i in range(int(ends[-1]) if groups else 0)]

    out = [(g, -1) for g in owners(prefix)]
    per_step = owners(timestep)
    for t in range(horizon):
        out.extend((g, t) for g in per_step)
    return out


def rule_mask(prefix: list[TokenGroup], timestep: list[TokenGroup], horizon: int, correct: bool = True) -> np.ndarray:
    """(N, N) bool, True where query token i may attend key token j by the groups' rules (no padding)."""
    owners = token_owners(prefix, timestep, horizon, correct)
    # decide per (group, step) pair once, then expand to tokens
    keys = sorted({(g.name, t) for g, t in owners}, key=lambda k: (k[1], k[0]))
    index = {k: i for i, k in enumerate(keys)}
    groups = {g.name: g for g, _ in owners}
    block = np.array(
        [[_allowed(groups[qn].rule_for(kn), qt, kt) for kn, kt in keys] for qn, qt in keys], dtype=bool
    ).reshape(len(keys), len(keys))
    ids = np.array([index[(g.name, t)] for g, t in owners], dtype=np.int64)
    return block[ids[:, None], ids[None, :]]

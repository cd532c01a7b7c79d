"""Octo's group attention rules against the reference's BlockTransformer masks, token by token, for
several group layouts, with the 1.5 models' `use_correct_attention` and with the December-2023 setting."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from vla_ros.backends.octo import attention_rules as rules

FIXTURES = Path(__file__).parent / "fixtures"
LAYOUTS = json.loads((FIXTURES / "masks.json").read_text())
with np.load(FIXTURES / "masks.npz") as _z:
    MASKS = {k: _z[k] for k in _z.files}


def groups(spec: list) -> list[rules.TokenGroup]:
    return [rules.TokenGroup(name, n, tuple((p, r) for p, r in rule_list)) for name, n, rule_list in spec]


@pytest.mark.parametrize("name", sorted(LAYOUTS))
@pytest.mark.parametrize("correct", [True, False])
def test_rule_mask_matches_reference(name, correct):
    layout = LAYOUTS[name]
    mask = rules.rule_mask(groups(layout["prefix"]), groups(layout["timestep"]), layout["horizon"], correct)
    expected = MASKS[f"{name}/{'correct' if correct else 'december'}"].astype(bool)
    assert mask.shape == expected.shape
    np.testing.assert_array_equal(mask, expected)


def test_the_two_attention_settings_differ_at_group_boundaries():
    layout = LAYOUTS["release"]
    args = groups(layout["prefix"]), groups(layout["timestep"]), layout["horizon"]
    assert (rules.rule_mask(*args, True) != rules.rule_mask(*args, False)).any()


def test_unknown_rule_is_refused_with_its_name():
    with pytest.raises(ValueError, match="sometimes"):
        rules.TokenGroup("obs_x", 2, (("task_*", "sometimes"),))

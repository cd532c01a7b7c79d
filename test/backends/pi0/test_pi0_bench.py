"""`vla-ros bench` runs end to end at the tiny size and reports a positive lower bound."""

from vla_ros.benchmarks.bench import run_row, table


def test_bench_row_has_every_stage_and_a_lower_bound():
    import torch

    row = run_row(
        "tiny", torch.device("cpu"), "float32", "eager", cameras=1, steps=2, repeats=2, warmup=1, profile=False
    )
    assert row["mode"] == "eager" and row["gflop"] > 0 and row["bound_ms"] > 0
    for stage in ("pre", "prefix", "step", "total"):
        assert 0 < row[stage][0] <= row[stage][1]
    assert row["total"][0] >= row["prefix"][0]
    assert "| tiny (" in table([row])

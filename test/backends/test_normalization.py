import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from vla_ros.backends.normalization import DatasetStatistics, FeatureStats

floats = st.floats(-100, 100)


@settings(max_examples=200, deadline=None)
@given(x=arrays(np.float64, (5, 3), elements=floats), mask=arrays(bool, 3))
def test_normalize_round_trip_and_mask(x, mask):
    stats = FeatureStats(np.array([1.0, -2.0, 0.5]), np.array([2.0, 0.5, 3.0]), mask)
    z = stats.normalize(x)
    np.testing.assert_allclose(stats.unnormalize(z), x, atol=1e-9)
    np.testing.assert_array_equal(z[:, ~mask], x[:, ~mask])


def test_statistics_file_round_trip(tmp_path):
    s = DatasetStatistics(
        FeatureStats.from_data(np.random.rand(10, 2)),
        FeatureStats.from_data(np.random.rand(10, 4, 2), np.array([True, False])),
    )
    s.save(tmp_path / "stats.json")
    t = DatasetStatistics.load(tmp_path / "stats.json")
    np.testing.assert_allclose(t.action.std, s.action.std)
    assert t.action.mask.tolist() == [True, False]

"""openpi's msgpack + NumPy encoding: round trips, the exact map layout, and refused input."""

import msgpack
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from vla_ros.remote.wire import WireError, packb, unpackb

DTYPES = st.sampled_from([np.uint8, np.int16, np.int32, np.int64, np.float16, np.float32, np.float64, np.bool_])


@settings(max_examples=60, deadline=None)
@given(hnp.arrays(DTYPES, hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=5)))
def test_arrays_round_trip_bit_exact_in_nested_maps(array):
    out = unpackb(packb({"a": {"b": [array, "text", 3]}}))
    got = out["a"]["b"][0]
    assert got.dtype == array.dtype and got.shape == array.shape
    assert got.tobytes() == array.tobytes()
    assert out["a"]["b"][1:] == ["text", 3]


def test_numpy_scalars_keep_their_dtype():
    for value in (np.float32(1.5), np.int64(-3), np.bool_(True), np.uint8(7)):
        got = unpackb(packb({"x": value}))["x"]
        assert type(got) is type(value) and got == value


def test_layout_is_openpis_ndarray_map():
    array = np.arange(6, dtype="<f4").reshape(2, 3)
    raw = msgpack.unpackb(packb(array), raw=False)
    assert raw == {b"__ndarray__": True, b"data": array.tobytes(), b"dtype": "<f4", b"shape": [2, 3]}
    # and a map written the way openpi-client writes it decodes to the same array
    foreign = msgpack.packb(
        {b"__ndarray__": True, b"data": array.tobytes(), b"dtype": "<f4", b"shape": (2, 3)}, use_bin_type=True
    )
    np.testing.assert_array_equal(unpackb(foreign), array)


@pytest.mark.parametrize("dtype", ["|O", "|V8", "<c8"])
def test_object_void_complex_dtypes_are_refused_on_receive(dtype):
    message = msgpack.packb(
        {b"__ndarray__": True, b"data": bytes(16), b"dtype": dtype, b"shape": [2]}, use_bin_type=True
    )
    with pytest.raises(WireError, match="not allowed"):
        unpackb(message)


def test_object_and_complex_arrays_are_refused_on_send():
    with pytest.raises(WireError, match="object"):
        packb({"x": np.array([{"a": 1}], dtype=object)})
    with pytest.raises(WireError, match="complex"):
        packb(np.zeros(2, np.complex64))
    with pytest.raises(WireError, match="set"):
        packb({"x": {1, 2}})


@pytest.mark.parametrize(
    "message, match",
    [
        (b"\xc1\xc1\xc1", "not a valid msgpack"),
        (b"garbage bytes that are no msgpack", "not a valid msgpack"),
        (
            msgpack.packb({b"__ndarray__": True, b"data": bytes(5), b"dtype": "<f4", b"shape": [2]}),
            "needs 8 bytes, got 5",
        ),
        (msgpack.packb({b"__ndarray__": True, b"data": bytes(8), b"dtype": "<f4", b"shape": [-2]}), "non-negative"),
        (msgpack.packb({b"__ndarray__": True, b"data": bytes(8), b"dtype": "nonsense", b"shape": [2]}), "dtype"),
        (msgpack.packb({b"__npgeneric__": True, b"data": "x", b"dtype": "<f4"}), "must be a number"),
    ],
)
def test_malformed_messages_raise_wire_errors(message, match):
    with pytest.raises(WireError, match=match):
        unpackb(message)

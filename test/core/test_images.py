"""Tests for vla_ros.core.images: raw sensor_msgs image fields <-> NumPy, no ROS needed.

Buffers are built by hand (struct / byte lists) so the expected pixels follow the
encodings' definitions, not the implementation.
"""

from __future__ import annotations

import array
import struct
import zlib

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vla_ros.core.images import (
    SUPPORTED_ENCODINGS,
    ImageFormatError,
    decode_compressed,
    decode_image,
    encode_compressed,
    encode_image,
    image_msg_fields_to_rgb8,
    resize_rgb,
    resize_with_pad,
    to_rgb8,
)

PAD = 0xEE  # garbage padding byte that must never show up in decoded pixels


def _rows(rows: list[list[int]], step: int) -> bytes:
    """Concatenate byte rows, each right-padded with PAD up to ``step`` bytes."""
    out = b""
    for r in rows:
        assert len(r) <= step
        out += bytes(r) + bytes([PAD] * (step - len(r)))
    return out


# --------------------------------------------------------------------------- encodings


def test_supported_encodings_cover_required():
    for enc in ("rgb8", "bgr8", "rgba8", "bgra8", "mono8", "mono16", "16UC1", "8UC1", "8UC3"):
        assert enc in SUPPORTED_ENCODINGS


def test_rgb8_pixels_and_channel_order():
    # 2x2: red, green / blue, white (R, G, B byte order per pixel)
    data = bytes([255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30])
    img = decode_image(data, 2, 2, "rgb8", 6, 0)
    assert img.shape == (2, 2, 3) and img.dtype == np.uint8
    assert img[0, 0].tolist() == [255, 0, 0]
    assert img[0, 1].tolist() == [0, 255, 0]
    assert img[1, 0].tolist() == [0, 0, 255]
    assert img[1, 1].tolist() == [10, 20, 30]
    rgb = to_rgb8(img, "rgb8")
    np.testing.assert_array_equal(rgb, img)


def test_bgr8_keeps_order_on_decode_and_swaps_in_to_rgb8():
    # one pixel stored as B=1, G=2, R=3; second as B=200, G=100, R=50
    data = bytes([1, 2, 3, 200, 100, 50])
    img = decode_image(data, 1, 2, "bgr8", 6, False)
    assert img.tolist() == [[[1, 2, 3], [200, 100, 50]]]
    assert to_rgb8(img, "bgr8").tolist() == [[[3, 2, 1], [50, 100, 200]]]
    rgb = image_msg_fields_to_rgb8(data, 1, 2, "bgr8", 6, False)
    assert rgb.tolist() == [[[3, 2, 1], [50, 100, 200]]]


def test_8uc3_is_treated_as_bgr():
    data = bytes([1, 2, 3])
    assert decode_image(data, 1, 1, "8UC3", 3, 0).tolist() == [[[1, 2, 3]]]
    assert image_msg_fields_to_rgb8(data, 1, 1, "8UC3", 3, 0).tolist() == [[[3, 2, 1]]]


def test_rgba8_and_bgra8_drop_alpha():
    data = bytes([10, 20, 30, 40, 50, 60, 70, 80])  # two pixels, 4 bytes each
    rgba = decode_image(data, 1, 2, "rgba8", 8, 0)
    assert rgba.shape == (1, 2, 4)
    assert rgba.tolist() == [[[10, 20, 30, 40], [50, 60, 70, 80]]]
    assert to_rgb8(rgba, "rgba8").tolist() == [[[10, 20, 30], [50, 60, 70]]]
    bgra = decode_image(data, 1, 2, "bgra8", 8, 0)
    assert bgra.tolist() == [[[10, 20, 30, 40], [50, 60, 70, 80]]]
    assert to_rgb8(bgra, "bgra8").tolist() == [[[30, 20, 10], [70, 60, 50]]]
    rgb = image_msg_fields_to_rgb8(data, 1, 2, "bgra8", 8, 0)
    assert rgb.tolist() == [[[30, 20, 10], [70, 60, 50]]]


@pytest.mark.parametrize("enc", ["mono8", "8UC1"])
def test_mono8_decode_and_replicate(enc):
    data = bytes([0, 7, 128, 255, 1, 2])
    img = decode_image(data, 2, 3, enc, 3, 0)
    assert img.shape == (2, 3) and img.dtype == np.uint8
    assert img.tolist() == [[0, 7, 128], [255, 1, 2]]
    rgb = to_rgb8(img, enc)
    assert rgb.shape == (2, 3, 3)
    assert rgb[0, 2].tolist() == [128, 128, 128]
    assert rgb[1, 0].tolist() == [255, 255, 255]


@pytest.mark.parametrize("bigendian", [False, True])
def test_mono16_values_and_top_byte_scaling(bigendian):
    fmt = ">" if bigendian else "<"
    values = [0, 0x01FF, 0x8000, 0xFFFF]
    data = struct.pack(fmt + "4H", *values)
    img = decode_image(data, 2, 2, "mono16", 4, int(bigendian))
    assert img.dtype == np.uint16 and img.dtype.isnative
    assert img.tolist() == [[0, 0x01FF], [0x8000, 0xFFFF]]
    rgb = to_rgb8(img, "mono16")
    assert rgb.shape == (2, 2, 3) and rgb.dtype == np.uint8
    assert rgb[..., 0].tolist() == [[0, 1], [128, 255]]
    assert (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all()


def test_16uc1_big_and_little_endian_agree():
    values = [0, 1, 256, 1000, 0x1234, 65535]
    le = struct.pack("<6H", *values)
    be = struct.pack(">6H", *values)
    assert le != be
    a = decode_image(le, 2, 3, "16UC1", 6, 0)
    b = decode_image(be, 2, 3, "16UC1", 6, 1)
    assert a.dtype == b.dtype == np.dtype(np.uint16)
    assert a.dtype.isnative and b.dtype.isnative
    assert a.tolist() == b.tolist() == [[0, 1, 256], [1000, 0x1234, 65535]]
    # Interpreting big-endian bytes as little-endian gives byte-swapped values.
    wrong = decode_image(be, 2, 3, "16UC1", 6, 0)
    assert wrong[0, 1] == 0x0100


def test_16uc1_depth_scaling():
    depth = np.array([[0, 1000], [2000, 3000]], dtype=np.uint16)
    rgb = to_rgb8(depth, "16UC1")
    assert rgb.shape == (2, 2, 3) and rgb.dtype == np.uint8
    # zero = no reading -> 0; valid min..max (1000..3000) -> 0..255
    assert rgb[..., 0].tolist() == [[0, 0], [128, 255]]
    assert (rgb[..., 0] == rgb[..., 2]).all()


def test_16uc1_depth_scaling_degenerate_cases():
    assert not to_rgb8(np.zeros((3, 4), np.uint16), "16UC1").any()
    flat = np.full((3, 4), 1234, np.uint16)
    flat[0, 0] = 0
    out = to_rgb8(flat, "16UC1")
    assert out.shape == (3, 4, 3) and not out.any()
    big = np.array([[1, 65535]], np.uint16)
    assert to_rgb8(big, "16UC1")[..., 0].tolist() == [[0, 255]]


# --------------------------------------------------------------------------- step / padding


@pytest.mark.parametrize(
    "enc,pixel",
    [
        ("rgb8", [1, 2, 3]),
        ("bgr8", [4, 5, 6]),
        ("rgba8", [1, 2, 3, 4]),
        ("bgra8", [9, 8, 7, 6]),
        ("mono8", [42]),
        ("8UC1", [43]),
        ("8UC3", [7, 8, 9]),
        ("mono16", [0x34, 0x12]),  # little-endian 0x1234
        ("16UC1", [0xE8, 0x03]),  # little-endian 1000
    ],
)
@pytest.mark.parametrize("extra", [0, 1, 3, 8])
def test_row_padding_is_skipped(enc, pixel, extra):
    height, width = 3, 2
    row = pixel * width
    step = len(row) + extra
    data = _rows([row] * height, step)
    img = decode_image(data, height, width, enc, step, 0)
    if len(pixel) in (1, 2):  # single channel
        assert img.shape == (height, width)
        expected = pixel[0] if len(pixel) == 1 else pixel[0] | (pixel[1] << 8)
        assert (img == expected).all()
    else:
        assert img.shape == (height, width, len(pixel))
        assert (img == np.array(pixel, np.uint8)).all()
    assert img.flags.c_contiguous
    if img.dtype == np.uint8:
        assert not (img == PAD).any()
    # the one-step conversion agrees with decode + to_rgb8
    np.testing.assert_array_equal(image_msg_fields_to_rgb8(data, height, width, enc, step, 0), to_rgb8(img, enc))


def test_padding_with_distinct_rows():
    # rgb8, width 1, step 5: rows carry different pixels, 2 garbage bytes each
    data = _rows([[1, 2, 3], [4, 5, 6], [7, 8, 9]], 5)
    assert len(data) == 15
    img = decode_image(data, 3, 1, "rgb8", 5, 0)
    assert img[:, 0].tolist() == [[1, 2, 3], [4, 5, 6], [7, 8, 9]]


def test_odd_step_for_16bit_big_endian():
    # step 5 for a 2-pixel 16-bit row (4 bytes): rows start at unaligned offsets
    data = _rows([[0x12, 0x34, 0xAB, 0xCD], [0x00, 0x01, 0xFF, 0xFE]], 5)
    img = decode_image(data, 2, 2, "16UC1", 5, True)
    assert img.tolist() == [[0x1234, 0xABCD], [0x0001, 0xFFFE]]


def test_trailing_extra_data_is_ignored():
    data = bytes([1, 2, 3]) + bytes([PAD] * 10)
    assert decode_image(data, 1, 1, "rgb8", 3, 0).tolist() == [[[1, 2, 3]]]


# --------------------------------------------------------------------------- buffers / ownership


@pytest.mark.parametrize(
    "wrap",
    [
        bytes,
        bytearray,
        lambda b: memoryview(bytes(b)),
        lambda b: np.frombuffer(bytes(b), dtype=np.uint8),
        lambda b: array.array("B", b),
        list,
    ],
    ids=["bytes", "bytearray", "memoryview", "ndarray", "array.array", "list"],
)
def test_accepts_buffer_types(wrap):
    raw = [1, 2, 3, 4, 5, 6]
    img = decode_image(wrap(raw), 1, 2, "rgb8", 6, 0)
    assert img.tolist() == [[[1, 2, 3], [4, 5, 6]]]
    rgb = image_msg_fields_to_rgb8(wrap(raw), 1, 2, "bgr8", 6, 0)
    assert rgb.tolist() == [[[3, 2, 1], [6, 5, 4]]]


@pytest.mark.parametrize("enc", ["rgb8", "mono8", "16UC1", "bgr8"])
def test_result_does_not_alias_caller_buffer(enc):
    # unpadded buffer: the strided view is contiguous, so a missing copy would alias it
    buf = bytearray(range(1, 13))
    img = decode_image(buf, 2, 2, enc, len(buf) // 2, 0)
    rgb = image_msg_fields_to_rgb8(buf, 2, 2, enc, len(buf) // 2, 0)
    before, before_rgb = img.copy(), rgb.copy()
    buf[:] = bytes(len(buf))  # caller reuses its buffer
    np.testing.assert_array_equal(img, before)
    np.testing.assert_array_equal(rgb, before_rgb)
    img[...] = 0  # result is writable and owned
    arr = np.frombuffer(bytes(range(12)), np.uint8)
    assert not np.shares_memory(decode_image(arr, 2, 2, enc, 6, 0), arr)


# --------------------------------------------------------------------------- errors


def test_unknown_encoding():
    with pytest.raises(ImageFormatError) as ei:
        decode_image(bytes(12), 2, 2, "xyz16", 6, 0)
    msg = str(ei.value)
    assert "'xyz16'" in msg and "not supported" in msg and "rgb8" in msg and "16UC1" in msg
    with pytest.raises(ImageFormatError, match="xyz16"):
        to_rgb8(np.zeros((2, 2, 3), np.uint8), "xyz16")
    with pytest.raises(ImageFormatError, match="xyz16"):
        image_msg_fields_to_rgb8(bytes(12), 2, 2, "xyz16", 6, 0)


def test_encodings_are_case_sensitive():
    with pytest.raises(ImageFormatError, match="'RGB8'"):
        decode_image(bytes(3), 1, 1, "RGB8", 3, 0)


def test_short_buffer():
    with pytest.raises(ImageFormatError) as ei:
        decode_image(bytes(100), 3, 10, "rgba8", 40, 0)
    msg = str(ei.value)
    assert "has 100 bytes" in msg
    assert "step*height = 120" in msg
    assert "step=40" in msg and "height=3" in msg
    assert "rgba8" in msg


def test_step_too_small():
    with pytest.raises(ImageFormatError) as ei:
        decode_image(bytes(100), 2, 2, "rgb8", 5, 0)
    msg = str(ei.value)
    assert "step=5" in msg and "= 6" in msg and "rgb8" in msg
    with pytest.raises(ImageFormatError, match="step=3.*= 4"):
        decode_image(bytes(100), 2, 2, "16UC1", 3, 0)


@pytest.mark.parametrize(
    "height,width,step,name",
    [
        (0, 2, 6, "height"),
        (-1, 2, 6, "height"),
        (2, 0, 6, "width"),
        (2, -3, 6, "width"),
        (2, 2, 0, "step"),
        (2, 2, -6, "step"),
    ],
)
def test_non_positive_sizes(height, width, step, name):
    with pytest.raises(ImageFormatError) as ei:
        decode_image(bytes(100), height, width, "rgb8", step, 0)
    assert f"{name} must be positive" in str(ei.value)
    assert str(min(height, width, step)) in str(ei.value)


def test_non_integer_sizes():
    with pytest.raises(ImageFormatError, match="height must be an int"):
        decode_image(bytes(12), 2.0, 2, "rgb8", 6, 0)
    with pytest.raises(ImageFormatError, match="width must be an int"):
        decode_image(bytes(12), 2, True, "rgb8", 6, 0)


def test_image_format_error_is_value_error():
    assert issubclass(ImageFormatError, ValueError)


def test_to_rgb8_rejects_mismatched_arrays():
    with pytest.raises(ImageFormatError, match="HxWx3"):
        to_rgb8(np.zeros((2, 2), np.uint8), "rgb8")
    with pytest.raises(ImageFormatError, match="HxWx4"):
        to_rgb8(np.zeros((2, 2, 3), np.uint8), "rgba8")
    with pytest.raises(ImageFormatError, match="uint16"):
        to_rgb8(np.zeros((2, 2), np.uint8), "16UC1")
    with pytest.raises(ImageFormatError, match="uint8"):
        to_rgb8(np.zeros((2, 2), np.uint16), "mono8")
    # HxWx1 mono is accepted
    assert to_rgb8(np.full((2, 2, 1), 5, np.uint8), "mono8").shape == (2, 2, 3)


# --------------------------------------------------------------------------- encode_image


def _rgb_pattern(h: int, w: int) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([(x * 37) % 256, (y * 59) % 256, (x + y * 3) % 256], axis=-1).astype(np.uint8)


@pytest.mark.parametrize("enc", ["rgb8", "bgr8", "rgba8", "bgra8"])
def test_encode_decode_round_trip(enc):
    rgb = _rgb_pattern(5, 7)
    msg = encode_image(rgb, enc)
    channels = 4 if "a" in enc else 3
    assert msg["encoding"] == enc
    assert (msg["height"], msg["width"]) == (5, 7)
    assert (msg["step"], msg["is_bigendian"]) == (7 * channels, 0)
    assert isinstance(msg["data"], bytes) and len(msg["data"]) == 5 * 7 * channels
    back = image_msg_fields_to_rgb8(**msg)
    np.testing.assert_array_equal(back, rgb)


def test_encode_bgr8_byte_order():
    msg = encode_image(np.array([[[1, 2, 3]]], np.uint8), "bgr8")
    assert msg["data"] == bytes([3, 2, 1])
    msg = encode_image(np.array([[[1, 2, 3]]], np.uint8), "bgra8")
    assert msg["data"] == bytes([3, 2, 1, 255])


def test_encode_mono8():
    rgb = np.zeros((2, 3, 3), np.uint8)
    rgb[0, 0] = 255
    rgb[1, 2] = (0, 255, 0)
    rgb[0, 1] = (77, 77, 77)
    msg = encode_image(rgb, "mono8")
    assert msg["step"] == 3 and len(msg["data"]) == 6
    mono = decode_image(**msg)
    assert mono[0, 0] == 255 and mono[0, 1] == 77
    assert abs(int(mono[1, 2]) - round(0.587 * 255)) <= 1  # ITU-R BT.601 green weight


def test_encode_image_validates():
    with pytest.raises(ImageFormatError, match=r"HxWx3 uint8.*float32"):
        encode_image(np.zeros((2, 2, 3), np.float32))
    with pytest.raises(ImageFormatError, match=r"\(2, 2\)"):
        encode_image(np.zeros((2, 2), np.uint8))
    with pytest.raises(ImageFormatError, match=r"\(0, 2, 3\)"):
        encode_image(np.zeros((0, 2, 3), np.uint8))
    with pytest.raises(ImageFormatError, match="'16UC1'.*not supported"):
        encode_image(np.zeros((2, 2, 3), np.uint8), "16UC1")


def test_encode_image_handles_non_contiguous_input():
    rgb = _rgb_pattern(6, 8)[::2, ::2]
    assert not rgb.flags.c_contiguous
    np.testing.assert_array_equal(image_msg_fields_to_rgb8(**encode_image(rgb)), rgb)


# --------------------------------------------------------------------------- compressed


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def _handmade_png(rows: list[list[int]], width: int, color_type: int) -> bytes:
    """Minimal 8-bit PNG (color type 2 = RGB, 0 = gray) built from the spec."""
    ihdr = struct.pack(">IIBBBBB", width, len(rows), 8, color_type, 0, 0, 0)
    raw = b"".join(b"\x00" + bytes(r) for r in rows)  # filter type 0 per row
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", zlib.compress(raw))
        + _png_chunk(b"IEND", b"")
    )


def test_decode_handmade_png_channel_order():
    png = _handmade_png([[255, 0, 0, 0, 255, 0], [0, 0, 255, 1, 2, 3]], 2, color_type=2)
    rgb = decode_compressed(png, "png")
    assert rgb.shape == (2, 2, 3) and rgb.dtype == np.uint8
    assert rgb.tolist() == [[[255, 0, 0], [0, 255, 0]], [[0, 0, 255], [1, 2, 3]]]


def test_decode_handmade_gray_png_is_replicated():
    png = _handmade_png([[0, 100, 200]], 3, color_type=0)
    rgb = decode_compressed(png, "mono8; png compressed mono8")
    assert rgb.shape == (1, 3, 3)
    assert rgb.tolist() == [[[0, 0, 0], [100, 100, 100], [200, 200, 200]]]


@pytest.mark.parametrize("fmt", ["png", "rgb8; png compressed bgr8", "PNG"])
def test_png_round_trip_exact(fmt):
    rgb = _rgb_pattern(17, 23)
    data = encode_compressed(rgb, fmt)
    assert isinstance(data, bytes) and data[:8] == b"\x89PNG\r\n\x1a\n"
    np.testing.assert_array_equal(decode_compressed(data, fmt), rgb)


@pytest.mark.parametrize("fmt", ["jpeg", "jpg", "rgb8; jpeg compressed bgr8"])
def test_jpeg_round_trip_within_tolerance(fmt):
    h, w = 32, 48
    y, x = np.mgrid[0:h, 0:w]
    rgb = np.stack([x * 5, y * 7, np.full_like(x, 128)], axis=-1).astype(np.uint8)  # smooth image
    data = encode_compressed(rgb, fmt, quality=95)
    assert data[:2] == b"\xff\xd8"
    back = decode_compressed(data, fmt)
    assert back.shape == rgb.shape and back.dtype == np.uint8
    err = np.abs(back.astype(int) - rgb.astype(int))
    assert err.mean() < 3 and err.max() < 24
    # channel order survives: the red ramp stays in channel 0, the constant 128 in channel 2
    assert abs(int(back[16, 40, 0]) - 200) < 12 and abs(int(back[16, 40, 2]) - 128) < 12


def test_jpeg_quality_affects_size():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    low = encode_compressed(rgb, "jpeg", quality=10)
    high = encode_compressed(rgb, "jpeg", quality=95)
    assert len(low) < len(high)


@pytest.mark.parametrize(
    "wrap",
    [bytes, bytearray, memoryview, lambda b: np.frombuffer(b, np.uint8)],
    ids=["bytes", "bytearray", "memoryview", "ndarray"],
)
def test_decode_compressed_buffer_types(wrap):
    rgb = _rgb_pattern(4, 5)
    png = encode_compressed(rgb, "png")
    np.testing.assert_array_equal(decode_compressed(wrap(png), "png"), rgb)


def test_decode_compressed_garbage():
    garbage = b"this is not an image" * 3
    with pytest.raises(ImageFormatError) as ei:
        decode_compressed(garbage, "jpeg")
    msg = str(ei.value)
    assert "'jpeg'" in msg and f"{len(garbage)} bytes" in msg and "decode" in msg


def test_decode_compressed_truncated_png():
    data = encode_compressed(_rgb_pattern(8, 8), "png")[:20]
    with pytest.raises(ImageFormatError, match=r"'png'.*20 bytes"):
        decode_compressed(data, "png")


def test_decode_compressed_empty():
    with pytest.raises(ImageFormatError, match=r"'jpeg'.*0 bytes"):
        decode_compressed(b"", "jpeg")


def test_decode_compressed_depth_is_rejected():
    with pytest.raises(ImageFormatError, match="compressedDepth"):
        png = encode_compressed(_rgb_pattern(2, 2), "png")
        decode_compressed(png, "16UC1; compressedDepth png")


def test_encode_compressed_validates():
    rgb = _rgb_pattern(2, 2)
    with pytest.raises(ImageFormatError, match="'webp'.*not supported"):
        encode_compressed(rgb, "webp")
    with pytest.raises(ValueError, match="quality"):
        encode_compressed(rgb, "jpeg", quality=101)
    with pytest.raises(ValueError, match="quality"):
        encode_compressed(rgb, "jpeg", quality=-1)
    with pytest.raises(ImageFormatError, match="HxWx3"):
        encode_compressed(np.zeros((2, 2, 4), np.uint8))


# --------------------------------------------------------------------------- resizing


def test_resize_shrink_uses_area_averaging():
    # 4x4 -> 2x2 with INTER_AREA: each output pixel is the mean of a 2x2 block
    img = np.zeros((4, 4, 3), np.uint8)
    img[:2, :2] = [0, 40, 80]
    img[:2, 2:] = [100, 100, 100]
    img[2:, :2] = [10, 20, 30]
    img[2:, 2:] = [200, 0, 50]
    img[0, 0] = [4, 44, 84]  # one block not uniform: mean (4+0+0+0)/4 = 1
    out = resize_rgb(img, 2, 2)
    assert out.shape == (2, 2, 3) and out.dtype == np.uint8
    assert out.tolist() == [[[1, 41, 81], [100, 100, 100]], [[10, 20, 30], [200, 0, 50]]]


def test_resize_grow_is_linear():
    img = np.array([[[0, 0, 0], [100, 100, 100]]], np.uint8)  # 1x2
    out = resize_rgb(img, 1, 4)
    assert out.shape == (1, 4, 3)
    row = out[0, :, 0].tolist()
    assert row[0] == 0 and row[-1] == 100 and row == sorted(row)
    assert 0 < row[1] < 100 and 0 < row[2] < 100  # interpolated, not nearest
    np.testing.assert_array_equal(out, cv2.resize(img, (4, 1), interpolation=cv2.INTER_LINEAR))


def test_resize_same_size_and_validation():
    img = _rgb_pattern(3, 4)
    assert resize_rgb(img, 3, 4) is img
    with pytest.raises(ValueError, match="height"):
        resize_rgb(img, 0, 4)
    with pytest.raises(ValueError, match="width"):
        resize_with_pad(img, 4, -1)
    with pytest.raises(ImageFormatError):
        resize_rgb(np.zeros((3, 4), np.uint8), 2, 2)


def test_resize_with_pad_landscape():
    img = np.full((480, 640, 3), 200, np.uint8)
    out = resize_with_pad(img, 224, 224)
    assert out.shape == (224, 224, 3) and out.dtype == np.uint8
    # ratio = 640/224 -> 168x224, centred: 28 rows of zeros above and below
    assert not out[:28].any() and not out[196:].any()
    assert (out[28:196] == 200).all()


def test_resize_with_pad_portrait_and_odd_padding():
    img = np.full((100, 50, 3), 9, np.uint8)
    out = resize_with_pad(img, 60, 61)
    # ratio = max(50/61, 100/60) = 5/3 -> 60x30; pad_w = int(31/2) = 15 left, 16 right
    assert out.shape == (60, 61, 3)
    assert not out[:, :15].any() and not out[:, 45:].any()
    assert (out[:, 15:45] == 9).all()


def test_resize_with_pad_upscale_and_extreme_aspect():
    out = resize_with_pad(np.full((2, 4, 3), 50, np.uint8), 8, 8)  # 4x8 centred, rows 2..5
    assert not out[:2].any() and not out[6:].any() and (out[2:6] == 50).all()
    thin = resize_with_pad(np.full((1, 1000, 3), 255, np.uint8), 224, 224)
    assert thin.shape == (224, 224, 3)
    assert (thin[111] == 255).all() and thin.sum() == 224 * 3 * 255  # a single row survives


def test_resize_with_pad_same_size_returns_input():
    img = _rgb_pattern(10, 12)
    assert resize_with_pad(img, 10, 12) is img


# --------------------------------------------------------------------------- properties

_ENC_DTYPES = {
    "rgb8": (3, np.uint8),
    "bgr8": (3, np.uint8),
    "rgba8": (4, np.uint8),
    "bgra8": (4, np.uint8),
    "mono8": (1, np.uint8),
    "8UC1": (1, np.uint8),
    "8UC3": (3, np.uint8),
    "mono16": (1, np.uint16),
    "16UC1": (1, np.uint16),
}


@settings(max_examples=100, deadline=None)
@given(
    enc=st.sampled_from(sorted(_ENC_DTYPES)),
    height=st.integers(1, 9),
    width=st.integers(1, 9),
    extra=st.integers(0, 7),
    bigendian=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_property_padded_buffer_round_trip(enc, height, width, extra, bigendian, seed):
    channels, dtype = _ENC_DTYPES[enc]
    rng = np.random.default_rng(seed)
    shape = (height, width) if channels == 1 else (height, width, channels)
    pixels = rng.integers(0, np.iinfo(dtype).max + 1, size=shape, dtype=dtype)
    wire = pixels.astype(np.dtype(dtype).newbyteorder(">" if bigendian else "<"))
    row_bytes = width * channels * np.dtype(dtype).itemsize
    step = row_bytes + extra
    data = b"".join(wire[r].tobytes() + bytes([PAD]) * extra for r in range(height))
    assert len(data) == step * height
    out = decode_image(data, height, width, enc, step, bigendian)
    assert out.shape == shape and out.dtype == np.dtype(dtype) and out.dtype.isnative
    np.testing.assert_array_equal(out, pixels)
    rgb = image_msg_fields_to_rgb8(data, height, width, enc, step, bigendian)
    assert rgb.shape == (height, width, 3) and rgb.dtype == np.uint8
    np.testing.assert_array_equal(rgb, to_rgb8(out, enc))


@settings(max_examples=100, deadline=None)
@given(
    enc=st.sampled_from(["rgb8", "bgr8", "rgba8", "bgra8"]),
    height=st.integers(1, 12),
    width=st.integers(1, 12),
    seed=st.integers(0, 2**32 - 1),
)
def test_property_encode_decode_and_png_round_trip(enc, height, width, seed):
    rgb = np.random.default_rng(seed).integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    np.testing.assert_array_equal(image_msg_fields_to_rgb8(**encode_image(rgb, enc)), rgb)
    np.testing.assert_array_equal(decode_compressed(encode_compressed(rgb, "png"), "png"), rgb)


@settings(max_examples=100, deadline=None)
@given(
    h=st.integers(1, 40),
    w=st.integers(1, 40),
    th=st.integers(1, 40),
    tw=st.integers(1, 40),
)
def test_property_resize_with_pad_geometry(h, w, th, tw):
    img = np.full((h, w, 3), 255, np.uint8)
    out = resize_with_pad(img, th, tw)
    assert out.shape == (th, tw, 3) and out.dtype == np.uint8
    rows = np.flatnonzero(out[..., 0].any(axis=1))
    cols = np.flatnonzero(out[..., 0].any(axis=0))
    # the image fills one dimension completely (up to int() rounding) and is centred in the other
    assert len(rows) >= 1 and len(cols) >= 1
    top, bottom = rows[0], th - 1 - rows[-1]
    left, right = cols[0], tw - 1 - cols[-1]
    assert 0 <= bottom - top <= 1 and 0 <= right - left <= 1
    assert min(top + bottom, left + right) <= 1 or (th, tw) == (h, w)


@pytest.mark.parametrize("enc", ["bgr8", "bgra8", "rgba8", "mono8", "mono16", "16UC1"])
def test_to_rgb8_accepts_strided_and_flipped_views(enc):
    rng = np.random.default_rng(1)
    channels, dtype = _ENC_DTYPES[enc]
    base = rng.integers(1, np.iinfo(dtype).max, size=(12, 14, channels), dtype=dtype)
    base = base[..., 0] if channels == 1 else base
    view = base[::-2, 1::3]  # negative row stride, skipped columns
    expected = to_rgb8(np.ascontiguousarray(view), enc)
    np.testing.assert_array_equal(to_rgb8(view, enc), expected)

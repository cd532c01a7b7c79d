"""Image conversion without cv_bridge: raw ``sensor_msgs`` image fields <-> NumPy.

ROS-free (NumPy + OpenCV only). Functions take the *fields* of a
``sensor_msgs/Image`` (``data, height, width, encoding, step, is_bigendian``)
or ``sensor_msgs/CompressedImage`` (``data, format``), so callers pass
``msg.data`` etc. and never need ``cv_bridge``.

Conventions: colour images handed out by :func:`to_rgb8`,
:func:`decode_compressed` and the resize helpers are ``HxWx3 uint8`` in RGB
order. ``8UC3`` carries no channel order of its own; like OpenCV and
cv_bridge it is treated as BGR. ``8UC1`` is an alias of ``mono8``.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

__all__ = [
    "ImageFormatError",
    "SUPPORTED_ENCODINGS",
    "ENCODE_ENCODINGS",
    "decode_image",
    "to_rgb8",
    "image_msg_fields_to_rgb8",
    "encode_image",
    "decode_compressed",
    "encode_compressed",
    "resize_rgb",
    "resize_with_pad",
]


class ImageFormatError(ValueError):
    """Malformed image or unsupported encoding; the message names the encoding and the problem."""


# encoding -> (channels, bytes per channel)
_LAYOUT: dict[str, tuple[int, int]] = {
    "rgb8": (3, 1),
    "bgr8": (3, 1),
    "rgba8": (4, 1),
    "bgra8": (4, 1),
    "mono8": (1, 1),
    "mono16": (1, 2),
    "16UC1": (1, 2),
    "8UC1": (1, 1),
    "8UC3": (3, 1),
}

SUPPORTED_ENCODINGS: tuple[str, ...] = tuple(_LAYOUT)
"""Encodings accepted by :func:`decode_image` and :func:`to_rgb8`."""

ENCODE_ENCODINGS: tuple[str, ...] = ("rgb8", "bgr8", "rgba8", "bgra8", "mono8")
"""Encodings :func:`encode_image` can produce."""

ImageBytes = bytes | bytearray | memoryview | np.ndarray
"""A message's image data as the decoders take it (any buffer; an ndarray of uint8)."""


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------


def _check_encoding(encoding: Any, supported: tuple[str, ...] = SUPPORTED_ENCODINGS) -> str:
    if not isinstance(encoding, str) or encoding not in supported:
        raise ImageFormatError(f"image {encoding!r} encoding is not supported (supported: {', '.join(supported)})")
    return encoding


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _check_int(name: str, value: Any, encoding: str) -> int:
    if not _is_int(value):
        raise ImageFormatError(f"image {encoding!r}: {name} must be an int, got {type(value).__name__} {value!r}")
    value = int(value)
    if value <= 0:
        raise ImageFormatError(f"image {encoding!r}: {name} must be positive, got {value}")
    return value


def _as_byte_buffer(data: Any, encoding: str) -> np.ndarray:
    """1-D uint8 view of ``data`` (no copy for buffer-protocol objects)."""
    if isinstance(data, np.ndarray):
        # Raw bytes of the array's memory (a copy only if it is non-contiguous).
        return np.ascontiguousarray(data).reshape(-1).view(np.uint8)
    try:
        mv = memoryview(data)
    except TypeError:
        # e.g. a list of ints (rclpy may hand out sequences); this copies.
        try:
            return np.asarray(data, dtype=np.uint8).reshape(-1)
        except (TypeError, ValueError, OverflowError) as exc:
            raise ImageFormatError(
                f"image {encoding!r}: data of type {type(data).__name__} is not a byte buffer"
            ) from exc
    if not mv.c_contiguous:
        raise ImageFormatError(f"image {encoding!r}: data buffer is not contiguous")
    if mv.format != "B" or mv.ndim != 1:
        mv = mv.cast("B")  # e.g. array.array('B') / bytes-like with another format
    return np.frombuffer(mv, dtype=np.uint8)


def _raw_view(data: Any, height: Any, width: Any, encoding: Any, step: Any, is_bigendian: Any) -> np.ndarray:
    """Validated, *non-copying* strided view of the image in ``data``.

    Shape ``HxW`` (1 channel) or ``HxWxC``; dtype ``uint8`` or ``>u2``/``<u2``
    as given by ``is_bigendian``. Padding bytes past each row are skipped by
    the strides. The view references ``data``: callers must copy.
    """
    encoding = _check_encoding(encoding)
    height = _check_int("height", height, encoding)
    width = _check_int("width", width, encoding)
    step = _check_int("step", step, encoding)
    channels, bpc = _LAYOUT[encoding]
    row_bytes = width * channels * bpc
    if step < row_bytes:
        raise ImageFormatError(
            f"image {encoding!r}: step={step} is smaller than width*channels*bytes_per_channel"
            f" = {row_bytes} (width={width}, channels={channels}, bytes_per_channel={bpc})"
        )
    buf = _as_byte_buffer(data, encoding)
    needed = step * height
    if buf.size < needed:
        raise ImageFormatError(
            f"image data has {buf.size} bytes, expected at least step*height = {needed}"
            f" (step={step}, height={height}, encoding {encoding!r})"
        )
    if bpc == 1:
        dtype = np.dtype(np.uint8)
    else:
        dtype = np.dtype(">u2" if bool(is_bigendian) else "<u2")
    if channels == 1:
        shape: tuple[int, ...] = (height, width)
        strides: tuple[int, ...] = (step, bpc)
    else:
        shape = (height, width, channels)
        strides = (step, channels * bpc, bpc)
    return np.ndarray(shape=shape, dtype=dtype, buffer=buf, offset=0, strides=strides)


def _rgb_view_or_new(array: np.ndarray, encoding: str) -> tuple[np.ndarray, bool]:
    """RGB version of ``array`` as ``(result, is_new)``; not ``is_new`` means a view of it."""
    if encoding == "rgb8":
        return array, False
    if encoding in ("bgr8", "8UC3"):
        return _cvt(array, cv2.COLOR_BGR2RGB), True
    if encoding == "rgba8":
        return _cvt(array, cv2.COLOR_RGBA2RGB), True
    if encoding == "bgra8":
        return _cvt(array, cv2.COLOR_BGRA2RGB), True
    if encoding in ("mono8", "8UC1"):
        return _cvt(array, cv2.COLOR_GRAY2RGB), True
    if encoding == "mono16":
        return _cvt((array >> 8).astype(np.uint8), cv2.COLOR_GRAY2RGB), True
    if encoding == "16UC1":
        return _cvt(_depth_to_uint8(array), cv2.COLOR_GRAY2RGB), True
    raise AssertionError(encoding)  # pragma: no cover - guarded by _check_encoding


def _cvt(array: np.ndarray, code: int) -> np.ndarray:
    """``cv2.cvtColor`` (new array); compacts layouts OpenCV cannot wrap (rows must be dense)."""
    row_bytes = array.shape[1] * (array.shape[2] if array.ndim == 3 else 1) * array.itemsize
    dense_rows = array.strides[-1] == array.itemsize and (
        array.ndim == 2 or array.strides[1] == array.shape[2] * array.itemsize
    )
    if not dense_rows or array.strides[0] < row_bytes:
        array = np.ascontiguousarray(array)
    return cv2.cvtColor(array, code)


def _depth_to_uint8(depth: np.ndarray) -> np.ndarray:
    """HxW uint16 depth (mm) -> HxW uint8: valid (non-zero) min..max -> 0..255, zero stays 0."""
    valid = depth != 0
    if not valid.any():
        return np.zeros(depth.shape, dtype=np.uint8)
    vals = depth[valid]
    lo = int(vals.min())
    hi = int(vals.max())
    if hi == lo:  # flat image: nothing to stretch
        return np.zeros(depth.shape, dtype=np.uint8)
    scaled = (depth.astype(np.float32) - np.float32(lo)) * np.float32(255.0 / (hi - lo))
    out = np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
    out[~valid] = 0
    return out


def _check_rgb(rgb: Any, what: str = "rgb") -> np.ndarray:
    if not isinstance(rgb, np.ndarray):
        raise ImageFormatError(f"{what} must be a numpy array, got {type(rgb).__name__}")
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ImageFormatError(f"{what} must be an HxWx3 uint8 array, got shape {rgb.shape} dtype {rgb.dtype}")
    if rgb.shape[0] == 0 or rgb.shape[1] == 0:
        raise ImageFormatError(f"{what} must be non-empty, got shape {rgb.shape}")
    return rgb


def _check_target_size(height: Any, width: Any) -> tuple[int, int]:
    for name, value in (("height", height), ("width", width)):
        if not _is_int(value) or value <= 0:
            raise ValueError(f"target {name} must be a positive int, got {value!r}")
    return int(height), int(width)


# ---------------------------------------------------------------------------
# sensor_msgs/Image
# ---------------------------------------------------------------------------


def decode_image(
    data: ImageBytes, height: int, width: int, encoding: str, step: int, is_bigendian: bool | int
) -> np.ndarray:
    """Decode the raw fields of a ``sensor_msgs/Image`` into an array in the encoding's own layout.

    Returns ``HxWx3 uint8`` (rgb8/bgr8/8UC3, channel order as encoded), ``HxWx4 uint8``
    (rgba8/bgra8), ``HxW uint8`` (mono8/8UC1) or ``HxW uint16`` in native byte order
    (mono16/16UC1; ``is_bigendian`` says how ``data`` is stored).

    Row padding (``step > width*channels*bytes_per_channel``) is skipped. ``data`` may be
    any buffer (bytes, bytearray, memoryview, array.array, uint8 ndarray); it is read
    through a strided view and copied exactly once, so the result owns its memory.

    Raises:
        ImageFormatError: unknown encoding, non-positive sizes, ``step`` too small, or
            fewer than ``step*height`` bytes of data.
    """
    view = _raw_view(data, height, width, encoding, step, is_bigendian)
    # One copy: contiguous, native byte order, independent of the caller's buffer.
    return view.astype(view.dtype.newbyteorder("="), order="C", copy=True)


def to_rgb8(array: np.ndarray, encoding: str) -> np.ndarray:
    """Convert an array as returned by :func:`decode_image` to ``HxWx3 uint8`` RGB.

    - rgb8: returned as is (the input itself when already C-contiguous).
    - bgr8 / 8UC3: channels swapped; rgba8 / bgra8: alpha dropped (and swapped for bgra8).
    - mono8 / 8UC1: replicated to 3 channels.
    - mono16: ``value >> 8`` (top byte), replicated.
    - 16UC1 (depth, mm): 0 means "no reading" and maps to 0; the non-zero pixels are
      scaled linearly from their own min..max to 0..255 (rounded). An image with no
      or only one distinct non-zero depth gives all zeros. Per-image scaling: for
      visualisation / feeding a model, not for metric use.

    Raises:
        ImageFormatError: unknown encoding or an array whose shape/dtype does not fit it.
    """
    encoding = _check_encoding(encoding)
    if not isinstance(array, np.ndarray):
        raise ImageFormatError(f"image {encoding!r}: expected a numpy array, got {type(array).__name__}")
    channels, bpc = _LAYOUT[encoding]
    want_dtype = np.dtype(np.uint8) if bpc == 1 else np.dtype(np.uint16)
    if channels == 1 and array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    want_ndim = 2 if channels == 1 else 3
    if (
        array.dtype.kind != "u"
        or array.dtype.itemsize != want_dtype.itemsize
        or array.ndim != want_ndim
        or (channels > 1 and array.shape[2] != channels)
    ):
        expected = "HxW" if channels == 1 else f"HxWx{channels}"
        raise ImageFormatError(
            f"image {encoding!r}: expected an {expected} {want_dtype} array,"
            f" got shape {array.shape} dtype {array.dtype}"
        )
    out, _ = _rgb_view_or_new(array, encoding)
    return np.ascontiguousarray(out)


def image_msg_fields_to_rgb8(
    data: ImageBytes, height: int, width: int, encoding: str, step: int, is_bigendian: bool | int, copy: bool = True
) -> np.ndarray:
    """``sensor_msgs/Image`` fields -> ``HxWx3 uint8`` RGB (``to_rgb8(decode_image(...))``).

    Same validation and errors as :func:`decode_image`. For 8-bit colour encodings the
    channel reordering is applied on the view of ``data``, so the bytes are copied once.
    ``copy=False``: an rgb8 image comes back as a read-only view of ``data`` (no copy; it keeps
    ``data`` alive), for callers that own the buffer and never change it (a received message).
    """
    view = _raw_view(data, height, width, encoding, step, is_bigendian)
    out, is_new = _rgb_view_or_new(view, encoding)
    if not is_new and copy:
        out = np.array(out, order="C", copy=True)  # detach from the caller's buffer
    elif not is_new:
        out = out.view()
        out.flags.writeable = False
    return out


def encode_image(rgb: np.ndarray, encoding: str = "rgb8") -> dict:
    """Encode an ``HxWx3 uint8`` RGB array as ``sensor_msgs/Image`` fields.

    ``encoding`` is one of :data:`ENCODE_ENCODINGS` (rgb8, bgr8, rgba8, bgra8 with
    alpha 255, mono8 via OpenCV's RGB->GRAY weights). Returns
    ``dict(height=, width=, encoding=, step=, is_bigendian=0, data=bytes)`` with
    unpadded rows (``step = width * channels``).

    Raises:
        ImageFormatError: bad array shape/dtype or an encoding that cannot be produced.
    """
    encoding = _check_encoding(encoding, ENCODE_ENCODINGS)
    rgb = _check_rgb(rgb)
    h, w = rgb.shape[:2]
    if encoding == "rgb8":
        out = rgb
    elif encoding == "bgr8":
        out = rgb[..., ::-1]
    elif encoding == "rgba8":
        out = np.empty((h, w, 4), dtype=np.uint8)
        out[..., :3] = rgb
        out[..., 3] = 255
    elif encoding == "bgra8":
        out = np.empty((h, w, 4), dtype=np.uint8)
        out[..., :3] = rgb[..., ::-1]
        out[..., 3] = 255
    else:  # mono8
        out = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)
    channels = _LAYOUT[encoding][0]
    return dict(
        height=int(h),
        width=int(w),
        encoding=encoding,
        step=int(w * channels),
        is_bigendian=0,
        data=np.ascontiguousarray(out).tobytes(),
    )


# ---------------------------------------------------------------------------
# sensor_msgs/CompressedImage
# ---------------------------------------------------------------------------

_IMREAD_RGB = getattr(cv2, "IMREAD_COLOR_RGB", None)  # OpenCV >= 4.10 decodes straight to RGB


def decode_compressed(data: ImageBytes, format: str) -> np.ndarray:
    """Decode ``sensor_msgs/CompressedImage`` data (JPEG, PNG, ...) to ``HxWx3 uint8`` RGB.

    ``format`` is the message's format string (``"jpeg"``, ``"png"``,
    ``"rgb8; jpeg compressed bgr8"``, ...). OpenCV detects the codec from the data
    itself, so ``format`` is only checked for the unsupported ``compressedDepth``
    transport and used in error messages. Grayscale images come back replicated to
    3 channels; EXIF orientation is ignored (pixels as stored).

    Raises:
        ImageFormatError: empty or undecodable data (message names format and data length),
            or a ``compressedDepth`` format.
    """
    fmt = str(format)
    if "compresseddepth" in fmt.lower():
        raise ImageFormatError(
            f"compressed image format {fmt!r} (compressedDepth) is not supported; decode depth"
            " from a raw sensor_msgs/Image instead"
        )
    buf = _as_byte_buffer(data, fmt)
    if buf.size == 0:
        raise ImageFormatError(f"compressed image ({fmt!r}) has no data (0 bytes)")
    color = _IMREAD_RGB if _IMREAD_RGB is not None else cv2.IMREAD_COLOR
    flags = color | cv2.IMREAD_IGNORE_ORIENTATION
    try:
        img = cv2.imdecode(buf, flags)
    except cv2.error as exc:
        raise ImageFormatError(f"could not decode compressed image ({fmt!r}, {buf.size} bytes): {exc}") from exc
    if img is None or img.size == 0:
        raise ImageFormatError(f"could not decode compressed image ({fmt!r}, {buf.size} bytes): not a valid image")
    if img.dtype != np.uint8:  # e.g. 16-bit PNG with some OpenCV builds
        img = (img >> 8).astype(np.uint8) if img.dtype == np.uint16 else img.astype(np.uint8)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    elif _IMREAD_RGB is None:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    return img


def _compressed_ext(format: str) -> str:
    fmt = str(format).lower()
    # ROS style "rgb8; jpeg compressed bgr8": the codec is after the ';'.
    codec_part = fmt.split(";", 1)[1] if ";" in fmt else fmt
    if "png" in codec_part:
        return ".png"
    if "jpeg" in codec_part or "jpg" in codec_part:
        return ".jpg"
    raise ImageFormatError(f"compressed image format {format!r} is not supported (supported: jpeg, png)")


def encode_compressed(rgb: np.ndarray, format: str = "jpeg", quality: int = 90) -> bytes:
    """Compress an ``HxWx3 uint8`` RGB array to JPEG or PNG bytes.

    ``format``: ``"jpeg"``/``"jpg"``/``"png"`` or a ROS format string such as
    ``"rgb8; jpeg compressed bgr8"``. ``quality`` (0..100) applies to JPEG only;
    PNG uses OpenCV's default compression level (lossless either way).

    Raises:
        ImageFormatError: bad array or unsupported format. ValueError: bad quality.
    """
    rgb = _check_rgb(rgb)
    ext = _compressed_ext(format)
    if not _is_int(quality) or not 0 <= quality <= 100:
        raise ValueError(f"quality must be an int in 0..100, got {quality!r}")
    params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)] if ext == ".jpg" else []
    bgr = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(ext, bgr, params)
    if not ok:  # pragma: no cover - OpenCV encoders do not fail for valid uint8 input
        raise ImageFormatError(f"could not encode image as {format!r}")
    return buf.tobytes()


# ---------------------------------------------------------------------------
# resizing
# ---------------------------------------------------------------------------


def resize_rgb(rgb: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize an ``HxWx3 uint8`` image to ``height x width x 3`` (aspect ratio not kept).

    Uses ``cv2.INTER_AREA`` when neither dimension grows (shrinking), ``cv2.INTER_LINEAR``
    otherwise. Returns the input itself when it already has the target size.
    """
    rgb = _check_rgb(rgb)
    height, width = _check_target_size(height, width)
    h, w = rgb.shape[:2]
    if (h, w) == (height, width):
        return rgb
    interp = cv2.INTER_AREA if (height <= h and width <= w) else cv2.INTER_LINEAR
    return cv2.resize(np.ascontiguousarray(rgb), (width, height), interpolation=interp)


def resize_with_pad(rgb: np.ndarray, height: int, width: int) -> np.ndarray:
    """Fit an ``HxWx3 uint8`` image into ``height x width x 3``, keeping aspect ratio, zero-padded.

    Same geometry as openpi's ``image_tools.resize_with_pad`` (tf.image.resize_with_pad):
    ``ratio = max(w/width, h/height)``, resized size ``int(h/ratio) x int(w/ratio)``
    (at least 1), placed at offset ``int((height-rh)/2), int((width-rw)/2)`` in a zero image.
    Resampling is :func:`resize_rgb`'s (openpi uses PIL bilinear, so pixels can differ
    slightly). Returns the input itself when it already has the target size.
    """
    rgb = _check_rgb(rgb)
    height, width = _check_target_size(height, width)
    cur_h, cur_w = rgb.shape[:2]
    if (cur_h, cur_w) == (height, width):
        return rgb
    ratio = max(cur_w / width, cur_h / height)
    resized_h = min(height, max(1, int(cur_h / ratio)))
    resized_w = min(width, max(1, int(cur_w / ratio)))
    resized = resize_rgb(rgb, resized_h, resized_w)
    out = np.zeros((height, width, 3), dtype=np.uint8)
    pad_h = max(0, int((height - resized_h) / 2))
    pad_w = max(0, int((width - resized_w) / 2))
    out[pad_h : pad_h + resized_h, pad_w : pad_w + resized_w] = resized
    return out

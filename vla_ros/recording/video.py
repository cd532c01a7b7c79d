"""MP4 video per camera through the ffmpeg that imageio-ffmpeg ships (a separate process: encoding
never holds this process's GIL).

Codecs (`VIDEO_CODECS`):
- `lossless`: H.264 in RGB (libx264rgb, qp 0): decoded frames equal the recorded ones bit for bit.
  Plays in ffmpeg/PyAV/torchcodec (what LeRobot decodes with), not in most browsers (High 4:4:4).
- `h264`: H.264 yuv420p (libx264, crf 18): plays everywhere; chroma at half resolution, so a decoded
  pixel differs from the recorded one by the codec's loss (sharp colour edges most).
Both use a keyframe every 2 frames, as LeRobot's encoder does, so a decoder seeking to one frame
decodes at most one more.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np

GOP = 2
VIDEO_CODECS = {
    "lossless": {
        "args": ["-c:v", "libx264rgb", "-qp", "0", "-preset", "veryfast", "-pix_fmt", "rgb24"],
        "codec": "h264",
        "pix_fmt": "gbrp",  # libx264rgb's planar RGB
    },
    "h264": {
        "args": ["-c:v", "libx264", "-crf", "18", "-preset", "veryfast", "-pix_fmt", "yuv420p"],
        "codec": "h264",
        "pix_fmt": "yuv420p",
    },
}


def ffmpeg_exe() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


class VideoEncoder:
    """Frames (H, W, 3) uint8 RGB in, one MP4 out at `fps`; frame i is at i / fps seconds."""

    def __init__(self, path: Path, width: int, height: int, fps: float, codec: str = "lossless"):
        if codec not in VIDEO_CODECS:
            raise ValueError(f"video codec {codec!r}: one of {sorted(VIDEO_CODECS)}")
        if codec == "h264" and (width % 2 or height % 2):
            raise ValueError(f"video codec h264 (yuv420p) needs even sizes, got {width}x{height}: use lossless")
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.size = (height, width)
        self.frames = 0
        self._proc = subprocess.Popen(
            [
                ffmpeg_exe(),
                *("-y", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgb24"),
                *("-s", f"{width}x{height}", "-r", f"{fps:g}", "-i", "-", "-an"),
                *VIDEO_CODECS[codec]["args"],
                *("-g", str(GOP), "-threads", "1", str(self.path)),
            ],
            stdin=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )

    def add(self, frame: np.ndarray) -> None:
        if frame.shape != (*self.size, 3) or frame.dtype != np.uint8:
            raise ValueError(f"{self.path.name}: frame {frame.shape} {frame.dtype}, expected {(*self.size, 3)} uint8")
        self._proc.stdin.write(np.ascontiguousarray(frame).tobytes())
        self.frames += 1

    def close(self) -> Path:
        _, err = self._proc.communicate()
        if self._proc.returncode != 0:
            raise RuntimeError(f"ffmpeg failed writing {self.path}: {err.decode(errors='replace').strip()}")
        return self.path


def read_video(path: Path, width: int, height: int) -> np.ndarray:
    """Every frame of an MP4 as (N, H, W, 3) uint8 RGB, in presentation order, none dropped or repeated."""
    proc = subprocess.run(
        [ffmpeg_exe(), "-loglevel", "error", "-i", str(path), "-fps_mode", "passthrough"]
        + ["-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        capture_output=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"ffmpeg failed reading {path}: {proc.stderr.decode(errors='replace').strip()}")
    frame_bytes = width * height * 3
    if len(proc.stdout) % frame_bytes:
        raise RuntimeError(f"{path}: {len(proc.stdout)} bytes decoded, not whole {width}x{height} frames")
    return np.frombuffer(proc.stdout, np.uint8).reshape(-1, height, width, 3)

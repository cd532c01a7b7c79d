"""LeRobotDataset v3.0 on disk, as LeRobot 0.6.1 reads it, written with pyarrow and ffmpeg (no LeRobot here).

Layout (LeRobot's `datasets/utils.py`):
    meta/info.json      codebase_version v3.0, fps, features, totals, path templates, robot_type, splits
    meta/stats.json     per feature min/max/mean/std/count/q01/q10/q50/q90/q99 (images per channel, in [0, 1])
    meta/tasks.parquet  task_index, task (pandas index: task)
    meta/episodes/chunk-{c:03d}/file-{f:03d}.parquet   one row per episode: length, tasks, data and video
                        file indices, the episode's frame range and video time range, its statistics
                        (`stats/<feature>/<stat>`), and `outcome` (success / failure / interrupted / unknown)
    data/chunk-{c:03d}/file-{f:03d}.parquet            the frames (one row group per episode)
    videos/observation.images.<camera>/chunk-{c:03d}/file-{f:03d}.mp4

Each episode is appended as files of its own (episode e: chunk e // 1000, file e % 1000; its video starts
at 0 s), so a recording grows one episode at a time and an interrupted run leaves a readable dataset.
Features per frame: `observation.images.<camera>` (video), `observation.state` (joint positions),
`action` (the command sent), `action.chunk` (H, D) with `action.chunk_time` (H,) and
`action.chunk_length` (the policy's chunk in force, recording/episode.py), `timestamp`,
`frame_index`, `episode_index`, `index`, `task_index`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vla_ros.recording.episode import Episode
from vla_ros.recording.video import GOP, VIDEO_CODECS, VideoEncoder, read_video

CODEBASE_VERSION = "v3.0"
CHUNKS_SIZE = 1000
QUANTILES = (0.01, 0.10, 0.50, 0.90, 0.99)
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
EPISODES_PATH = "meta/episodes/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
INDEX_FEATURES = ("timestamp", "frame_index", "episode_index", "index", "task_index")
ARRAY2D = "datasets.features.features.Array2DExtensionType"


class DatasetError(ValueError):
    """A dataset that cannot be appended to or read; the message names the folder and the problem."""


def image_key(camera: str) -> str:
    return f"observation.images.{camera}"


# --- statistics (as LeRobot's compute_stats: per feature over the episode's frames) ----------------


def vector_stats(x: np.ndarray) -> dict[str, np.ndarray]:
    x = np.asarray(x, dtype=np.float64)
    out = {
        "min": x.min(axis=0),
        "max": x.max(axis=0),
        "mean": x.mean(axis=0),
        "std": x.std(axis=0),
        "count": np.array([len(x)]),
    }
    for q in QUANTILES:
        out[f"q{round(q * 100):02d}"] = np.quantile(x, q, axis=0)
    return out


class ImageStats:
    """Per-channel statistics of uint8 frames in [0, 1], exact from value histograms, shape (3, 1, 1)."""

    def __init__(self):
        self.hist = np.zeros((3, 256), np.int64)
        self.frames = 0

    def add(self, frame: np.ndarray) -> None:
        for c in range(3):
            self.hist[c] += np.bincount(frame[..., c].ravel(), minlength=256)
        self.frames += 1

    def stats(self) -> dict[str, np.ndarray]:
        values = np.arange(256) / 255.0
        total = self.hist.sum(axis=1, keepdims=True)
        p = self.hist / total
        mean = (p * values).sum(axis=1)
        std = np.sqrt((p * (values - mean[:, None]) ** 2).sum(axis=1))
        cum = np.cumsum(p, axis=1)
        nonzero = self.hist > 0
        out = {
            "min": values[nonzero.argmax(axis=1)],
            "max": values[255 - nonzero[:, ::-1].argmax(axis=1)],
            "mean": mean,
            "std": std,
        }
        for q in QUANTILES:
            out[f"q{round(q * 100):02d}"] = values[(cum < q).sum(axis=1).clip(0, 255)]
        out = {k: v.reshape(3, 1, 1) for k, v in out.items()}
        out["count"] = np.array([self.frames])
        return out


def aggregate_stats(per_episode: list[dict[str, dict[str, np.ndarray]]]) -> dict[str, dict[str, np.ndarray]]:
    """Dataset statistics from episodes' (LeRobot's aggregate_stats: count-weighted mean, pooled variance,
    min of mins, max of maxes, count-weighted quantiles)."""
    out = {}
    for key in per_episode[0]:
        stats = [s[key] for s in per_episode]
        counts = np.stack([s["count"] for s in stats]).astype(np.float64)
        total = counts.sum(axis=0)
        means = np.stack([s["mean"] for s in stats])
        w = counts.reshape(counts.shape + (1,) * (means.ndim - counts.ndim))
        mean = (means * w).sum(axis=0) / total
        var = ((np.stack([s["std"] for s in stats]) ** 2 + (means - mean) ** 2) * w).sum(axis=0) / total
        agg = {
            "min": np.min(np.stack([s["min"] for s in stats]), axis=0),
            "max": np.max(np.stack([s["max"] for s in stats]), axis=0),
            "mean": mean,
            "std": np.sqrt(var),
            "count": total.astype(np.int64),
        }
        for q in [k for k in stats[0] if k.startswith("q")]:
            agg[q] = (np.stack([s[q] for s in stats]) * w).sum(axis=0) / total
        out[key] = agg
    return out


def _tolist(stats: dict[str, dict[str, np.ndarray]]) -> dict:
    return {k: {s: np.asarray(v).tolist() for s, v in d.items()} for k, d in stats.items()}


# --- the writer ---------------------------------------------------------------------------------


@dataclass
class _Feature:
    dtype: str
    shape: tuple[int, ...]
    names: list | None = None
    info: dict | None = None

    def to_json(self) -> dict:
        d = {"dtype": self.dtype, "shape": list(self.shape), "names": self.names}
        if self.info is not None:
            d["info"] = self.info
        return d


class LeRobotWriter:
    """Appends episodes to a LeRobotDataset folder (created on the first episode, else continued:
    same fps, cameras, joints and chunk length)."""

    def __init__(self, root: str | Path, fps: float, robot_type: str = "", codec: str = "lossless"):
        if codec not in VIDEO_CODECS:
            raise DatasetError(f"video codec {codec!r}: one of {sorted(VIDEO_CODECS)}")
        if abs(fps - round(fps)) > 1e-9:
            raise DatasetError(f"fps {fps}: a LeRobotDataset's fps is a whole number")
        self.root = Path(root)
        self.fps = int(round(fps))
        self.robot_type = robot_type
        self.codec = codec
        self.info: dict | None = None
        self.tasks: list[str] = []
        self.episode_stats: list[dict] = []
        if (self.root / "meta" / "info.json").is_file():
            self._load_existing()

    def _load_existing(self) -> None:
        import pyarrow.parquet as pq

        info = json.loads((self.root / "meta" / "info.json").read_text())
        if info.get("codebase_version") != CODEBASE_VERSION:
            raise DatasetError(f"{self.root}: codebase_version {info.get('codebase_version')}, not {CODEBASE_VERSION}")
        if info["fps"] != self.fps:
            raise DatasetError(f"{self.root}: recorded at {info['fps']} fps, appending at {self.fps}")
        self.info = info
        self.tasks = pq.read_table(self.root / "meta" / "tasks.parquet").column("task").to_pylist()
        for row in read_episodes(self.root):
            stats = {}
            for col, value in row.items():
                if col.startswith("stats/"):
                    key, stat = col[len("stats/") :].rsplit("/", 1)
                    stats.setdefault(key, {})[stat] = np.asarray(value)
            self.episode_stats.append(stats)

    # features of the first episode
    def _features(self, ep: Episode) -> dict[str, _Feature]:
        spec = VIDEO_CODECS[self.codec]
        feats = {}
        for cam, (h, w) in ep.frame_sizes.items():
            feats[image_key(cam)] = _Feature(
                "video",
                (h, w, 3),
                ["height", "width", "channels"],
                {
                    "video.height": h,
                    "video.width": w,
                    "video.codec": spec["codec"],
                    "video.pix_fmt": spec["pix_fmt"],
                    "video.fps": self.fps,
                    "video.channels": 3,
                    "video.g": GOP,
                    "has_audio": False,
                    "is_depth_map": False,
                },
            )
        feats["observation.state"] = _Feature("float32", (ep.state.shape[1],), list(ep.topics.joint_names))
        feats["action"] = _Feature("float32", (ep.action.shape[1],), ep.topics.action_names())
        if ep.chunk is not None:
            feats["action.chunk"] = _Feature("float32", tuple(ep.chunk.shape[1:]), list(ep.topics.joint_names))
            feats["action.chunk_time"] = _Feature("float32", (ep.chunk.shape[1],), None)
            feats["action.chunk_length"] = _Feature("int64", (1,), None)
        feats["timestamp"] = _Feature("float32", (1,), None)
        for k in INDEX_FEATURES[1:]:
            feats[k] = _Feature("int64", (1,), None)
        return feats

    def horizon(self) -> int | None:
        """The chunk length episodes must have (None: no dataset yet; 0: the dataset has no chunks)."""
        if self.info is None:
            return None
        chunk = self.info["features"].get("action.chunk")
        return chunk["shape"][0] if chunk else 0

    def add_episode(self, ep: Episode, pause=None) -> dict:
        """Write `ep` (frames read from its bag now) and update meta/; returns its episodes row (no stats).
        `pause()`, if given, is called between frames (the recorder waits there while an episode records)."""
        if len(ep) == 0:
            raise DatasetError("an episode with no frames")
        if self.info is None:
            feats = self._features(ep)
            self.info = {
                "codebase_version": CODEBASE_VERSION,
                "fps": self.fps,
                "features": {k: f.to_json() for k, f in feats.items()},
                "total_episodes": 0,
                "total_frames": 0,
                "total_tasks": 0,
                "chunks_size": CHUNKS_SIZE,
                "data_files_size_in_mb": 100,
                "video_files_size_in_mb": 200,
                "data_path": DATA_PATH,
                "video_path": VIDEO_PATH,
                "robot_type": self.robot_type or ep.topics.robot,
                "splits": {},
            }
        self._check_matches(ep)
        index = self.info["total_episodes"]
        chunk_index, file_index = divmod(index, CHUNKS_SIZE)
        where = {"chunk_index": chunk_index, "file_index": file_index}
        first = self.info["total_frames"]
        n = len(ep)

        stats = self._write_videos(ep, where, pause)
        for task in ep.tasks:
            if task not in self.tasks:
                self.tasks.append(task)
        task_index = np.array([self.tasks.index(t) for t in ep.tasks], np.int64)
        columns = {
            "observation.state": ep.state,
            "action": ep.action,
        }
        if ep.chunk is not None:
            columns |= {
                "action.chunk": ep.chunk,
                "action.chunk_time": ep.chunk_time,
                "action.chunk_length": ep.chunk_length,
            }
        columns |= {
            "timestamp": ep.timestamps,
            "frame_index": np.arange(n, dtype=np.int64),
            "episode_index": np.full(n, index, np.int64),
            "index": np.arange(first, first + n, dtype=np.int64),
            "task_index": task_index,
        }
        for key, values in columns.items():
            stats[key] = vector_stats(values.reshape(n, -1) if values.ndim == 1 else values)
        self._write_data(columns, where)
        row = {
            "episode_index": index,
            "tasks": list(dict.fromkeys(ep.tasks)),
            "length": n,
            "data/chunk_index": chunk_index,
            "data/file_index": file_index,
            "dataset_from_index": first,
            "dataset_to_index": first + n,
        }
        for cam in ep.frame_sizes:
            key = image_key(cam)
            row |= {
                f"videos/{key}/chunk_index": chunk_index,
                f"videos/{key}/file_index": file_index,
                f"videos/{key}/from_timestamp": 0.0,
                f"videos/{key}/to_timestamp": n / self.fps,
            }
        self._write_episode_row(row, stats, ep, where)
        self.episode_stats.append(stats)
        self.info["total_episodes"] = index + 1
        self.info["total_frames"] = first + n
        self.info["total_tasks"] = len(self.tasks)
        self.info["splits"] = {"train": f"0:{index + 1}"}
        self._write_meta()
        return row

    def _check_matches(self, ep: Episode) -> None:
        feats = self.info["features"]
        want = {k[len("observation.images.") :] for k, f in feats.items() if f["dtype"] == "video"}
        if set(ep.frame_sizes) != want:
            raise DatasetError(f"{self.root}: cameras {sorted(ep.frame_sizes)}, the dataset has {sorted(want)}")
        for cam, (h, w) in ep.frame_sizes.items():
            if tuple(feats[image_key(cam)]["shape"][:2]) != (h, w):
                raise DatasetError(
                    f"{self.root}: camera {cam} is {h}x{w}, the dataset's {feats[image_key(cam)]['shape']}"
                )
        if feats["observation.state"]["names"] != list(ep.topics.joint_names):
            raise DatasetError(
                f"{self.root}: joints {list(ep.topics.joint_names)}, the dataset's "
                f"{feats['observation.state']['names']}"
            )
        if feats["action"]["names"] != ep.topics.action_names():
            raise DatasetError(
                f"{self.root}: actions {ep.topics.action_names()}, the dataset's {feats['action']['names']}"
            )
        has_chunk = "action.chunk" in feats
        if has_chunk != (ep.chunk is not None) or (
            has_chunk and list(ep.chunk.shape[1:]) != feats["action.chunk"]["shape"]
        ):
            raise DatasetError(
                f"{self.root}: chunk shape {None if ep.chunk is None else list(ep.chunk.shape[1:])}, the dataset's "
                f"{feats.get('action.chunk', {}).get('shape')} (episodes are built with the dataset's horizon)"
            )

    def _write_videos(self, ep: Episode, where: dict, pause=None) -> dict:
        encoders, image_stats = {}, {}
        try:
            for cam, (h, w) in ep.frame_sizes.items():
                path = self.root / VIDEO_PATH.format(video_key=image_key(cam), **where)
                encoders[cam] = VideoEncoder(path, w, h, self.fps, self.codec)
                image_stats[cam] = ImageStats()
            for frames in ep.frames():
                if pause is not None:
                    pause()
                for cam, frame in frames.items():
                    encoders[cam].add(frame)
                    image_stats[cam].add(frame)
        finally:
            for enc in encoders.values():
                enc.close()
        return {image_key(cam): s.stats() for cam, s in image_stats.items()}

    def _write_data(self, columns: dict[str, np.ndarray], where: dict) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        fields, arrays, hf = [], [], {}
        for key, values in columns.items():
            feat = self.info["features"][key]
            dtype = {"float32": pa.float32(), "int64": pa.int64()}[feat["dtype"]]
            shape = feat["shape"]
            flat = pa.array(np.ascontiguousarray(values).ravel(), type=dtype)
            if list(shape) == [1]:
                fields.append(pa.field(key, dtype))
                arrays.append(flat)
                hf[key] = {"dtype": feat["dtype"], "_type": "Value"}
            elif len(shape) == 1:
                fields.append(pa.field(key, pa.list_(dtype, shape[0])))
                arrays.append(pa.FixedSizeListArray.from_arrays(flat, shape[0]))
                hf[key] = {"feature": {"dtype": feat["dtype"], "_type": "Value"}, "length": shape[0], "_type": "List"}
            elif len(shape) == 2:  # datasets' Array2D: list<list<>> with its extension name on the field
                h, d = shape
                n = len(values)
                inner = pa.ListArray.from_arrays(np.arange(0, n * h * d + 1, d, dtype=np.int32), flat)
                outer = pa.ListArray.from_arrays(np.arange(0, n * h + 1, h, dtype=np.int32), inner)
                meta = {
                    b"ARROW:extension:name": ARRAY2D.encode(),
                    b"ARROW:extension:metadata": json.dumps([shape, feat["dtype"]]).encode(),
                }
                fields.append(pa.field(key, pa.list_(pa.list_(dtype)), metadata=meta))
                arrays.append(outer)
                hf[key] = {"shape": list(shape), "dtype": feat["dtype"], "_type": "Array2D"}
            else:
                raise DatasetError(f"feature {key}: shape {shape} is not written")
        schema = pa.schema(fields, metadata={b"huggingface": json.dumps({"info": {"features": hf}}).encode()})
        path = self.root / DATA_PATH.format(**where)
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_arrays(arrays, schema=schema), path)

    def _write_episode_row(self, row: dict, stats: dict, ep: Episode, where: dict) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        full = dict(row)
        for key, d in stats.items():
            for stat, value in d.items():
                full[f"stats/{key}/{stat}"] = np.asarray(value).tolist()
        full["meta/episodes/chunk_index"] = where["chunk_index"]
        full["meta/episodes/file_index"] = where["file_index"]
        full["outcome"] = ep.outcome
        types = {}
        for k, v in full.items():
            if k.endswith("/count"):
                types[k] = pa.list_(pa.int64())
            elif k.startswith("stats/"):
                types[k] = _nested_double(np.asarray(v).ndim)
        table = pa.Table.from_pylist(
            [full], schema=pa.schema([pa.field(k, types.get(k, _scalar_type(v))) for k, v in full.items()])
        )
        path = self.root / EPISODES_PATH.format(**where)
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, path)

    def _write_meta(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        meta = self.root / "meta"
        meta.mkdir(parents=True, exist_ok=True)
        pandas_meta = {
            "index_columns": ["task"],
            "column_indexes": [
                {
                    "name": None,
                    "field_name": None,
                    "pandas_type": "unicode",
                    "numpy_type": "object",
                    "metadata": {"encoding": "UTF-8"},
                }
            ],
            "columns": [
                {
                    "name": "task_index",
                    "field_name": "task_index",
                    "pandas_type": "int64",
                    "numpy_type": "int64",
                    "metadata": None,
                },
                {
                    "name": "task",
                    "field_name": "task",
                    "pandas_type": "unicode",
                    "numpy_type": "object",
                    "metadata": None,
                },
            ],
            "attributes": {},
            "creator": {"library": "pyarrow", "version": pa.__version__},
            "pandas_version": "2.3.3",
        }
        schema = pa.schema(
            [("task_index", pa.int64()), ("task", pa.string())], metadata={b"pandas": json.dumps(pandas_meta).encode()}
        )
        tasks = pa.Table.from_arrays(
            [pa.array(range(len(self.tasks)), pa.int64()), pa.array(self.tasks, pa.string())], schema=schema
        )
        pq.write_table(tasks, meta / "tasks.parquet")
        (meta / "stats.json").write_text(json.dumps(_tolist(aggregate_stats(self.episode_stats)), indent=4))
        tmp = meta / "info.json.tmp"
        tmp.write_text(json.dumps(self.info, indent=4))
        tmp.replace(meta / "info.json")  # info.json last: a reader never sees totals ahead of the files


def _nested_double(ndim: int):
    import pyarrow as pa

    t = pa.float64()
    for _ in range(ndim):
        t = pa.list_(t)
    return t


def _scalar_type(value):
    import pyarrow as pa

    if isinstance(value, bool):
        return pa.bool_()
    if isinstance(value, int):
        return pa.int64()
    if isinstance(value, float):
        return pa.float64()
    if isinstance(value, list):
        return pa.list_(pa.string())
    return pa.string()


# --- the reader ---------------------------------------------------------------------------------


def read_episodes(root: str | Path) -> list[dict]:
    """Rows of meta/episodes/*/*.parquet, by episode index."""
    import pyarrow.parquet as pq

    rows = []
    for path in sorted((Path(root) / "meta" / "episodes").glob("chunk-*/file-*.parquet")):
        rows += pq.read_table(path).to_pylist()
    return sorted(rows, key=lambda r: r["episode_index"])


@dataclass
class LeRobotData:
    """A LeRobotDataset read back: info, tasks, episode rows, the frame columns as arrays, videos on demand."""

    root: Path
    info: dict
    tasks: list[str]
    episodes: list[dict]
    columns: dict[str, np.ndarray]
    stats: dict

    @property
    def cameras(self) -> list[str]:
        return [k[len("observation.images.") :] for k, f in self.info["features"].items() if f["dtype"] == "video"]

    def frames(self, camera: str, episode: int) -> np.ndarray:
        """(N, H, W, 3) uint8: the frames of `episode` (all of its video's time range)."""
        key = image_key(camera)
        row = self.episodes[episode]
        h, w, _ = self.info["features"][key]["shape"]
        path = self.root / self.info["video_path"].format(
            video_key=key, chunk_index=row[f"videos/{key}/chunk_index"], file_index=row[f"videos/{key}/file_index"]
        )
        video = read_video(path, w, h)
        start = int(round(row[f"videos/{key}/from_timestamp"] * self.info["fps"]))
        return video[start : start + row["length"]]

    def episode_slice(self, episode: int) -> slice:
        row = self.episodes[episode]
        return slice(row["dataset_from_index"], row["dataset_to_index"])


def read_dataset(root: str | Path) -> LeRobotData:
    import pyarrow.parquet as pq

    root = Path(root)
    info_path = root / "meta" / "info.json"
    if not info_path.is_file():
        raise DatasetError(f"{root}: no meta/info.json (not a LeRobotDataset folder)")
    info = json.loads(info_path.read_text())
    if info.get("codebase_version") != CODEBASE_VERSION:
        raise DatasetError(
            f"{root}: codebase_version {info.get('codebase_version')}; this reader reads {CODEBASE_VERSION}"
        )
    tasks = pq.read_table(root / "meta" / "tasks.parquet").to_pydict()
    task_list = [t for _, t in sorted(zip(tasks["task_index"], tasks["task"]))]
    episodes = read_episodes(root)
    files = sorted({(r["data/chunk_index"], r["data/file_index"]) for r in episodes})
    tables = [pq.read_table(root / info["data_path"].format(chunk_index=c, file_index=f)) for c, f in files]
    columns = {}
    for key, feat in info["features"].items():
        if feat["dtype"] in ("video", "image"):
            continue
        parts = [_column(t.column(key), feat) for t in tables]
        columns[key] = np.concatenate(parts) if parts else np.zeros((0, *feat["shape"]))
    order = np.argsort(columns["index"], kind="stable")
    columns = {k: v[order] for k, v in columns.items()}
    stats = json.loads((root / "meta" / "stats.json").read_text())
    return LeRobotData(root, info, task_list, episodes, columns, stats)


def _column(col, feat: dict) -> np.ndarray:
    dtype = np.float32 if feat["dtype"] == "float32" else np.int64 if feat["dtype"] == "int64" else None
    values = col.to_pylist()
    arr = np.asarray(values, dtype=dtype)
    if list(feat["shape"]) == [1]:
        return arr.reshape(-1)
    return arr.reshape(len(values), *feat["shape"])

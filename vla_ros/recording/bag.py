"""MCAP bags of ROS 2 messages, written the way rosbag2 writes them, and read back from any ROS 2 MCAP.

A bag is a folder `<name>/` holding `<name>_0.mcap` and rosbag2's `metadata.yaml` (so `ros2 bag
info <name>` and `ros2 bag play <name>` take it; Foxglove opens the .mcap). Messages stay the CDR
bytes they were published as (a raw subscription hands them over: nothing is decoded or encoded
while recording). Each channel carries its schema as a `ros2msg` message definition: the type's
.msg file and every type it uses, separated as rosbag2 separates them, read from the installed
interface packages (`share/<pkg>/msg/<Type>.msg` under AMENT_PREFIX_PATH or this Python's prefix).

Reading needs no ROS: `read_bag` decodes every message with mcap-ros2-support from the schemas the
file carries, so a bag recorded by `ros2 bag record` elsewhere reads the same.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

SEPARATOR = "=" * 80
ROS_DISTRO = "kilted"
METADATA_VERSION = 9  # rosbag2's metadata.yaml version of Jazzy and Kilted


class BagError(ValueError):
    """A bag that cannot be written or read; the message names the file and the problem."""


def _share_dirs() -> list[Path]:
    prefixes = [p for p in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p]
    return [Path(p) / "share" for p in [*prefixes, sys.prefix]]


def _interface_file(type_name: str, suffix: str) -> Path | None:
    """`share/<pkg>/msg/<Type><suffix>` of "pkg/msg/Type" in the first prefix that has it."""
    pkg, kind, name = _split_type(type_name)
    for share in _share_dirs():
        path = share / pkg / kind / f"{name}{suffix}"
        if path.is_file():
            return path
    return None


def _split_type(type_name: str) -> tuple[str, str, str]:
    parts = type_name.split("/")
    if len(parts) == 2:
        parts = [parts[0], "msg", parts[1]]
    if len(parts) != 3:
        raise BagError(f"message type {type_name!r} is not of the form pkg/msg/Type")
    return parts[0], parts[1], parts[2]


def type_hashes(type_name: str) -> list[tuple[str, str]]:
    """[(type, RIHS01 hash)] of `type_name` and every type it uses, from its .json type description
    (the first entry is the type itself); [] where the distro installs none."""
    path = _interface_file(type_name, ".json")
    if path is None:
        return []
    return [(h["type_name"], h["hash_string"]) for h in json.loads(path.read_text())["type_hashes"]]


def message_definition(type_name: str) -> str:
    """The `ros2msg` schema of `type_name`: its .msg text, then each type it uses after a separator
    line and `MSG: pkg/Type`, as rosbag2 and Foxglove concatenate them."""
    path = _interface_file(type_name, ".msg")
    if path is None:
        raise BagError(f"no message definition of {type_name} (share/<pkg>/msg/*.msg) in {_share_dirs()}")
    parts = [path.read_text().rstrip("\n")]
    for dep, _ in type_hashes(type_name)[1:]:
        dep_path = _interface_file(dep, ".msg")
        if dep_path is None:
            raise BagError(f"no message definition of {dep} (used by {type_name})")
        pkg, _, name = _split_type(dep)
        parts.append(f"{SEPARATOR}\nMSG: {pkg}/{name}\n{dep_path.read_text().rstrip(chr(10))}")
    return "\n".join(parts) + "\n"


def type_name_of(msg_class) -> str:
    """ "pkg/msg/Type" of a generated ROS message class."""
    module = msg_class.__module__.split(".")  # sensor_msgs.msg._image
    return f"{module[0]}/msg/{msg_class.__name__}"


@dataclass(frozen=True)
class QoS:
    """The offered QoS rosbag2 stores per topic (and replays with)."""

    reliable: bool = True
    transient_local: bool = False
    depth: int = 10

    def profile(self) -> dict[str, Any]:
        def never() -> dict[str, int]:  # a new dict each time: no YAML aliases in metadata.yaml
            return {"sec": 2147483647, "nsec": 4294967295}

        return {
            "history": "keep_last",
            "depth": self.depth,
            "reliability": "reliable" if self.reliable else "best_effort",
            "durability": "transient_local" if self.transient_local else "volatile",
            "deadline": never(),
            "lifespan": never(),
            "liveliness": "automatic",
            "liveliness_lease_duration": never(),
            "avoid_ros_namespace_conventions": False,
        }


@dataclass
class _Topic:
    name: str
    type_name: str
    qos: QoS
    channel_id: int = 0
    count: int = 0
    hash: str = ""


@dataclass
class BagWriter:
    """Writes one rosbag2 MCAP bag folder; not thread-safe (one writer thread owns it).

    `add_topic` before the first message of a topic; `write(topic, cdr, log_time_ns, publish_time_ns)`;
    `close()` finishes the MCAP (summary, indexes) and writes metadata.yaml.
    """

    folder: Path
    compression: str = "lz4"  # lz4 | zstd | none
    chunk_size: int = 4 * 1024 * 1024
    _topics: dict[str, _Topic] = field(default_factory=dict)
    _schemas: dict[str, int] = field(default_factory=dict)

    def __post_init__(self):
        from mcap.writer import CompressionType, Writer

        kinds = {"lz4": CompressionType.LZ4, "zstd": CompressionType.ZSTD, "none": CompressionType.NONE}
        if self.compression not in kinds:
            raise BagError(f"compression {self.compression!r}: one of {sorted(kinds)}")
        self.folder = Path(self.folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.path = self.folder / f"{self.folder.name}_0.mcap"
        self._stream = open(self.path, "wb")  # noqa: SIM115 - closed by close()
        self._writer = Writer(self._stream, chunk_size=self.chunk_size, compression=kinds[self.compression])
        self._writer.start(profile="ros2", library="vla_ros recorder (mcap python)")
        self.start_ns: int | None = None
        self.end_ns = 0
        self.closed = False

    def add_topic(self, name: str, type_name: str, qos: QoS = QoS()) -> None:
        if name in self._topics:
            return
        if type_name not in self._schemas:
            self._schemas[type_name] = self._writer.register_schema(
                type_name, "ros2msg", message_definition(type_name).encode()
            )
        hashes = type_hashes(type_name)
        topic = _Topic(name, type_name, qos, hash=hashes[0][1] if hashes else "")
        metadata = {"offered_qos_profiles": yaml.safe_dump([qos.profile()], sort_keys=False)}
        if topic.hash:
            metadata["topic_type_hash"] = topic.hash
        topic.channel_id = self._writer.register_channel(name, "cdr", self._schemas[type_name], metadata)
        self._topics[name] = topic

    def write(self, topic: str, data: bytes, log_time_ns: int, publish_time_ns: int | None = None) -> None:
        t = self._topics[topic]
        self._writer.add_message(
            t.channel_id, log_time_ns, bytes(data), log_time_ns if publish_time_ns is None else publish_time_ns, t.count
        )
        t.count += 1
        self.start_ns = log_time_ns if self.start_ns is None else min(self.start_ns, log_time_ns)
        self.end_ns = max(self.end_ns, log_time_ns)

    def counts(self) -> dict[str, int]:
        return {name: t.count for name, t in self._topics.items()}

    def close(self, custom_data: dict[str, str] | None = None) -> Path:
        """Finish the MCAP and write metadata.yaml (`custom_data`: rosbag2's free key/value map). Returns the folder."""
        if self.closed:
            return self.folder
        self._writer.finish()
        self._stream.close()
        self.closed = True
        start = self.start_ns or 0
        duration = max(0, self.end_ns - start)
        total = sum(t.count for t in self._topics.values())
        info = {
            "version": METADATA_VERSION,
            "storage_identifier": "mcap",
            "duration": {"nanoseconds": duration},
            "starting_time": {"nanoseconds_since_epoch": start},
            "message_count": total,
            "topics_with_message_count": [
                {
                    "topic_metadata": {
                        "name": t.name,
                        "type": t.type_name,
                        "serialization_format": "cdr",
                        "offered_qos_profiles": [t.qos.profile()],
                        "type_description_hash": t.hash,
                    },
                    "message_count": t.count,
                }
                for t in self._topics.values()
            ],
            "compression_format": "",
            "compression_mode": "",
            "relative_file_paths": [self.path.name],
            "files": [
                {
                    "path": self.path.name,
                    "starting_time": {"nanoseconds_since_epoch": start},
                    "duration": {"nanoseconds": duration},
                    "message_count": total,
                }
            ],
            "custom_data": dict(custom_data or {}),
            "ros_distro": ROS_DISTRO,
        }
        (self.folder / "metadata.yaml").write_text(
            yaml.safe_dump({"rosbag2_bagfile_information": info}, sort_keys=False)
        )
        return self.folder


# --- reading ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BagMessage:
    topic: str
    type_name: str
    log_time_ns: int
    publish_time_ns: int
    message: Any  # decoded (attribute access, as mcap-ros2-support builds it)


def mcap_files(bag: str | Path) -> list[Path]:
    """The .mcap files of a bag: the file itself, or a bag folder's (metadata.yaml's order, else sorted)."""
    path = Path(bag)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise BagError(f"{path}: no such bag (an .mcap file or a rosbag2 folder)")
    meta = path / "metadata.yaml"
    if meta.is_file():
        info = yaml.safe_load(meta.read_text()).get("rosbag2_bagfile_information", {})
        if info.get("storage_identifier", "mcap") != "mcap":
            raise BagError(f"{path}: storage {info['storage_identifier']!r}; only MCAP bags are read")
        files = [path / f for f in info.get("relative_file_paths", [])]
        if files and all(f.is_file() for f in files):
            return files
    files = sorted(path.glob("*.mcap"))
    if not files:
        raise BagError(f"{path}: no .mcap file in the bag folder")
    return files


def bag_topics(bag: str | Path) -> dict[str, str]:
    """topic -> "pkg/msg/Type" of every channel in the bag."""
    from mcap.reader import make_reader

    topics = {}
    for path in mcap_files(bag):
        with open(path, "rb") as f:
            summary = make_reader(f).get_summary()
        if summary is None:
            raise BagError(f"{path}: no summary (the recording did not finish: re-index it with `mcap recover`)")
        for ch in summary.channels.values():
            topics[ch.topic] = summary.schemas[ch.schema_id].name if ch.schema_id else ""
    return topics


def read_bag(bag: str | Path, topics: Iterable[str] | None = None) -> Iterator[BagMessage]:
    """Every message of `topics` (default all) in log-time order, decoded from the bag's own schemas."""
    from mcap.reader import make_reader
    from mcap_ros2.decoder import DecoderFactory

    wanted = None if topics is None else set(topics)
    for path in mcap_files(bag):
        with open(path, "rb") as f:
            reader = make_reader(f, decoder_factories=[DecoderFactory()])
            for schema, channel, message, decoded in reader.iter_decoded_messages(
                topics=None if wanted is None else sorted(wanted), log_time_order=True
            ):
                yield BagMessage(
                    channel.topic, schema.name if schema else "", message.log_time, message.publish_time, decoded
                )

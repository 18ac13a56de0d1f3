"""Read TensorBoard event files back without TensorBoard: scalars per tag, as a test sees what was logged.

An event file is a sequence of TFRecords (uint64 length, uint32 masked CRC, the bytes, uint32 masked CRC),
each an `Event` protobuf; tensorboardX ships the protobuf classes.
"""

from __future__ import annotations

import struct
from pathlib import Path


def read_events(path: Path) -> list:
    from tensorboardX.proto.event_pb2 import Event

    data, pos, events = Path(path).read_bytes(), 0, []
    while pos + 12 <= len(data):
        (length,) = struct.unpack("<Q", data[pos : pos + 8])
        start = pos + 12
        events.append(Event.FromString(data[start : start + length]))
        pos = start + length + 4
    if pos != len(data):
        raise ValueError(f"{path}: truncated record at byte {pos}")
    return events


def scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    """{tag: [(step, value), ...]} over every event file under `folder`, in the order written."""
    out: dict[str, list[tuple[int, float]]] = {}
    for path in sorted(Path(folder).rglob("events.out.tfevents.*")):
        for event in read_events(path):
            for value in event.summary.value:
                if value.HasField("simple_value"):
                    out.setdefault(value.tag, []).append((int(event.step), float(value.simple_value)))
    return out

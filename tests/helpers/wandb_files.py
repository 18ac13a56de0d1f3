"""Read W&B offline run files (`run-*.wandb`) without a server: history rows, config, summary.

wandb keeps offline runs in a LevelDB-style log of protobuf `Record`s (32 KiB blocks, 7-byte record
headers, records split FIRST/MIDDLE/LAST across blocks). Its Python reader left the SDK with the Go core,
so this small reader lets tests and users check what a sweep wrote before `wandb sync` uploads it.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

BLOCK = 32768
HEADER = 7  # uint32 checksum, uint16 length, uint8 type
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def _payloads(data: bytes) -> list[bytes]:
    if data[:4] != b":W&B":
        raise ValueError("not a W&B run file (missing ':W&B' header)")
    out: list[bytes] = []
    pos, pending = 7, b""
    while pos + HEADER <= len(data):
        left_in_block = BLOCK - pos % BLOCK
        if left_in_block < HEADER:
            pos += left_in_block  # padding at the end of a block
            continue
        _, length, kind = struct.unpack("<IHB", data[pos : pos + HEADER])
        if kind == 0 and length == 0:
            break  # zero-filled tail of a file that is still being written
        body = data[pos + HEADER : pos + HEADER + length]
        pos += HEADER + length
        if kind == FULL:
            out.append(body)
        elif kind == FIRST:
            pending = body
        elif kind == MIDDLE:
            pending += body
        elif kind == LAST:
            out.append(pending + body)
            pending = b""
    return out


def read_run(path: str | Path) -> dict[str, Any]:
    """{'history': [row, ...], 'config': {...}, 'summary': {...}} of one `.wandb` file."""
    from wandb.proto import wandb_internal_pb2

    history: list[dict[str, Any]] = []
    config: dict[str, Any] = {}
    summary: dict[str, Any] = {}
    for payload in _payloads(Path(path).read_bytes()):
        record = wandb_internal_pb2.Record()
        record.ParseFromString(payload)
        kind = record.WhichOneof("record_type")
        if kind == "history":
            history.append({_key(i): json.loads(i.value_json) for i in record.history.item})
        elif kind in ("config", "run"):
            updates = record.config.update if kind == "config" else record.run.config.update
            for item in updates:
                config[_key(item)] = _unwrap(json.loads(item.value_json))
        elif kind == "summary":
            for item in record.summary.update:
                summary[_key(item)] = json.loads(item.value_json)
    return {"history": history, "config": config, "summary": summary}


def _unwrap(value: Any) -> Any:
    """W&B stores config values as {"value": v, "desc": ...}."""
    if isinstance(value, dict) and "value" in value and set(value) <= {"value", "desc"}:
        return value["value"]
    return value


def _key(item: Any) -> str:
    return item.key or "/".join(item.nested_key)


def find_runs(root: str | Path) -> list[Path]:
    """Every offline run file below `root` (one per W&B run)."""
    return sorted(Path(root).rglob("offline-run-*/run-*.wandb"))

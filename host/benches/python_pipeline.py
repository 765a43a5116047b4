"""The baseline `scripts/bench` compares `weir run` against: a careful single-process Python
version of the same pipeline, not product code. It reads NDJSON, validates each event as the
retail transform does, partitions by section (Hive-escaped), UTC day and hour, sends invalid
events to a failed location as base64 envelopes with their reason, and writes one gzip'd
NDJSON object per partition (gzip level 1, as Weir's default), synced to disk as Weir's local
store does.

    python3 host/benches/python_pipeline.py EVENTS.ndjson OUT_DIR
"""

import base64
import gzip
import json
import os
import sys
from collections import defaultdict
from datetime import datetime, timezone

# Spark's Hive escaping: these characters and control characters become %XX.
ESCAPED = set('"#%\'*/:=?\\\x7f{[]^') | {chr(c) for c in range(0x20)}


def escape(value: str) -> str:
    return "".join(f"%{ord(c):02X}" if c in ESCAPED else c for c in value)


def partition(line: bytes, arrival: datetime):
    """The partition path, or raises ValueError with the reason."""
    try:
        event = json.loads(line)
    except (ValueError, UnicodeDecodeError) as e:
        raise ValueError(f"invalid_json: {e}")
    if not isinstance(event, dict):
        raise ValueError("invalid_event: not an object")
    metadata, payload = event.get("metadata"), event.get("payload")
    if not isinstance(metadata, dict) or not isinstance(payload, dict):
        raise ValueError("invalid_event: metadata and payload must be objects")
    for field in ("uuid", "section"):
        value = metadata.get(field)
        if not isinstance(value, str):
            raise ValueError(f"invalid_event: metadata.{field} must be a string")
        if not value:
            raise ValueError(f"empty_field: metadata.{field} must be a non-empty string")
    time = arrival
    event_time = metadata.get("event_time")
    if isinstance(event_time, str):
        try:
            time = datetime.fromisoformat(event_time).astimezone(timezone.utc)
        except ValueError:
            pass
    return f"section={escape(metadata['section'])}/dt={time:%Y-%m-%d}/hr={time:%H}"


def main() -> None:
    source, out = sys.argv[1], sys.argv[2]
    arrival = datetime.now(timezone.utc)
    lake, failed = defaultdict(list), []
    with open(source, "rb") as events:
        for number, line in enumerate(events, 1):
            line = line.rstrip(b"\n")
            try:
                lake[partition(line, arrival)].append(line)
            except ValueError as reason:
                failed.append(json.dumps({
                    "reason": str(reason), "source": source, "line": number,
                    "data": base64.b64encode(line).decode(),
                }).encode())
    objects = [(f"lake/{path}", lines) for path, lines in lake.items()]
    if failed:
        objects.append(("failed/error_type=rejected", failed))
    for path, lines in objects:
        os.makedirs(os.path.join(out, path), exist_ok=True)
        with open(os.path.join(out, path, "batch.json.gz"), "wb") as f:
            f.write(gzip.compress(b"\n".join(lines) + b"\n", compresslevel=1))
            f.flush()
            os.fsync(f.fileno())


if __name__ == "__main__":
    main()

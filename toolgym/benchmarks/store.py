"""Where a benchmark's episodes live: ``OUT/episodes.jsonl``, one JSON line per finished episode.

The runner appends to it; the reports read it back. A line cut short by an interrupt is dropped
when the store is opened, so a rerun resumes where the last one stopped.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from toolgym.envs.record import RecordWriter


def episode_key(agent: str, env: str, index: int) -> str:
    return f"{agent}\t{env}\t{index}"


class EpisodeStore:
    """``episodes.jsonl``: one line per finished episode, appended and flushed as it ends.

    A line cut short by an interrupt (no final newline) is dropped when the store is opened;
    a later duplicate of a key (two runs into one directory at once) is ignored when loading.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._repair()
        self._writer = RecordWriter(self.path)

    def _repair(self) -> None:
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):
            with open(self.path, "r+b") as fh:
                fh.truncate(data.rfind(b"\n") + 1)

    def load(self) -> list[dict[str, Any]]:
        records, seen = [], set()
        if not self.path.exists():
            return records
        with open(self.path, encoding="utf-8") as fh:
            for number, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as err:
                    raise ValueError(f"{self.path}: line {number} is not JSON ({err}); delete that line to go on") from err
                key = episode_key(record["agent"], record["env"], record["index"])
                if key not in seen:
                    seen.add(key)
                    records.append(record)
        return records

    def append(self, record: Mapping[str, Any]) -> None:
        self._writer.append(record)

    def close(self) -> None:
        self._writer.close()

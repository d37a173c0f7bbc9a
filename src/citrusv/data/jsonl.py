"""JSONL shards of samples: validated reading, crash-safe writing, resumable appending."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from .schema import Sample, SampleError, parse_sample

__all__ = ["JsonlAppender", "iter_samples", "read_samples", "write_samples"]


def iter_samples(path: str | Path, errors: list[SampleError] | None = None) -> Iterator[Sample]:
    """Yield validated samples from a JSONL file; blank lines are skipped.

    Args:
        path: the file.
        errors: when given, a bad row is appended here (with its line number and field) and
            reading goes on; when ``None``, the first bad row raises.

    Raises:
        SampleError: a bad row, if ``errors`` is ``None``.
        FileNotFoundError: the file does not exist.
    """
    path = Path(path)
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            where = f"{path.name} line {number}"
            try:
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as err:
                    raise SampleError(where, None, f"invalid JSON ({err.msg} at column {err.colno})") from None
                yield parse_sample(row, where)
            except SampleError as err:
                if errors is None:
                    raise
                errors.append(err)


def read_samples(path: str | Path, errors: list[SampleError] | None = None) -> list[Sample]:
    """All samples of a JSONL file (see ``iter_samples``)."""
    return list(iter_samples(path, errors))


def _dump(item: Sample | dict[str, Any]) -> str:
    row = item.to_dict() if isinstance(item, Sample) else item
    return json.dumps(row, ensure_ascii=False, separators=(",", ":"))


def write_samples(items: Iterable[Sample | dict[str, Any]], path: str | Path) -> int:
    """Write rows to ``path`` atomically (a temporary file renamed into place); returns the count."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    count = 0
    try:
        with open(tmp, "w", encoding="utf-8") as handle:
            for item in items:
                handle.write(_dump(item) + "\n")
                count += 1
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return count


class JsonlAppender:
    """Append rows to a JSONL file one at a time, flushed per row, so a crash loses nothing
    written; a rerun can skip the ids already present (``done_ids``).

    A trailing partial line left by a crash is dropped when the file is opened.
    """

    def __init__(self, path: str | Path, id_key: str = "id"):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.id_key = id_key
        self.done_ids: set[str] = set()
        if self.path.exists():
            self._recover()
        self._handle = open(self.path, "a", encoding="utf-8")

    def _recover(self) -> None:
        data = self.path.read_bytes()
        end = data.rfind(b"\n") + 1
        if end < len(data):  # partial last line from an interrupted write
            with open(self.path, "r+b") as handle:
                handle.truncate(end)
            data = data[:end]
        for line in data.decode("utf-8").splitlines():
            if line.strip():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if isinstance(row, dict) and row.get(self.id_key) is not None:
                    self.done_ids.add(str(row[self.id_key]))

    def write(self, item: Sample | dict[str, Any]) -> None:
        self._handle.write(_dump(item) + "\n")
        self._handle.flush()
        row_id = item.id if isinstance(item, Sample) else item.get(self.id_key)
        if row_id is not None:
            self.done_ids.add(str(row_id))

    def sync(self) -> None:
        """Force what was written to disk (``fsync``), e.g. at the end of a batch."""
        self._handle.flush()
        os.fsync(self._handle.fileno())

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> JsonlAppender:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

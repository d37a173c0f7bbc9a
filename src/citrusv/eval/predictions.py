"""Prediction files: one JSONL row per answered item, appended as answers arrive, resumable.

A row is the item (``EvalItem.to_dict()``) plus what the model said:

* ``prediction``: the model text (empty when the call failed);
* ``prediction_masks``: segmentation only, COCO RLE dicts at the original image size, in
  ``[SEG]`` order;
* ``image_size``: ``[h, w]`` of the first image, when there is one;
* ``error``: why the item has no answer (a failed request, an unreadable image); such rows are
  retried by the next run;
* ``model``, ``elapsed_s``.

These rows are also the input of ``citrusv eval score`` (``docs/evaluation.md`` lists the fields
each family reads).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

__all__ = ["PredictionWriter", "read_predictions"]


def read_predictions(path: str | Path, errors: list[str] | None = None) -> list[dict[str, Any]]:
    """Rows of a predictions file; the last row wins when an id repeats (a retried item).

    A line that is not a JSON object (say, the half-written last line of a killed run) is reported
    in ``errors`` with its line number and skipped; with ``errors=None`` it raises ``ValueError``.
    """
    rows: dict[str, dict[str, Any]] = {}
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                if not isinstance(row, dict):
                    raise ValueError("not a JSON object")
                if "id" not in row:
                    raise ValueError("no 'id' field")
            except ValueError as err:
                message = f"{Path(path).name} line {number}: {err}"
                if errors is None:
                    raise ValueError(message) from None
                errors.append(message)
                continue
            rows[str(row["id"])] = row
    return list(rows.values())


class PredictionWriter:
    """Append-only JSONL writer that knows which ids are finished.

    Opening an existing file truncates a trailing partial line (a run killed mid-write) and reads
    the finished ids: rows without an ``error``. Each ``write`` flushes and fsyncs, so a crash
    loses at most the batch being answered.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.finished: set[str] = set()
        if self.path.exists():
            self._repair_tail()
            for row in read_predictions(self.path, errors=[]):
                if not row.get("error"):
                    self.finished.add(str(row["id"]))
        self._handle = open(self.path, "a", encoding="utf-8")

    def _repair_tail(self) -> None:
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):
            cut = data.rfind(b"\n") + 1
            with open(self.path, "r+b") as handle:
                handle.truncate(cut)

    def write(self, rows: Iterable[dict[str, Any]]) -> None:
        for row in rows:
            self._handle.write(json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n")
            if not row.get("error"):
                self.finished.add(str(row["id"]))
        self._handle.flush()
        os.fsync(self._handle.fileno())

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> PredictionWriter:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def iter_batches(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]

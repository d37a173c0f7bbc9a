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
    """Append-only predictions file that knows which ids are finished.

    Built on ``citrusv.data.jsonl.JsonlAppender`` (a trailing partial line of a killed run is
    dropped on open); finished ids are the rows without an ``error``, so failed items are retried.
    Each ``write`` fsyncs, so a crash loses at most the batch being answered.
    """

    def __init__(self, path: str | Path):
        from ..data.jsonl import JsonlAppender

        self.path = Path(path)
        self._appender = JsonlAppender(self.path)
        self.finished: set[str] = {str(row["id"]) for row in read_predictions(self.path, errors=[])
                                   if not row.get("error")}

    def write(self, rows: Iterable[dict[str, Any]]) -> None:
        for row in rows:
            self._appender.write(row)
            if not row.get("error"):
                self.finished.add(str(row["id"]))
        self._appender.sync()

    def close(self) -> None:
        self._appender.close()

    def __enter__(self) -> PredictionWriter:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def iter_batches(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]

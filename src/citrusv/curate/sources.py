"""Sources as streams of shards: JSONL and Parquet files in the sample schema, image folders,
DICOM folders. Only one shard of rows is in memory at a time.

Every row carries ``_source`` (the input's name) and ``_where`` (its location) until it is written;
schema validation is a stage (``SchemaStage``) so that invalid rows are recorded like other drops.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..data.schema import SampleError, parse_sample
from .stage import Row, RowStage

__all__ = ["IMAGE_SUFFIXES", "SchemaStage", "SourceSpec", "detect_kind", "iter_shards"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
KINDS = ("auto", "jsonl", "parquet", "images", "dicom")


@dataclass
class SourceSpec:
    """One input: a ``path`` and its ``kind`` (``auto`` guesses from the suffix or folder content)."""

    path: str
    kind: str = "auto"
    name: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"source kind must be one of {KINDS}, got {self.kind!r}")


def detect_kind(path: Path) -> str:
    """``jsonl`` / ``parquet`` by suffix; for a folder ``images`` when it holds image files, else ``dicom``."""
    if path.is_file():
        if path.suffix in (".jsonl", ".json"):
            return "jsonl"
        if path.suffix == ".parquet":
            return "parquet"
        raise ValueError(f"cannot tell the kind of source {path} (expected .jsonl, .parquet or a folder)")
    if not path.is_dir():
        raise FileNotFoundError(f"source {path} does not exist")
    for _, _, files in os.walk(path):
        if any(f.lower().endswith(IMAGE_SUFFIXES) for f in files):
            return "images"
    return "dicom"


def _chunks(rows: Iterator[Row], size: int) -> Iterator[list[Row]]:
    chunk: list[Row] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _jsonl_rows(path: Path, name: str) -> Iterator[Row]:
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            where = f"{path.name} line {number}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                row = {"_invalid": f"invalid JSON ({err.msg} at column {err.colno})"}
            if not isinstance(row, dict):
                row = {"_invalid": f"must be a JSON object, got {type(row).__name__}"}
            row.setdefault("id", f"{name}:{number}")
            yield {**row, "_source": name, "_where": where, "_root": str(path.parent)}


def _parquet_rows(path: Path, name: str, batch_size: int) -> Iterator[Row]:
    try:
        import pyarrow.parquet as pq
    except ImportError as err:
        raise ImportError("Parquet sources need pyarrow (pip install pyarrow)") from err
    number = 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=batch_size):
        for row in batch.to_pylist():
            number += 1
            row = {k: v for k, v in row.items() if v is not None}
            row.setdefault("id", f"{name}:{number}")
            yield {**row, "_source": name, "_where": f"{path.name} row {number}", "_root": str(path.parent)}


def _image_rows(root: Path, name: str) -> Iterator[Row]:
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for file in sorted(files):
            if not file.lower().endswith(IMAGE_SUFFIXES):
                continue
            path = Path(folder) / file
            rel = path.relative_to(root).as_posix()
            messages = [{"role": "user", "content": "<image>"}]
            report = path.with_suffix(".txt")
            if report.exists():
                messages.append({"role": "assistant", "content": report.read_text(encoding="utf-8").strip()})
            yield {"id": f"{name}/{rel}", "messages": messages, "images": [str(path.resolve())],
                   "_source": name, "_where": rel}


def _dicom_rows(root: Path, name: str) -> Iterator[Row]:
    """One row per folder holding files: the DICOM stage groups them into series."""
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        paths = [str((Path(folder) / f).resolve()) for f in sorted(files)
                 if f.upper() != "DICOMDIR" and not f.startswith(".")]
        if paths:
            rel = Path(folder).relative_to(root).as_posix()
            yield {"id": f"{name}/{rel}", "messages": [], "dicom": {"files": paths}, "_source": name, "_where": rel}


def iter_shards(sources: list[SourceSpec], shard_size: int) -> Iterator[tuple[str, list[Row]]]:
    """``(shard name, rows)`` over all sources in order; names are stable across runs.

    Raises:
        FileNotFoundError / ValueError: a source is missing or of unknown kind.
    """
    if shard_size <= 0:
        raise ValueError(f"shard_size must be positive, got {shard_size}")
    specs = []
    for spec in sources:
        path = Path(spec.path)
        kind = detect_kind(path) if spec.kind == "auto" else spec.kind
        if not path.exists():
            raise FileNotFoundError(f"source {path} does not exist")
        specs.append((path, kind, spec.name or path.stem))
    for index, (path, kind, name) in enumerate(specs):
        if kind == "jsonl":
            rows = _jsonl_rows(path, name)
        elif kind == "parquet":
            rows = _parquet_rows(path, name, shard_size)
        elif kind == "images":
            rows = _image_rows(path, name)
        else:
            rows = _dicom_rows(path, name)
        for number, chunk in enumerate(_chunks(rows, shard_size)):
            yield f"{index:03d}-{name}-{number:05d}", chunk


class SchemaStage(RowStage):
    """Validates rows from JSONL / Parquet with ``parse_sample`` (drop reason ``schema``) and makes
    relative image / mask paths absolute; rows from image and DICOM folders pass unchanged."""

    name = "schema"

    def check(self, row: Row) -> tuple[str, str] | None:
        if "_invalid" in row:
            return "schema", row["_invalid"]
        if "_root" not in row:
            return None
        public = {k: v for k, v in row.items() if not k.startswith("_")}
        try:
            sample = parse_sample(public, row["_where"]).resolve_paths(row["_root"])
        except SampleError as err:
            return "schema", f"{err.field}: {err.reason}" if err.field else err.reason
        internal = {k: v for k, v in row.items() if k.startswith("_") and k != "_root"}
        row.clear()
        row.update(sample.to_dict())
        row.update(internal)
        return None


def strip_internal(row: Row) -> dict[str, Any]:
    """The row without the pipeline's ``_``-prefixed bookkeeping keys."""
    return {k: v for k, v in row.items() if not k.startswith("_")}

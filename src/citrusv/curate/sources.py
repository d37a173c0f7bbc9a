"""Sources as streams of shards: JSONL and Parquet files in the sample schema, image folders,
DICOM folders. Only one shard of rows is in memory at a time.

A run first *plans* its shards (``plan_shards``: names and locations, no row parsed), then each
shard is read where it is processed (``read_shard``), so pipeline workers read their own data and
the driver only scans. ``iter_shards`` is the two together.

Every row carries ``_source`` (the input's name) and ``_where`` (its location) until it is written;
schema validation is a stage (``SchemaStage``) so that invalid rows are recorded like other drops.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from ..data.schema import SampleError, parse_sample
from .stage import Row, RowStage

__all__ = ["IMAGE_SUFFIXES", "SchemaStage", "ShardSpec", "SourceSpec", "detect_kind", "iter_shards", "plan_shards",
           "read_shard"]

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


def _chunks(items: Iterator[Any], size: int) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


@dataclass(frozen=True)
class ShardSpec:
    """Where one shard's rows are, without the rows: small and picklable, so the driver can hand a
    plan to workers (processes or Ray actors) that read their own data (``read_shard``).

    Which fields are set depends on ``kind``:

    - ``jsonl``: ``offset`` (byte offset of the shard's first row), ``line`` (its 1-based line number,
      blank lines counted) and ``rows`` (non-blank lines to read from there);
    - ``parquet``: ``start`` (0-based first row) and ``rows``;
    - ``images``: ``items``, the image files (POSIX paths relative to ``path``);
    - ``dicom``: ``items``, the folders holding the series files (relative to ``path``, ``.`` for
      ``path`` itself); the files are listed again when the shard is read, which keeps a plan of a
      large archive small.
    """

    name: str
    """The shard's name, ``<source index>-<source name>-<shard number>`` (resume keys on it)."""
    path: str
    """The source's path (file or folder)."""
    kind: str
    source: str
    """The source's name (``_source`` of its rows, prefix of generated ids)."""
    source_index: int
    number: int
    """The shard's number within its source."""
    offset: int = 0
    line: int = 0
    start: int = 0
    rows: int = 0
    items: tuple[str, ...] = ()


def _shard_spec(index: int, path: Path, kind: str, name: str, number: int, **where: Any) -> ShardSpec:
    """The spec of shard ``number`` of source ``index``; ``where`` holds the kind's location fields."""
    return ShardSpec(f"{index:03d}-{name}-{number:05d}", str(path), kind, name, index, number, **where)


def _check_sources(sources: list[SourceSpec]) -> list[tuple[Path, str, str]]:
    """``(path, kind, name)`` per source; every source is checked before any shard is planned."""
    checked = []
    for spec in sources:
        path = Path(spec.path)
        kind = detect_kind(path) if spec.kind == "auto" else spec.kind
        if not path.exists():
            raise FileNotFoundError(f"source {path} does not exist")
        checked.append((path, kind, spec.name or path.stem))
    return checked


# One line in universal-newline mode (as Python's text files split them): ``\r\n``, ``\r`` or ``\n``
# ends it; the last line may have no terminator. These bytes never occur inside a UTF-8 sequence,
# so splitting bytes gives the same lines as splitting decoded text.
_LINE = re.compile(rb"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+")


def _lines(handle: BinaryIO) -> Iterator[bytes]:
    """The lines from the handle's position, each with its terminator (if any), split as
    ``_row_positions`` splits them (checked against each other by the tests)."""
    for raw in handle:  # binary iteration splits on \n only: a \r other than in \r\n needs splitting
        if b"\r" not in raw or (raw.endswith(b"\r\n") and raw.count(b"\r") == 1):
            yield raw
        else:
            yield from _LINE.findall(raw)


_BLOCK = 8 << 20  # bytes read at a time when planning a JSONL file

# First bytes (after which) a line may still be blank to ``str.strip``: ASCII whitespace, the
# \x1c-\x1f separators and any non-ASCII byte (U+00A0, U+3000 ...). Lines starting with anything
# else (``{`` for a JSON object) are rows without a look at the rest of the line.
_MAYBE_BLANK = np.zeros(256, dtype=bool)
_MAYBE_BLANK[[0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x20]] = True
_MAYBE_BLANK[0x1C:0x20] = True
_MAYBE_BLANK[0x80:] = True


def _is_blank(piece: bytes) -> bool:
    return not piece.decode("utf-8", errors="replace").strip()


def _row_positions(path: Path) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Byte offsets and 1-based line numbers of the non-blank lines (those ``_read_jsonl`` parses),
    one block of the file at a time: memory stays at a block whatever the file's length, and no
    Python code runs per line except for lines that start like a blank one."""
    base = line = 0
    carry = b""
    with open(path, "rb") as handle:
        while True:
            data = handle.read(_BLOCK)
            block = carry + data
            if not block:
                return
            # complete lines only: up to the last \n, or the last \r whose next byte is known
            cut = len(block) if not data else max(block.rfind(b"\n"), block.rfind(b"\r", 0, len(block) - 1)) + 1
            if cut == 0:  # no line ends yet: a line longer than the block
                carry = block
                continue
            region, carry = block[:cut], block[cut:]
            buffer = np.frombuffer(region, dtype=np.uint8)
            returns = np.flatnonzero(buffer == 0x0D) if b"\r" in region else None
            if returns is not None and (returns[-1] + 1 == len(region) or (buffer[returns + 1] != 0x0A).any()):
                # a \r that is not part of \r\n ends a line too: split the lines as text mode does
                pieces = _LINE.findall(region)
                starts = np.cumsum([0] + [len(piece) for piece in pieces[:-1]], dtype=np.int64)
                rows = np.array([not _is_blank(piece) for piece in pieces], dtype=bool)
            else:
                starts = np.concatenate(([0], np.flatnonzero(buffer == 0x0A) + 1))
                if starts[-1] == len(region):
                    starts = starts[:-1]
                rows = ~_MAYBE_BLANK[buffer[starts]]
                ends = np.append(starts[1:], len(region))
                for index in np.flatnonzero(~rows):
                    rows[index] = not _is_blank(region[starts[index]:ends[index]])
            numbers = np.arange(line + 1, line + 1 + len(starts), dtype=np.int64)
            yield base + starts[rows], numbers[rows]
            base += cut
            line += len(starts)


def _plan_jsonl(path: Path, shard: Callable[..., ShardSpec], size: int) -> Iterator[ShardSpec]:
    """Shard boundaries from a byte scan (no decoding of rows, no JSON parsing): every ``size``-th
    non-blank line starts a shard. One block of positions is held at a time."""
    number = count = first_offset = first_line = 0  # count: rows of the shard not yet complete
    for offsets, lines in _row_positions(path):
        done = 0  # positions of this block that complete the open shard
        if count:
            done = min(size - count, len(offsets))
            count += done
            if count < size:
                continue
            yield shard(number, offset=first_offset, line=first_line, rows=size)
            number, count = number + 1, 0
        for index in range(done, len(offsets), size):
            if len(offsets) - index < size:
                first_offset, first_line, count = int(offsets[index]), int(lines[index]), len(offsets) - index
                break
            yield shard(number, offset=int(offsets[index]), line=int(lines[index]), rows=size)
            number += 1
    if count:
        yield shard(number, offset=first_offset, line=first_line, rows=count)


def _jsonl_row(text: str, line: int, path: Path, name: str) -> Row:
    where = f"{path.name} line {line}"
    try:
        row = json.loads(text)
    except json.JSONDecodeError as err:
        row = {"_invalid": f"invalid JSON ({err.msg} at column {err.colno})"}
    if not isinstance(row, dict):
        row = {"_invalid": f"must be a JSON object, got {type(row).__name__}"}
    row.setdefault("id", f"{name}:{line}")
    return {**row, "_source": name, "_where": where, "_root": str(path.parent)}


def _read_jsonl(spec: ShardSpec) -> list[Row]:
    path = Path(spec.path)
    rows: list[Row] = []
    line = spec.line - 1
    with open(path, "rb") as handle:
        handle.seek(spec.offset)
        for piece in _lines(handle):
            line += 1
            # the text a text-mode read gives (terminator as \n): JSON error columns depend on it
            text = piece.decode("utf-8")
            if text.endswith("\r"):
                text = text[:-1] + "\n"
            elif text.endswith("\r\n"):
                text = text[:-2] + "\n"
            if not text.strip():
                continue
            rows.append(_jsonl_row(text, line, path, spec.source))
            if len(rows) == spec.rows:
                break
    return rows


def _parquet_file(path: Path) -> Any:
    try:
        import pyarrow.parquet as pq
    except ImportError as err:
        raise ImportError("Parquet sources need pyarrow (pip install pyarrow)") from err
    return pq.ParquetFile(path)


def _plan_parquet(path: Path, shard: Callable[..., ShardSpec], size: int) -> Iterator[ShardSpec]:
    """Row ranges from the footer's row count; no data page is read."""
    total = _parquet_file(path).metadata.num_rows
    for number, start in enumerate(range(0, total, size)):
        yield shard(number, start=start, rows=min(size, total - start))


def _read_parquet(spec: ShardSpec) -> list[Row]:
    """Reads only the row groups that overlap the shard and stops after its last row (rows before
    its start within the first of them are still decoded: Parquet has no cheaper row seek here)."""
    path = Path(spec.path)
    file = _parquet_file(path)
    stop = spec.start + spec.rows
    groups, first, position = [], 0, 0
    for index in range(file.metadata.num_row_groups):
        count = file.metadata.row_group(index).num_rows
        if position + count > spec.start and position < stop:
            if not groups:
                first = position
            groups.append(index)
        position += count
    rows: list[Row] = []
    position = first
    for batch in file.iter_batches(batch_size=max(spec.rows, 1), row_groups=groups):
        lo, hi = max(spec.start - position, 0), min(stop - position, batch.num_rows)
        position += batch.num_rows
        if hi <= lo:
            continue
        for values in batch.slice(lo, hi - lo).to_pylist():
            number = spec.start + len(rows) + 1
            row = {k: v for k, v in values.items() if v is not None}
            row.setdefault("id", f"{spec.source}:{number}")
            rows.append({**row, "_source": spec.source, "_where": f"{path.name} row {number}",
                         "_root": str(path.parent)})
        if position >= stop:
            break
    return rows


def _walk(root: Path) -> Iterator[tuple[str, list[str]]]:
    """``(folder, sorted file names)`` in the order every run visits them (sorted sub-folders)."""
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        yield folder, sorted(files)


def _plan_images(root: Path, shard: Callable[..., ShardSpec], size: int) -> Iterator[ShardSpec]:
    files = (Path(folder, file).relative_to(root).as_posix() for folder, names in _walk(root)
             for file in names if file.lower().endswith(IMAGE_SUFFIXES))
    for number, chunk in enumerate(_chunks(files, size)):
        yield shard(number, items=tuple(chunk))


def _read_images(spec: ShardSpec) -> list[Row]:
    root = Path(spec.path)
    rows = []
    for rel in spec.items:
        path = root / rel
        messages = [{"role": "user", "content": "<image>"}]
        report = path.with_suffix(".txt")
        if report.exists():
            messages.append({"role": "assistant", "content": report.read_text(encoding="utf-8").strip()})
        rows.append({"id": f"{spec.source}/{rel}", "messages": messages, "images": [str(path.resolve())],
                     "_source": spec.source, "_where": rel})
    return rows


def _dicom_names(files: list[str]) -> list[str]:
    return [f for f in sorted(files) if f.upper() != "DICOMDIR" and not f.startswith(".")]


def _plan_dicom(root: Path, shard: Callable[..., ShardSpec], size: int) -> Iterator[ShardSpec]:
    """One row per folder holding files (the DICOM stage groups them into series)."""
    folders = (Path(folder).relative_to(root).as_posix() for folder, files in _walk(root) if _dicom_names(files))
    for number, chunk in enumerate(_chunks(folders, size)):
        yield shard(number, items=tuple(chunk))


def _read_dicom(spec: ShardSpec) -> list[Row]:
    root = Path(spec.path)
    rows = []
    for rel in spec.items:
        folder = root / rel
        _, _, files = next(os.walk(folder), (None, [], []))  # listed here: a plan keeps only folders
        paths = [str((folder / f).resolve()) for f in _dicom_names(files)]
        rows.append({"id": f"{spec.source}/{rel}", "messages": [], "dicom": {"files": paths},
                     "_source": spec.source, "_where": rel})
    return rows


_PLANNERS = {"jsonl": _plan_jsonl, "parquet": _plan_parquet, "images": _plan_images, "dicom": _plan_dicom}
_READERS = {"jsonl": _read_jsonl, "parquet": _read_parquet, "images": _read_images, "dicom": _read_dicom}


def plan_shards(sources: list[SourceSpec], shard_size: int) -> Iterator[ShardSpec]:
    """The shards of all sources in order, as ``ShardSpec`` s, without parsing any row: JSONL files
    are scanned for line ends, Parquet row counts come from the footer, folders are walked. Specs are
    yielded as they are found, so planning a huge file holds one spec at a time.

    Raises:
        FileNotFoundError / ValueError: a source is missing or of unknown kind (checked for every
            source before the first spec), or ``shard_size`` is not positive.
    """
    if shard_size <= 0:
        raise ValueError(f"shard_size must be positive, got {shard_size}")
    for index, (path, kind, name) in enumerate(_check_sources(sources)):
        yield from _PLANNERS[kind](path, partial(_shard_spec, index, path, kind, name), shard_size)


def read_shard(spec: ShardSpec) -> list[Row]:
    """The rows of one planned shard, exactly as ``iter_shards`` yields them.

    Raises:
        ValueError: a JSONL or Parquet source has fewer rows than planned (changed since planning).
    """
    rows = _READERS[spec.kind](spec)
    if spec.kind in ("jsonl", "parquet") and len(rows) != spec.rows:
        raise ValueError(f"source {spec.path} changed since its shards were planned: shard {spec.name} "
                         f"should have {spec.rows} rows, found {len(rows)}")
    return rows


def iter_shards(sources: list[SourceSpec], shard_size: int) -> Iterator[tuple[str, list[Row]]]:
    """``(shard name, rows)`` over all sources in order; names are stable across runs.

    Raises:
        FileNotFoundError / ValueError: a source is missing or of unknown kind.
    """
    return ((spec.name, read_shard(spec)) for spec in plan_shards(sources, shard_size))


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

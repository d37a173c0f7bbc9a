"""File reading and row bookkeeping shared by the benchmark loaders.

Row numbers in error messages are 1-based: the line of a JSONL file (blank lines counted), the
data row of a CSV / TSV file (header excluded), the position in a JSON list or mapping, the row
of a Parquet file.
"""

from __future__ import annotations

import base64
import binascii
import csv
import glob
import hashlib
import json
import logging
import math
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..types import EvalItem

logger = logging.getLogger(__name__)

__all__ = ["LoadContext", "RowError", "read_rows", "resolve_required"]


class RowError(ValueError):
    """One row of a benchmark file cannot be used; the caller adds the file and row number."""


# ---------------------------------------------------------------------------------------------
# required files


def _alternatives(entry: str) -> list[str]:
    return [part.strip() for part in entry.split("|") if part.strip()]


def _matches(folder: Path, pattern: str) -> list[Path]:
    if pattern.endswith("/"):
        path = folder / pattern.rstrip("/")
        return [path] if path.is_dir() else []
    if glob.has_magic(pattern):
        return sorted(Path(p) for p in glob.glob(str(folder / pattern)) if Path(p).is_file())
    path = folder / pattern
    return [path] if path.is_file() else []


def resolve_required(folder: Path, entry: str) -> tuple[str, list[Path]]:
    """The first alternative of ``entry`` (``"a|b|c"``, globs allowed) with files in ``folder``.

    Returns:
        ``(pattern, paths)``; ``paths`` is sorted and empty when no alternative matches
        (``pattern`` is then the first alternative).
    """
    alternatives = _alternatives(entry)
    for pattern in alternatives:
        paths = _matches(folder, pattern)
        if paths:
            return pattern, paths
    return alternatives[0], []


def describe_missing(folder: Path, entry: str) -> str:
    first, *rest = _alternatives(entry)
    text = str(folder / first)
    if rest:
        text += " (or " + ", ".join(rest) + ")"
    return text


# ---------------------------------------------------------------------------------------------
# readers: each yields (row number, row or RowError)


def _read_jsonl(path: Path) -> Iterator[tuple[int, Any]]:
    with open(path, encoding="utf-8-sig") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                yield number, json.loads(line)
            except json.JSONDecodeError as exc:
                yield number, RowError(f"not valid JSON ({exc.msg} at column {exc.colno})")


def read_json(path: Path) -> Any:
    """A whole JSON file (``NaN`` accepted, as Python's ``json`` does by default).

    Raises:
        ValueError: the file is not valid JSON (naming the file and position).
    """
    with open(path, encoding="utf-8-sig") as handle:
        try:
            return json.load(handle)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from None


def _read_json_list(path: Path) -> Iterator[tuple[int, Any]]:
    data = read_json(path)
    if not isinstance(data, list):
        raise ValueError(f"{path}: expected a JSON list of rows, got {type(data).__name__}")
    yield from enumerate(data, start=1)


def _read_delimited(path: Path, delimiter: str) -> Iterator[tuple[int, Any]]:
    # Base64 image columns (VLMEvalKit TSVs) exceed the csv module's default 128 KiB field limit.
    csv.field_size_limit(max(csv.field_size_limit(), 2**31 - 1))
    with open(path, encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle, delimiter=delimiter)
        for number, row in enumerate(reader, start=1):
            row.pop(None, None)  # cells beyond the header
            yield number, row


def _read_parquet(path: Path) -> Iterator[tuple[int, Any]]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise ImportError(
            f"reading {path} needs pyarrow, which is not installed: `pip install pyarrow`, or export the "
            "split to JSONL as docs/eval-data.md shows"
        ) from None
    table = pq.read_table(path)
    yield from enumerate(table.to_pylist(), start=1)


def read_rows(path: Path) -> Iterator[tuple[int, Any]]:
    """Rows of a ``.jsonl``, ``.json`` (list), ``.csv``, ``.tsv`` or ``.parquet`` file."""
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        return _read_jsonl(path)
    if suffix == ".json":
        return _read_json_list(path)
    if suffix == ".csv":
        return _read_delimited(path, ",")
    if suffix == ".tsv":
        return _read_delimited(path, "\t")
    if suffix == ".parquet":
        return _read_parquet(path)
    raise ValueError(f"{path}: unsupported file type {suffix!r} (expected .jsonl, .json, .csv, .tsv or .parquet)")


# ---------------------------------------------------------------------------------------------
# field helpers (raise RowError)


def as_row(obj: Any) -> dict[str, Any]:
    if isinstance(obj, RowError):
        raise obj
    if not isinstance(obj, dict):
        raise RowError(f"expected an object, got {type(obj).__name__}")
    return obj


def is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def req_str(row: Mapping[str, Any], key: str, *, allow_empty: bool = False) -> str:
    """A string field; numbers are accepted and converted (CSV / pandas exports mix them)."""
    if key not in row or is_missing(row[key]):
        raise RowError(f"missing field {key!r}")
    value = row[key]
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise RowError(f"field {key!r} must be a string, got {type(value).__name__}")
    text = value if isinstance(value, str) else str(value)
    if not allow_empty and not text.strip():
        raise RowError(f"empty field {key!r}")
    return text


def opt_str(row: Mapping[str, Any], key: str) -> str | None:
    value = row.get(key)
    if is_missing(value) or isinstance(value, (dict, list, bool)):
        return None
    text = str(value).strip()
    return text or None


def letter(value: str, valid: Mapping[str, Any] | list[str], key: str) -> str:
    """Gold option letter, stripped and upper-cased, checked against the option letters."""
    text = value.strip().upper()
    if text not in valid:
        raise RowError(f"{key} {value!r} is not one of the option letters {', '.join(valid)}")
    return text


def option_letters(count: int) -> list[str]:
    if not 1 <= count <= 26:
        raise RowError(f"a multiple-choice question needs 1..26 options, got {count}")
    return [chr(ord("A") + i) for i in range(count)]


def parse_mapping(value: Any, key: str) -> dict[str, Any]:
    """A mapping field, given as an object or a JSON string (CSV exports)."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise RowError(f"field {key!r} is neither an object nor a JSON object string") from None
    if not isinstance(value, dict):
        raise RowError(f"field {key!r} must be an object, got {type(value).__name__}")
    return value


def parse_list(value: Any, key: str) -> list[Any]:
    """A list field, given as a list or a JSON list string."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise RowError(f"field {key!r} is neither a list nor a JSON list string") from None
    if isinstance(value, tuple):
        value = list(value)
    if not isinstance(value, list):
        raise RowError(f"field {key!r} must be a list, got {type(value).__name__}")
    return value


_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", ".png"),
    (b"\xff\xd8\xff", ".jpg"),
    (b"GIF8", ".gif"),
    (b"BM", ".bmp"),
    (b"II*\x00", ".tif"),
    (b"MM\x00*", ".tif"),
)


def _image_suffix(data: bytes) -> str:
    for magic, suffix in _MAGIC:
        if data.startswith(magic):
            return suffix
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return ".webp"
    raise RowError("embedded image bytes are not PNG, JPEG, GIF, BMP, TIFF or WebP")


def decode_base64_image(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=False)
    except (binascii.Error, ValueError):
        raise RowError("image field is not valid base64") from None


# ---------------------------------------------------------------------------------------------
# the per-call context


@dataclass
class LoadContext:
    """State of one ``load_benchmark`` call: options, collected items, errors, limit, ids.

    Attributes:
        benchmark: registry name.
        folder: ``data_root / spec.folder``.
        limit: stop after this many items (``None`` = all).
        errors: bad rows are appended here and skipped; ``None`` = raise ``ValueError``.
        strict: fix the reference quirks documented per loader.
        image_root: overrides where relative image / mask paths resolve.
        image_cache_dir: where embedded image bytes are written (default
            ``folder / "_extracted_images"``).
        bbox_format: detection prompt template (``json`` / ``standard``).
    """

    benchmark: str
    folder: Path
    limit: int | None = None
    errors: list[str] | None = None
    strict: bool = False
    image_root: Path | None = None
    image_cache_dir: Path | None = None
    bbox_format: str = "json"
    items: list[EvalItem] = field(default_factory=list)
    _ids: dict[str, int] = field(default_factory=dict)
    _renamed: int = 0

    @property
    def full(self) -> bool:
        return self.limit is not None and len(self.items) >= self.limit

    def paths(self, entry: str) -> list[Path]:
        """Files of a required-file entry (checked to exist before the loader runs)."""
        _, paths = resolve_required(self.folder, entry)
        if not paths:
            raise FileNotFoundError(f"{self.benchmark}: missing {describe_missing(self.folder, entry)}")
        return paths

    def path(self, entry: str) -> Path:
        return self.paths(entry)[0]

    def rows(self, *paths: Path) -> Iterator[tuple[int, Path, int, Any]]:
        """``(position over all files, file, row number in its file, raw row)`` for the rows of
        ``paths`` in order, until ``limit`` items have been collected."""
        position = 0
        for path in paths:
            for number, obj in read_rows(path):
                if self.full:
                    return
                yield position, path, number, obj
                position += 1

    def bad(self, source: Path | str, row: int | str, message: str) -> None:
        text = f"{source}, row {row}: {message}"
        if self.errors is None:
            raise ValueError(f"{self.benchmark}: {text}")
        self.errors.append(text)

    @contextmanager
    def row(self, source: Path | str, number: int | str) -> Iterator[None]:
        """Turn a ``RowError`` raised in the block into a recorded (or raised) bad row."""
        try:
            yield
        except RowError as exc:
            self.bad(source, number, str(exc))

    def add(self, item: EvalItem) -> None:
        if item.id in self._ids:
            self._ids[item.id] += 1
            new_id = f"{item.id}~{self._ids[item.id]}"
            while new_id in self._ids:
                self._ids[item.id] += 1
                new_id = f"{item.id}~{self._ids[item.id]}"
            if self._renamed == 0:
                logger.warning("%s: duplicate id %r in the source data; later copies get a ~N suffix",
                               self.benchmark, item.id)
            self._renamed += 1
            item.id = new_id
        self._ids[item.id] = 1
        self.items.append(item)

    # -- images ---------------------------------------------------------------------------------

    def image_file(self, value: Any, base: Path, key: str = "image") -> str:
        """An existing image file for ``value``: a path (absolute, or relative to ``image_root`` or
        ``base``), a ``{"bytes", "path"}`` mapping (Hugging Face ``Image`` feature) or raw bytes."""
        if isinstance(value, dict):
            data = value.get("bytes")
            if data:
                return self.store_image(data if isinstance(data, bytes) else decode_base64_image(str(data)))
            value = value.get("path")
        if isinstance(value, (bytes, bytearray)):
            return self.store_image(bytes(value))
        if is_missing(value) or not isinstance(value, str) or not value.strip():
            raise RowError(f"missing field {key!r}")
        path = Path(value.strip())
        if not path.is_absolute():
            path = (self.image_root or base) / path
        if not path.is_file():
            raise RowError(f"{key} file not found: {path}")
        return str(path.resolve())

    def store_image(self, data: bytes) -> str:
        """Write embedded image bytes once, content-addressed, and return the file path."""
        suffix = _image_suffix(data)
        cache = self.image_cache_dir or (self.folder / "_extracted_images")
        path = cache / f"{hashlib.sha1(data).hexdigest()[:24]}{suffix}"
        if not path.is_file():
            try:
                cache.mkdir(parents=True, exist_ok=True)
                tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
                tmp.write_bytes(data)
                os.replace(tmp, path)
            except OSError as exc:
                raise OSError(
                    f"cannot write extracted images to {cache} ({exc}); pass image_cache_dir= to load_benchmark"
                ) from exc
        return str(path.resolve())

"""Training data: a streamed index of JSONL files, the packing plan, and rows built on demand.

Large files are never loaded whole. One pass over every file records, per valid row, its byte
offset and its token length (images are measured from their headers, no pixel is decoded); bad
rows are counted by reason and skipped. Packing works on the lengths; a row of the plan is read
back from disk (seek + one line) and encoded only when a batch needs it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..data.collate import EncodedSample, encode_sample
from ..data.packing import pack_best_fit
from ..data.schema import Sample, SampleError, parse_sample
from ..processing.image import ImageLoadError, peek_image_size
from ..processing.processor import CitrusVProcessor

logger = logging.getLogger(__name__)

__all__ = ["DataReport", "SampleIndex", "TrainingRows"]


@dataclass
class DataReport:
    """Rows read, kept and dropped (by reason), with a few examples per reason."""

    read: int = 0
    kept: int = 0
    dropped: Counter = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)

    def drop(self, reason: str, where: str) -> None:
        """Count one dropped row under ``reason``; keep up to five examples (``where``)."""
        self.dropped[reason] += 1
        bucket = self.examples.setdefault(reason, [])
        if len(bucket) < 5:
            bucket.append(where)

    def drop_error(self, err: Exception, where: str) -> None:
        reason, detail = _reason(err)
        self.drop(reason, f"{where}: {detail}" if where not in detail else detail)

    def to_dict(self) -> dict[str, Any]:
        return {"read": self.read, "kept": self.kept, "dropped": dict(self.dropped), "examples": self.examples}


def _reason(err: Exception) -> tuple[str, str]:
    """(countable reason, full message): details such as counts, sizes and parser positions are
    folded out of the reason so that equal problems count together."""
    if isinstance(err, SampleError):
        text, detail = f"{err.field or 'row'}: {err.reason}", str(err)
    else:
        text, detail = f"{type(err).__name__}: {str(err).split(': ', 1)[-1]}", str(err)
    text = re.sub(r"\(.*?\)|'.*?'", "", text)
    text = re.sub(r"\d+(\.\d+)?", "N", text)
    return re.sub(r"\s+", " ", text).strip()[:100], detail


class SampleIndex:
    """Where every usable row of some JSONL files is, and how many tokens it has.

    Attributes:
        paths: the files.
        file_ids, offsets: per sample, its file and byte offset.
        lengths: per sample, its token count.
        splittable: per sample, True for text-only rows (they may be cut into chunks).
        report: counts of rows read / kept / dropped by reason.
    """

    def __init__(self, paths: Sequence[Path], file_ids: np.ndarray, offsets: np.ndarray, lengths: np.ndarray,
                 splittable: np.ndarray, report: DataReport):
        self.paths = list(paths)
        self.file_ids, self.offsets, self.lengths, self.splittable = file_ids, offsets, lengths, splittable
        self.report = report

    def __len__(self) -> int:
        return int(self.lengths.size)

    @classmethod
    def build(cls, paths: Sequence[str | Path], processor: CitrusVProcessor, *, max_length: int, allow_split: bool,
              cache_dir: str | Path | None = None, progress: bool = False) -> SampleIndex:
        """Index the files (or reuse a cached index of the same files and settings).

        Rows longer than ``max_length`` are dropped unless ``allow_split`` and text-only.
        """
        paths = [Path(p) for p in paths]
        for path in paths:
            if not path.is_file():
                raise FileNotFoundError(f"no data file at {path}")
        key = cls._cache_key(paths, processor, max_length, allow_split)
        cache = Path(cache_dir) / f"index-{key}.npz" if cache_dir else None
        if cache is not None and cache.is_file():
            data = np.load(cache, allow_pickle=False)
            report = DataReport(**json.loads(str(data["report"])))
            report.dropped = Counter(report.dropped)
            logger.info("reusing the data index %s (%d samples)", cache, data["lengths"].size)
            return cls(paths, data["file_ids"], data["offsets"], data["lengths"], data["splittable"], report)

        report = DataReport()
        file_ids: list[int] = []
        offsets: list[int] = []
        lengths: list[int] = []
        splittable: list[bool] = []
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=sum(p.stat().st_size for p in paths), unit="B", unit_scale=True, desc="indexing data")
        for file_id, path in enumerate(paths):
            root = path.parent
            with open(path, "rb") as handle:
                number = 0
                while True:
                    offset = handle.tell()
                    raw = handle.readline()
                    if not raw:
                        break
                    number += 1
                    if bar is not None:
                        bar.update(len(raw))
                    if not raw.strip():
                        continue
                    report.read += 1
                    where = f"{path.name} line {number}"
                    try:
                        sample = _parse_line(raw, where).resolve_paths(root)
                        sizes = [peek_image_size(image) for image in sample.images]
                        length = processor.sequence_length(sample.messages, sizes)
                    except (SampleError, ImageLoadError, ValueError) as err:
                        report.drop_error(err, where)
                        continue
                    text_only = not sample.images and not sample.masks
                    if length > max_length and not (allow_split and text_only):
                        report.drop("longer than max_length" + ("" if text_only else " (has images or masks: cannot be split)"), where)
                        continue
                    file_ids.append(file_id)
                    offsets.append(offset)
                    lengths.append(length)
                    splittable.append(text_only)
                    report.kept += 1
        if bar is not None:
            bar.close()
        index = cls(paths, np.asarray(file_ids, dtype=np.int32), np.asarray(offsets, dtype=np.int64),
                    np.asarray(lengths, dtype=np.int64), np.asarray(splittable, dtype=bool), report)
        if cache is not None:
            cache.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache.with_suffix(".tmp.npz")
            np.savez(tmp, file_ids=index.file_ids, offsets=index.offsets, lengths=index.lengths,
                     splittable=index.splittable, report=json.dumps(report.to_dict()))
            tmp.replace(cache)
        return index

    @staticmethod
    def _cache_key(paths: Sequence[Path], processor: CitrusVProcessor, max_length: int, allow_split: bool) -> str:
        parts = [f"{p.resolve()}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in paths]
        cfg = processor.image_config
        parts += [str(len(processor.tokenizer)), str(cfg.min_pixels), str(cfg.max_pixels), str(cfg.factor),
                  str(max_length), str(allow_split)]
        return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]

    def load(self, index: int) -> Sample:
        """Read sample ``index`` back from its file (paths resolved against the file's folder)."""
        path = self.paths[int(self.file_ids[index])]
        with open(path, "rb") as handle:
            handle.seek(int(self.offsets[index]))
            raw = handle.readline()
        return _parse_line(raw, f"{path.name} @ byte {int(self.offsets[index])}").resolve_paths(path.parent)


def _parse_line(raw: bytes, where: str) -> Sample:
    try:
        row = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise SampleError(where, None, f"invalid JSON ({err})") from None
    return parse_sample(row, where)


class TrainingRows:
    """The packing plan of an index and the rows it describes.

    Args:
        index: the data.
        processor: encodes samples.
        max_length: row capacity.
        packing: best-fit packing; when False every sample is its own row (padded batches).
    """

    def __init__(self, index: SampleIndex, processor: CitrusVProcessor, max_length: int, packing: bool = True):
        self.index, self.processor, self.max_length = index, processor, max_length
        if len(index) == 0:
            raise ValueError("no usable training rows: every row was dropped " + json.dumps(index.report.to_dict()))
        if packing:
            self.rows = pack_best_fit(index.lengths, max_length)
        else:
            self.rows = [[(i, 0, int(length))] for i, length in enumerate(index.lengths)]
        self.report = DataReport()  # problems met while building rows (e.g. a truncated image file)

    def __len__(self) -> int:
        return len(self.rows)

    def build(self, row_id: int) -> list[tuple[EncodedSample, int, int]]:
        """Encode the samples of one row; a sample that fails now (corrupt pixels) is left out and
        counted, the rest of the row stays."""
        spans = []
        for sample_index, start, end in self.rows[row_id]:
            try:
                sample = self.index.load(sample_index)
                encoded = encode_sample(sample, self.processor)
            except (SampleError, ImageLoadError, ValueError) as err:
                self.report.drop_error(err, f"sample {sample_index}")
                continue
            expected = int(self.index.lengths[sample_index])
            if len(encoded.encoded.input_ids) != expected:
                self.report.drop("token count differs from the index (file changed?)", f"sample {sample_index}")
                continue
            spans.append((encoded, start, end))
        return spans

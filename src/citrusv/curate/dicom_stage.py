"""The DICOM stage: a folder's files → series → consistency checks → de-identified copies.

Input rows come from ``sources`` (one row per folder, ``row["dicom"]["files"]``). Output: one row
per accepted series with ``dicom.files`` relative to the de-identified output folder, ``dicom.qc``
metrics, modality / body part for tagging, and ``_audit`` (one record per file, written by the
pipeline to ``audit/<shard>.jsonl``). Rejected series are dropped with the first QC reason (all
reasons in the detail); files that are not DICOM are ignored and counted.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from .deid_dicom import DeidConfig, DeidKeys, deidentify_file
from .dicom_qc import QCConfig, check_series
from .stage import Drop, Row, Stage

__all__ = ["DicomSeriesStage", "read_headers"]


def read_headers(paths: list[str]) -> tuple[dict[str, list[tuple[str, Any]]], int]:
    """``({series uid: [(path, header dataset)]}, number of non-DICOM files)``, pixel data unread."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    series: dict[str, list[tuple[str, Any]]] = {}
    skipped = 0
    for path in paths:
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
        except (InvalidDicomError, OSError, ValueError, EOFError):
            skipped += 1
            continue
        uid = str(ds.get("SeriesInstanceUID") or f"no-series:{path}")
        series.setdefault(uid, []).append((path, ds))
    return series, skipped


class DicomSeriesStage(Stage):
    """Splits folder rows into series, checks them and (when ``keys`` is given) de-identifies them
    into ``out_dir``."""

    name = "dicom"

    def __init__(self, qc: QCConfig, out_dir: str | Path | None, keys: DeidKeys | None, deid: DeidConfig | None = None):
        self.qc, self.out_dir, self.keys, self.deid = qc, out_dir, keys, deid or DeidConfig()

    def process(self, rows: list[Row]) -> tuple[list[Row], list[Drop]]:
        kept: list[Row] = []
        dropped: list[Drop] = []
        for row in rows:
            meta = row.get("dicom")
            if not meta or "files" not in meta or "series" in meta:
                kept.append(row)
                continue
            groups, skipped = read_headers(meta["files"])
            if skipped and not groups:
                dropped.append(Drop(row, self.name, "not_dicom", f"{skipped} file(s) not readable as DICOM"))
            for uid in sorted(groups):
                kept_row, drop = self._series(row, uid, groups[uid])
                if drop is not None:
                    dropped.append(drop)
                else:
                    kept.append(kept_row)
        return kept, dropped

    def _series(self, row: Row, uid: str, members: list[tuple[str, Any]]) -> tuple[Row, Drop | None]:
        first = members[0][1]
        key = self.keys.digest("series-id", uid).hex()[:20] if self.keys else hashlib.sha1(uid.encode()).hexdigest()[:20]
        series_row: Row = {"id": f"{row['_source']}/series-{key}", "messages": [], "_source": row["_source"]}
        result = check_series([ds for _, ds in members], self.qc)
        if not result.accepted:
            return series_row, Drop(series_row, self.name, result.reasons[0], ",".join(result.reasons + result.warnings))
        info: dict[str, Any] = {
            "modality": str(first.get("Modality") or ""), "body_part": str(first.get("BodyPartExamined") or ""),
            "num_files": len(members), "qc": result.metrics, "warnings": result.warnings,
        }
        if self.keys is None or self.out_dir is None:
            info["files"] = [path for path, _ in members]
            series_row["dicom"] = info
            return series_row, None
        if self.deid.drop_burned_in and any(str(ds.get("BurnedInAnnotation") or "").upper() == "YES" for _, ds in members):
            return series_row, Drop(series_row, self.name, "burned_in_annotation", "BurnedInAnnotation = YES")
        audits, files = [], []
        for path, _ in sorted(members, key=lambda m: m[0]):
            audit = deidentify_file(path, self.out_dir, self.keys, self.deid)
            audit["source_sha256"] = hashlib.sha256(str(path).encode()).hexdigest()
            audit["series_row"] = series_row["id"]
            audits.append(audit)
            files.append(audit["output"])
        info.update(files=files, study=audits[0]["new_study_uid"], series=audits[0]["new_series_uid"])
        series_row["dicom"] = info
        series_row["_audit"] = audits
        return series_row, None

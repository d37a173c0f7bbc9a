"""DICOM de-identification to the PS3.15 Basic Application Level Confidentiality Profile, with
the Retain Longitudinal Temporal Information with Modified Dates Option.

* every attribute of ``deid_profile.BASIC_PROFILE`` is removed, emptied, replaced by a dummy or
  has its UID remapped as the profile says, at any depth of nested sequences;
* private tags, overlay comments / data and curves (groups 50xx / 60xx) are removed;
* safety net beyond the table: any other UID outside the DICOM registry (``1.2.840.10008.*``) is
  remapped, any other person name emptied, any other date shifted;
* UIDs map through a keyed hash (``2.25.<decimal>``), so one original UID becomes the same new UID
  in every file and process, references stay valid, and different studies stay different;
* dates move by a constant number of days per patient (keyed hash of the original PatientID);
  PatientID / PatientName become a pseudonym from the same key;
* PatientIdentityRemoved = YES, DeidentificationMethod and its code sequence (113100, 113107) and
  LongitudinalTemporalInformationModified = MODIFIED are set;
* pixel data is never decoded or written differently (its bytes are checked);
* BurnedInAnnotation is reported (YES / NO / unknown) so the caller can drop or review files;
* ``deidentify_dataset`` returns an audit record (actions by attribute keyword, never values).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .deid_profile import resolved_action

__all__ = ["DeidConfig", "DeidKeys", "deidentify_dataset", "deidentify_file", "remap_uid"]

_REGISTRY_ROOT = "1.2.840.10008."
_METHOD = ["PS3.15 E.1 Basic Application Level Confidentiality Profile",
           "Retain Longitudinal Temporal Information Modified Dates", "private tags removed (citrusv)"]
_DUMMY = {"PN": "ANONYMIZED", "LO": "ANONYMIZED", "SH": "ANONYMIZED", "LT": "ANONYMIZED", "ST": "ANONYMIZED",
          "UT": "ANONYMIZED", "UC": "ANONYMIZED", "CS": "ANONYMIZED", "AE": "ANONYMIZED", "DA": "19000101",
          "TM": "000000", "DT": "19000101000000", "AS": "000D", "IS": "0", "DS": "0", "UR": ""}


@dataclass
class DeidConfig:
    """De-identification settings."""

    shift_dates: bool = True
    """Shift dates per patient (Modified Dates Option) instead of emptying them."""
    max_date_shift_days: int = 3650
    """Shifts are between ``-max_date_shift_days`` and ``-1`` days."""
    drop_burned_in: bool = True
    """Drop files whose BurnedInAnnotation is YES (pixels are never edited)."""


class DeidKeys:
    """The secret that makes UID remapping, date shifts and pseudonyms consistent and one-way.

    Keep it with the de-identified data's owner (never with the data); the same key on the same
    input gives the same output, so a resumed or distributed run stays consistent.
    """

    def __init__(self, secret: bytes):
        if len(secret) < 16:
            raise ValueError(f"the de-identification secret must have at least 16 bytes, got {len(secret)}")
        self._secret = secret

    @classmethod
    def load_or_create(cls, path: str | Path) -> DeidKeys:
        """Read the secret from ``path`` (hex), creating it with 32 random bytes if absent."""
        import os
        import secrets

        path = Path(path)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
            tmp.write_text(secrets.token_hex(32))
            os.chmod(tmp, 0o600)
            try:
                os.link(tmp, path)  # fails if another process created it first: then read theirs
            except FileExistsError:
                pass
            finally:
                tmp.unlink()
        return cls(bytes.fromhex(path.read_text().strip()))

    def digest(self, purpose: str, value: str) -> bytes:
        return hmac.new(self._secret, f"{purpose}\x00{value}".encode(), hashlib.sha256).digest()


def remap_uid(uid: str, keys: DeidKeys) -> str:
    """The new UID for ``uid``: ``2.25.`` + a 128-bit keyed hash (at most 44 characters)."""
    return "2.25." + str(int.from_bytes(keys.digest("uid", str(uid))[:16], "big"))


def _date_shift_days(patient_key: str, keys: DeidKeys, max_days: int) -> int:
    return -(1 + int.from_bytes(keys.digest("date", patient_key)[:8], "big") % max_days)


def _shift_da(value: str, days: int) -> str:
    try:
        return (dt.datetime.strptime(value.strip()[:8], "%Y%m%d") + dt.timedelta(days=days)).strftime("%Y%m%d")
    except ValueError:
        return ""


def _shift_dt(value: str, days: int) -> str:
    shifted = _shift_da(value, days)
    return shifted + value.strip()[8:] if shifted else ""


@dataclass
class _Context:
    keys: DeidKeys
    shift_days: int | None
    actions: dict[str, str] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    def note(self, name: str, action: str) -> None:
        self.actions.setdefault(name, action)
        self.counts[action] = self.counts.get(action, 0) + 1


def _remap_value(value: Any, keys: DeidKeys) -> Any:
    if isinstance(value, (list, tuple)) or hasattr(value, "__iter__") and not isinstance(value, str):
        return [v if str(v).startswith(_REGISTRY_ROOT) else remap_uid(str(v), keys) for v in value]
    return value if not value or str(value).startswith(_REGISTRY_ROOT) else remap_uid(str(value), keys)


def _shift_value(elem: Any, days: int | None) -> Any:
    if days is None:
        return ""
    shift = _shift_dt if elem.VR == "DT" else _shift_da
    values = elem.value if elem.VM > 1 else [elem.value]
    shifted = [shift(str(v), days) for v in values if v]
    return shifted if elem.VM > 1 else (shifted[0] if shifted else "")


def _dummy(elem: Any) -> Any:
    if elem.VR in _DUMMY:
        return _DUMMY[elem.VR]
    if elem.VR in ("US", "SS", "UL", "SL", "FL", "FD", "UV", "SV"):
        return 0
    return b"" if elem.VR in ("OB", "OW", "OD", "OF", "OL", "OV", "UN") else ""


def _process(ds: Any, ctx: _Context) -> None:
    for elem in list(ds):
        tag = elem.tag
        if tag == 0x7FE00010:  # Pixel Data: never touched
            continue
        if tag.is_private:
            del ds[tag]
            ctx.counts["private_removed"] = ctx.counts.get("private_removed", 0) + 1
            continue
        group = tag.group & 0xFF00
        if group in (0x5000, 0x6000) and (group == 0x5000 or tag.element in (0x3000, 0x4000)):
            del ds[tag]
            ctx.note(f"({tag.group:04X},{tag.element:04X})", "X")
            continue
        keyword = elem.keyword or str(tag)
        action = resolved_action(keyword, ctx.shift_days is not None)
        if action is None:  # safety net for attributes the table does not list
            if elem.VR == "UI" and elem.value:
                new = _remap_value(elem.value, ctx.keys)
                if new != elem.value:
                    elem.value = new
                    ctx.note(keyword, "U")
            elif elem.VR == "PN" and elem.value:
                elem.value = ""
                ctx.note(keyword, "Z")
            elif elem.VR in ("DA", "DT") and elem.value:
                elem.value = _shift_value(elem, ctx.shift_days)
                ctx.note(keyword, "C")
            elif elem.VR == "SQ":
                for item in elem.value:
                    _process(item, ctx)
            continue
        if action == "X":
            del ds[tag]
        elif action == "Z":
            elem.value = [] if elem.VR == "SQ" else None if elem.VR in ("US", "SS", "UL", "SL", "FL", "FD") else ""
        elif action == "D":
            if elem.VR == "SQ":
                for item in elem.value:
                    _process(item, ctx)
            else:
                elem.value = _dummy(elem)
        elif action == "U":
            if elem.VR == "SQ":
                for item in elem.value:
                    _process(item, ctx)
            else:
                elem.value = _remap_value(elem.value, ctx.keys)
        elif action == "C" and elem.VR in ("DA", "DT"):
            elem.value = _shift_value(elem, ctx.shift_days)
        ctx.note(keyword, action)


def deidentify_dataset(ds: Any, keys: DeidKeys, config: DeidConfig | None = None) -> dict[str, Any]:
    """De-identify ``ds`` (a full pydicom ``FileDataset``) in place; returns the audit record.

    The audit record holds the action applied per attribute keyword, counts per action, the
    number of private tags removed, the date shift, BurnedInAnnotation and the SHA-256 of the
    pixel data before and after (equal by construction; checked).

    Raises:
        RuntimeError: the pixel data changed (a bug, never expected).
    """
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    cfg = config or DeidConfig()
    pixels_before = hashlib.sha256(ds.PixelData).hexdigest() if "PixelData" in ds else None
    patient_key = str(ds.get("PatientID") or ds.get("PatientName") or ds.get("StudyInstanceUID") or "")
    shift = _date_shift_days(patient_key, keys, cfg.max_date_shift_days) if cfg.shift_dates else None
    pseudonym = "ANON-" + keys.digest("patient", patient_key).hex()[:12].upper()
    burned_in = str(ds.get("BurnedInAnnotation") or "unknown").upper()
    if burned_in not in ("YES", "NO"):
        burned_in = "unknown"
    ctx = _Context(keys=keys, shift_days=shift)
    _process(ds, ctx)
    meta = getattr(ds, "file_meta", None)
    if meta is not None:
        for keyword in ("MediaStorageSOPInstanceUID", "SourceApplicationEntityTitle"):
            if keyword in meta:
                if keyword == "SourceApplicationEntityTitle":
                    del meta[keyword]
                else:
                    meta.MediaStorageSOPInstanceUID = ds.get("SOPInstanceUID") or remap_uid(meta.MediaStorageSOPInstanceUID, keys)
                ctx.note(keyword, "X" if keyword.startswith("Source") else "U")
    ds.PatientID = pseudonym
    ds.PatientName = pseudonym
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = _METHOD if shift is not None else [_METHOD[0], _METHOD[2]]
    codes = []
    for value, meaning in (("113100", "Basic Application Confidentiality Profile"),
                           ("113107", "Retain Longitudinal Temporal Information Modified Dates Option")):
        if value == "113107" and shift is None:
            continue
        item = Dataset()
        item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, "DCM", meaning
        codes.append(item)
    ds.DeidentificationMethodCodeSequence = Sequence(codes)
    if shift is not None:
        ds.LongitudinalTemporalInformationModified = "MODIFIED"
    pixels_after = hashlib.sha256(ds.PixelData).hexdigest() if "PixelData" in ds else None
    if pixels_before != pixels_after:
        raise RuntimeError("pixel data changed during de-identification")
    return {
        "actions": dict(sorted(ctx.actions.items())),
        "counts": {k: v for k, v in sorted(ctx.counts.items()) if k != "private_removed"},
        "private_removed": ctx.counts.get("private_removed", 0),
        "date_shift_days": shift,
        "burned_in_annotation": burned_in,
        "pixel_sha256": pixels_after,
        "new_study_uid": str(ds.get("StudyInstanceUID", "")),
        "new_series_uid": str(ds.get("SeriesInstanceUID", "")),
        "new_sop_uid": str(ds.get("SOPInstanceUID", "")),
    }


def deidentify_file(src: str | Path, out_dir: str | Path, keys: DeidKeys, config: DeidConfig | None = None) -> dict[str, Any]:
    """De-identify one file into ``out_dir/<study>/<series>/<sop>.dcm`` (new UIDs; written
    atomically, so a rerun overwrites identical output). Returns the audit record with ``output``
    (relative to ``out_dir``); when BurnedInAnnotation is YES and ``config.drop_burned_in``, nothing is
    written and ``output`` is ``None``."""
    import os

    import pydicom

    cfg = config or DeidConfig()
    ds = pydicom.dcmread(src)
    audit = deidentify_dataset(ds, keys, cfg)
    audit["output"] = None
    if audit["burned_in_annotation"] == "YES" and cfg.drop_burned_in:
        return audit
    rel = Path(audit["new_study_uid"] or "study") / (audit["new_series_uid"] or "series") / f"{audit['new_sop_uid'] or 'instance'}.dcm"
    path = Path(out_dir) / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    ds.save_as(tmp)
    os.replace(tmp, path)
    audit["output"] = rel.as_posix()
    return audit

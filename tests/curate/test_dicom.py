"""DICOM series checks and PS3.15 Basic Profile de-identification, on pydicom's bundled test files
and on synthetic series (``citrusv.curate.testing.write_series``)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

pydicom = pytest.importorskip("pydicom")
from pydicom.data import get_testdata_file
from pydicom.datadict import tag_for_keyword

from citrusv.curate.deid_dicom import (
    DeidConfig,
    DeidKeys,
    deidentify_dataset,
    deidentify_file,
    remap_uid,
)
from citrusv.curate.deid_profile import BASIC_PROFILE, MODIFIED_DATES_OPTION, RESOLVE
from citrusv.curate.dicom_qc import QCConfig, check_series
from citrusv.curate.dicom_stage import DicomSeriesStage, read_headers
from citrusv.curate.testing import FAKE_PHI, write_series

KEYS = DeidKeys(b"k" * 32)
MINI = Path(get_testdata_file("CT_small.dcm")).parent / "dicomdirtests"


def _headers(paths):
    return [pydicom.dcmread(p, stop_before_pixels=True) for p in paths]


# ------------------------------------------------------------------ series checks
@pytest.mark.parametrize("series, accepted, reasons", [
    ("98892001/CT5N", True, []),                      # 5 axial slices, 2.5 mm gaps = thickness
    ("77654033/CT2", False, ["nonuniform_spacing"]),  # gaps 202.5, 1.25, 1.25
    ("98892003/MR700", False, ["orientation_inconsistent"]),  # oblique MR, orientation varies
    ("98892001/CT2N", False, ["orientation_inconsistent"]),
])
def test_qc_on_pydicom_mini_series(series, accepted, reasons):
    folder = next(p for p in MINI.rglob(series.split("/")[1]) if p.parent.name == series.split("/")[0])
    result = check_series(_headers(sorted(folder.iterdir())))
    assert result.accepted == accepted
    assert set(reasons) <= set(result.reasons)


@pytest.mark.parametrize("kwargs, reasons, warnings", [
    ({}, [], []),
    ({"gaps_mm": [2.5, 2.5, 5.0]}, ["nonuniform_spacing"], []),
    ({"gaps_mm": [2.5, 0.0, 2.5]}, ["duplicate_positions"], []),
    ({"spacing_mm": 5.0, "thickness_mm": 2.5}, ["spacing_exceeds_thickness"], []),
    ({"spacing_mm": 1.25, "thickness_mm": 2.5}, [], ["overlapping_slices"]),
    ({"tilt_mm": 0.5}, ["positions_off_normal"], []),
    ({"orientation": (1, 0, 0, 0.1, 1, 0)}, ["orientation_not_orthonormal"], []),
    ({"orientation": (0.6, 0.8, 0, -0.8, 0.6, 0)}, [], []),  # rotated in-plane, still orthonormal
    ({"pixel_spacing": (0.0, 0.7)}, ["bad_pixel_spacing"], []),
    ({"pixel_spacing": (0.01, 0.01)}, ["bad_extent"], []),   # 32 px x 0.01 mm = 0.32 mm
])
def test_qc_on_synthetic_series(tmp_path, kwargs, reasons, warnings):
    result = check_series(_headers(write_series(tmp_path, **kwargs)))
    assert result.reasons == reasons and result.warnings == warnings
    assert result.accepted == (not reasons)


def test_qc_missing_geometry_single_image_and_errors():
    ct = pydicom.dcmread(get_testdata_file("CT_small.dcm"), stop_before_pixels=True)
    assert check_series([ct]).accepted
    no_geometry = pydicom.dcmread(get_testdata_file("CT_small.dcm"), stop_before_pixels=True)
    del no_geometry.ImagePositionPatient
    assert check_series([ct, no_geometry]).reasons == ["missing_geometry"]
    with pytest.raises(ValueError):
        check_series([])
    assert check_series([ct], QCConfig(min_extent_mm=1000)).reasons == ["bad_extent"]


# ------------------------------------------------------------------ the profile table
def test_profile_table_is_complete_data():
    assert len(BASIC_PROFILE) >= 250
    assert all(tag_for_keyword(k) is not None for k in BASIC_PROFILE), "every keyword is in pydicom's dictionary"
    assert set(BASIC_PROFILE.values()) <= set(RESOLVE)
    assert set(MODIFIED_DATES_OPTION) <= set(BASIC_PROFILE)
    for keyword in ("PatientName", "PatientID", "PatientBirthDate", "AccessionNumber", "StudyInstanceUID",
                    "InstitutionName", "ReferringPhysicianName", "DeviceSerialNumber", "OtherPatientIDs"
                    if "OtherPatientIDs" in BASIC_PROFILE else "OtherPatientIDsSequence"):
        assert keyword in BASIC_PROFILE


def _listed_values(ds):
    """(keyword, value) of every listed attribute present anywhere in ``ds``, with its original value."""
    found = []
    for elem in ds.iterall():
        if elem.keyword in BASIC_PROFILE and elem.VR != "SQ" and elem.value not in (None, "", b""):
            found.append((elem.keyword, str(elem.value)))
    return found


@pytest.mark.filterwarnings("ignore:Invalid value for VR UI")  # rtdose.dcm's own UIDs break the UID rules
@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small.dcm", "rtplan.dcm", "JPEG2000.dcm", "SC_rgb_rle.dcm",
                                  "rtdose.dcm", "waveform_ecg.dcm", "nested_priv_SQ.dcm"])
def test_deid_on_pydicom_files(name):
    original = pydicom.dcmread(get_testdata_file(name))
    ds = pydicom.dcmread(get_testdata_file(name))
    pixels = original.get("PixelData")
    audit = deidentify_dataset(ds, KEYS)
    kept_by_option = {k for k, a in MODIFIED_DATES_OPTION.items() if a == "K"}
    survivors = [(k, v) for k, v in _listed_values(original)
                 if k not in kept_by_option and (k, v) in set(_listed_values(ds))]
    assert survivors == []
    assert not any(elem.tag.is_private for elem in ds.iterall())
    assert ds.get("PixelData") == pixels
    assert ds.PatientIdentityRemoved == "YES" and "Basic" in ds.DeidentificationMethod[0]
    assert [c.CodeValue for c in ds.DeidentificationMethodCodeSequence] == ["113100", "113107"]
    if "StudyInstanceUID" in original:
        assert ds.StudyInstanceUID == remap_uid(original.StudyInstanceUID, KEYS)
    assert ds.get("SOPClassUID") == original.get("SOPClassUID")  # registry UIDs untouched
    assert audit["pixel_sha256"] == (hashlib.sha256(pixels).hexdigest() if pixels is not None else None)
    assert all(v in "XZDUCK" for v in audit["actions"].values())


@pytest.mark.filterwarnings("ignore")  # some files carry invalid values on purpose (pydicom's own tests)
def test_deid_every_real_file_of_pydicom_and_pydicom_data():
    """Every DICOM file pydicom and pydicom-data ship (CT, MR, CR, US, NM, SEG, RT, SR, ...): after
    de-identification no value of a Basic Profile attribute survives anywhere in the dataset
    (sequences included), no private tag is left, pixel data are byte-identical, and the new
    study UIDs are consistent (one per original study) and new."""
    pytest.importorskip("data_store", reason="pydicom-data is not installed")
    from pydicom.data import get_testdata_files

    kept_by_option = {k for k, a in MODIFIED_DATES_OPTION.items() if a == "K"}
    studies: dict[str, set[str]] = {}
    checked = 0
    for path in sorted(set(get_testdata_files("*"))):
        try:
            original = pydicom.dcmread(path)
            ds = pydicom.dcmread(path)
        except Exception:  # noqa: BLE001, S112 - not a dataset (DICOMDIR pieces, files broken on purpose)
            continue
        if "SOPClassUID" not in ds:
            continue
        pixels = original.get("PixelData")
        deidentify_dataset(ds, KEYS)
        after = set(_listed_values(ds))
        survivors = [(k, v) for k, v in _listed_values(original) if k not in kept_by_option and (k, v) in after]
        assert survivors == [], (Path(path).name, survivors)
        assert not any(elem.tag.is_private for elem in ds.iterall()), Path(path).name
        assert ds.get("PixelData") == pixels, Path(path).name
        if "StudyInstanceUID" in original:
            assert ds.StudyInstanceUID != original.StudyInstanceUID
            studies.setdefault(str(original.StudyInstanceUID), set()).add(str(ds.StudyInstanceUID))
        checked += 1
    assert checked > 100
    assert all(len(new) == 1 for new in studies.values())
    assert len({next(iter(new)) for new in studies.values()}) == len(studies)


def _two_patients(tmp_path):
    study_a, study_b = "1.2.3.4.100", "1.2.3.4.200"
    files = {
        "a1": write_series(tmp_path / "a1", patient_id="PAT-A", study_uid=study_a, series_uid="1.2.3.4.100.1", study_date="20240315"),
        "a2": write_series(tmp_path / "a2", patient_id="PAT-A", study_uid=study_a, series_uid="1.2.3.4.100.2", study_date="20240316", seed=1),
        "b1": write_series(tmp_path / "b1", patient_id="PAT-B", study_uid=study_b, series_uid="1.2.3.4.200.1", study_date="20240315", seed=2),
    }
    return files


def test_deid_files_consistency_and_audit(tmp_path):
    files = _two_patients(tmp_path / "in")
    out = tmp_path / "out"
    audits = {k: [deidentify_file(p, out, KEYS) for p in paths] for k, paths in files.items()}
    read = {k: [pydicom.dcmread(out / a["output"]) for a in v] for k, v in audits.items()}
    # UIDs: one study -> one new study UID across its series; different studies differ
    study = {k: {ds.StudyInstanceUID for ds in v} for k, v in read.items()}
    assert study["a1"] == study["a2"] and len(study["a1"]) == 1 and study["a1"] != study["b1"]
    assert len({ds.SeriesInstanceUID for v in read.values() for ds in v}) == 3
    assert len({ds.SOPInstanceUID for v in read.values() for ds in v}) == 12
    # frame of reference and references stay consistent: remapped the same way in every file
    originals = {k: [pydicom.dcmread(p) for p in paths] for k, paths in files.items()}
    for k in files:
        for before, after in zip(originals[k], read[k]):
            assert after.FrameOfReferenceUID == remap_uid(before.FrameOfReferenceUID, KEYS)
            ref_before, ref_after = before.ReferencedImageSequence[0], after.ReferencedImageSequence[0]
            assert ref_after.ReferencedSOPInstanceUID == remap_uid(ref_before.ReferencedSOPInstanceUID, KEYS)
            assert after.file_meta.MediaStorageSOPInstanceUID == after.SOPInstanceUID
            assert after.PixelData == before.PixelData
            for keyword, value in FAKE_PHI.items():
                assert str(after.get(keyword, "")) != str(value), keyword
            assert "secret" not in str(after)
    # dates: one constant shift per patient, different patients (almost surely) differ
    shifts = {k: {a["date_shift_days"] for a in v} for k, v in audits.items()}
    assert shifts["a1"] == shifts["a2"] and len(shifts["a1"]) == 1 and shifts["a1"] != shifts["b1"]
    import datetime as dt
    day = lambda s: dt.date(int(s[:4]), int(s[4:6]), int(s[6:]))
    assert (day(read["a2"][0].StudyDate) - day(read["a1"][0].StudyDate)).days == 1  # intervals kept
    assert read["a1"][0].PatientID == read["a2"][0].PatientID != read["b1"][0].PatientID
    assert read["a1"][0].LongitudinalTemporalInformationModified == "MODIFIED"
    # audit rows: per file, actions by keyword, never values
    row = audits["a1"][0]
    assert row["private_removed"] >= 1 and row["actions"]["PatientName"] == "Z" and row["actions"]["StudyInstanceUID"] == "U"
    assert row["actions"]["StudyDate"] == "C" and row["burned_in_annotation"] == "unknown"
    assert "Doe" not in str(audits) and "PAT-A" not in str(audits)


def test_deid_burned_in_flag_and_secret(tmp_path):
    paths = write_series(tmp_path / "in", burned_in="YES", num_slices=2)
    audit = deidentify_file(paths[0], tmp_path / "out", KEYS)
    assert audit["burned_in_annotation"] == "YES" and audit["output"] is None
    audit = deidentify_file(paths[0], tmp_path / "out", KEYS, DeidConfig(drop_burned_in=False))
    assert audit["output"] is not None
    with pytest.raises(ValueError):
        DeidKeys(b"short")
    key_file = tmp_path / "private" / "deid.key"
    a, b = DeidKeys.load_or_create(key_file), DeidKeys.load_or_create(key_file)
    assert remap_uid("1.2.3", a) == remap_uid("1.2.3", b) != remap_uid("1.2.3", KEYS)
    assert oct(os.stat(key_file).st_mode)[-3:] == "600"
    assert len(remap_uid("1." * 31 + "1", KEYS)) <= 64


def test_dicom_stage_splits_checks_and_deidentifies(tmp_path):
    write_series(tmp_path / "in" / "mixed", patient_id="P1", series_uid="1.2.9.1")
    write_series(tmp_path / "in" / "mixed2", patient_id="P1", series_uid="1.2.9.2", gaps_mm=[1, 1, 4])
    files = sorted(str(p) for p in (tmp_path / "in").rglob("*.dcm")) + [str(tmp_path / "not_dicom.txt")]
    (tmp_path / "not_dicom.txt").write_text("hello")
    stage = DicomSeriesStage(QCConfig(), tmp_path / "out", KEYS)
    kept, dropped = stage.process([{"id": "x", "messages": [], "dicom": {"files": files}, "_source": "src"}])
    assert len(kept) == 1 and [d.reason for d in dropped] == ["nonuniform_spacing"]
    info = kept[0]["dicom"]
    assert info["modality"] == "CT" and info["body_part"] == "CHEST" and len(info["files"]) == 4
    assert all((tmp_path / "out" / f).exists() for f in info["files"]) and len(kept[0]["_audit"]) == 4
    assert "P1" not in str(kept) and str(tmp_path) not in str(kept[0]["dicom"]["files"])
    groups, skipped = read_headers(files)
    assert len(groups) == 2 and skipped == 1


def test_cross_check_against_dicom_anonymizer_table():
    """Read dicom-anonymizer's Table E.1-1 data (2023 edition) at run time (never copied): our table
    (2024e) covers every attribute of it, and on real files no attribute of their table keeps its
    original value after our de-identification."""
    selector = pytest.importorskip("dicomanonymizer.dicomfields_selector")
    from pydicom.datadict import keyword_for_tag

    database = selector.dicom_anonymization_database_selector("dicomfields_2023")
    theirs = {keyword_for_tag((t[0] << 16) | t[1]) for cat, tags in database.items() if cat != "ALL_TAGS"
              for t in tags if len(t) == 2} - {None, ""}
    assert len(theirs) > 600 and theirs <= set(BASIC_PROFILE), sorted(theirs - set(BASIC_PROFILE))
    kept_by_option = {k for k, a in MODIFIED_DATES_OPTION.items() if a == "K"}
    for name in ("CT_small.dcm", "MR_small.dcm", "rtplan.dcm"):
        original = pydicom.dcmread(get_testdata_file(name))
        ds = pydicom.dcmread(get_testdata_file(name))
        deidentify_dataset(ds, KEYS)
        before = {(e.keyword, str(e.value)) for e in original.iterall() if e.keyword in theirs and e.VR != "SQ" and e.value}
        after = {(e.keyword, str(e.value)) for e in ds.iterall() if e.keyword in theirs and e.VR != "SQ" and e.value}
        assert {k for k, _ in before & after} - kept_by_option == set(), name

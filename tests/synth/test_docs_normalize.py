"""Normalisation rules and abnormality labels (citrusv.synth.docs.normalize)."""

from __future__ import annotations

import random

import pytest

from citrusv.synth.docs.normalize import (
    abnormality,
    canonical_entry_name,
    canonical_reference,
    canonical_unit,
    fix_decimal_comma,
    normalize_entry,
    parse_result,
    to_halfwidth,
)
from citrusv.synth.docs.render import LAB_TESTS, random_lab_report


@pytest.mark.parametrize("text, expected", [
    ("ＷＢＣ　５．２", "WBC 5.2"), ("（阴性）", "(阴性)"), ("3.5～5.5", "3.5~5.5"), ("µmol/L", "umol/L"),
])
def test_to_halfwidth(text, expected):
    assert to_halfwidth(text) == expected


@pytest.mark.parametrize("text, expected", [("3,5", "3.5"), ("1,234", "1234"), ("12,345,678", "12345678"),
                                            ("3,50-5,50", "3.50-5.50"), ("0,25", "0.25")])
def test_decimal_comma(text, expected):
    assert fix_decimal_comma(text) == expected


@pytest.mark.parametrize("text, expected", [
    ("5.6↑", ("5.6", "H")), ("5.60 H", ("5.6", "H")), ("↓3.1", ("3.1", "L")), ("7.2H", ("7.2", "H")),
    ("8.1 (L)", ("8.1", "L")), ("12 偏高", ("12", "H")), ("阴性(-)", ("negative", "")), ("Positive", ("positive", "")),
    ("３,５", ("3.5", "")), ("HBsAg", ("HBsAg", "")),
])
def test_parse_result(text, expected):
    assert parse_result(text) == expected


@pytest.mark.parametrize("text, expected", [
    ("3.5-5.5", "3.5-5.5"), ("3.5~5.5", "3.5-5.5"), ("3.50 – 5.50", "3.5-5.5"), ("3,5～5,5", "3.5-5.5"),
    ("<5", "<5"), ("＜5.0", "<5"), ("≤5", "<=5"), ("<=5", "<=5"), ("≥1.0", ">=1"), (">1", ">1"),
    ("阴性", "negative"), ("Negative", "negative"), ("(-)", "negative"), ("3.5 to 5.5", "3.5-5.5"),
])
def test_canonical_reference(text, expected):
    assert canonical_reference(text) == expected


@pytest.mark.parametrize("text, expected", [
    ("µmol/L", "umol/L"), ("umol/l", "umol/L"), ("×10^9/L", "10*9/L"), ("10^9/L", "10*9/L"), ("10E9/L", "10*9/L"),
    ("IU/L", "[IU]/L"), ("mg/dl", "mg/dL"), ("", ""), ("-", ""), ("个/HP", "/[HPF]"), ("widgets", "widgets"),
])
def test_canonical_unit(text, expected):
    assert canonical_unit(text) == expected


@pytest.mark.parametrize("a, b", [("白细胞计数(WBC)", "WBC"), ("白细胞", "White blood cells"), ("ＡＬＴ", "谷丙转氨酶"),
                                  ("Hemoglobin", "血红蛋白")])
def test_entry_name_synonyms(a, b):
    assert canonical_entry_name(a) == canonical_entry_name(b)


@pytest.mark.parametrize("result, reference, expected", [
    ("5.5", "3.5-5.5", "normal"), ("5.51", "3.5-5.5", "high"), ("3.4", "3.5~5.5", "low"), ("5", "<5", "high"),
    ("5", "≤5", "normal"), ("0.9", "≥1.0", "low"), ("1.0", ">1", "low"), ("6.2↑", "3.9-6.1", "high"),
    ("阴性(-)", "阴性", "normal"), ("阳性(+)", "阴性", "abnormal"), ("n/a", "3.5-5.5", None), ("5", "see note", None),
])
def test_abnormality(result, reference, expected):
    assert abnormality(result, reference) == expected


def test_rendered_flags_agree_with_numbers():
    """Every synthetic entry's flag and status follow from its printed numbers."""
    rng = random.Random(1)
    for i in range(30):
        report = random_lab_report(rng, "zh" if i % 2 else "en", n_entries=len(LAB_TESTS), p_abnormal=0.5)
        for entry in report.entries:
            status = abnormality(entry.result, entry.reference)
            assert status == entry.status
            assert entry.flag == {"high": "H", "low": "L", "abnormal": "H", "normal": ""}[status]
            value = float(entry.result) if status in ("high", "low") else None
            if status == "high" and "-" in entry.reference:
                assert value > float(entry.reference.replace("~", "-").split("-")[1])


def test_normalize_entry_equates_presentations():
    a = normalize_entry({"entryname": "白细胞计数", "result": "5,20↑", "unit": "×10^9/L", "reference": "3.5～9.5"})
    b = normalize_entry({"entryname": "WBC", "result": "5.2", "unit": "10^9/L", "reference": "3.5-9.5"})
    assert a.key() == b.key() and a.flag == "H"

"""Rule-based PHI finder and scrubber: English and Chinese cases, and text that must not match."""

from __future__ import annotations

from itertools import pairwise

import pytest

from citrusv.curate.phi import PHI_KINDS, PHISpan, find_phi, has_phi, scrub_phi


def kinds_and_texts(text: str, lang: str = "auto") -> list[tuple[str, str]]:
    return [(s.kind, s.text) for s in find_phi(text, lang)]


# (text, expected (kind, text) pairs in order)
FOUND = [
    # English
    ("Mr. John Smith came in.", [("NAME", "John Smith")]),
    ("Seen by Dr. Lee today.", [("NAME", "Lee")]),
    ("Patient name: Mary Jones", [("NAME", "Mary Jones")]),
    ("Call me at 555-123-4567.", [("PHONE", "555-123-4567")]),
    ("Call (555) 123-4567 please", [("PHONE", "(555) 123-4567")]),
    ("phone: 5551234567", [("PHONE", "5551234567")]),
    ("SSN 123-45-6789", [("ID", "123-45-6789")]),
    ("MRN: 12345678", [("MRN", "12345678")]),
    ("medical record number A-778812", [("MRN", "A-778812")]),
    ("admitted 2024-03-05", [("DATE", "2024-03-05")]),
    ("admitted 03/05/2024", [("DATE", "03/05/2024")]),
    ("seen on March 5, 2024", [("DATE", "March 5, 2024")]),
    ("seen on 5 March 2024", [("DATE", "5 March 2024")]),
    ("lives at 12 Main Street, Springfield, IL 62704.", [("ADDRESS", "12 Main Street, Springfield, IL 62704")]),
    ("moved to Boston, MA 02115 last year", [("ADDRESS", "Boston, MA 02115")]),
    ("write to john.smith@example.com", [("EMAIL", "john.smith@example.com")]),
    ("age 92", [("AGE", "92")]),
    ("a 95-year-old man", [("AGE", "95")]),
    ("She is 101 years old", [("AGE", "101")]),
    # Chinese
    ("张先生您好", [("NAME", "张")]),
    ("李女士，请坐", [("NAME", "李")]),
    ("王小明医生说没事", [("NAME", "王小明")]),
    ("谢谢王医生", [("NAME", "王")]),
    ("姓名：赵六", [("NAME", "赵六")]),
    ("我的手机13812345678", [("PHONE", "13812345678")]),
    ("手机 +86 138-1234-5678", [("PHONE", "+86 138-1234-5678")]),
    ("座机010-12345678", [("PHONE", "010-12345678")]),
    ("身份证110101199003071234", [("ID", "110101199003071234")]),
    ("身份证11010119900307123X号", [("ID", "11010119900307123X")]),
    ("住院号：ZY2024001", [("MRN", "ZY2024001")]),
    ("病历号 88812345", [("MRN", "88812345")]),
    ("2024年3月5日入院", [("DATE", "2024年3月5日")]),
    ("3月5日复查", [("DATE", "3月5日")]),
    ("住址广东省广州市天河区中山路12号", [("ADDRESS", "广东省广州市天河区中山路12号")]),
    ("家在杭州市西湖区", [("ADDRESS", "杭州市西湖区")]),
    ("邮箱abc123@qq.com", [("EMAIL", "abc123@qq.com")]),
    ("我今年92岁", [("AGE", "92")]),
    ("年龄：95", [("AGE", "95")]),
]

# Medical text with numbers, units and titles used generically: nothing is PHI.
NOT_PHI = [
    "Potassium 3.5-5.5 mmol/L, sodium 135-145 mmol/L.",
    "BP 120/80 mmHg, HR 72 bpm, SpO2 98%.",
    "Metformin 500 mg twice daily; insulin 10 IU; 1/2 tablet.",
    "T2 weighted MRI shows a 2.5 x 3.1 cm lesion; T1 post-contrast.",
    "A 45-year-old woman, age 45, symptoms for 2 years.",
    "Dr. visit recommended; the doctor said yes.",
    "ICD-10 code I10; HbA1c 6.5%; eGFR 60 mL/min/1.73m2.",
    "请问医生，我78岁，消化道出血，肝区疼痛，心前区不适，呼吸道感染。",
    "谢谢医生！主任医生说血钾3.5-5.5 mmol/L，血压120/80，结节小于5mm。",
    "每日2次，每次500毫克，T2加权像高信号，3.5×2.1 cm。",
    "和医生沟通后决定手术。",
    "drug name: Aspirin; CT 12345 HU; PT 12.5 s; MRI of the brain.",
    "Dr. visit at 10:30; 3 x 5 cm; Room 12; follow up in 3 months; 1996 guidelines.",
]


@pytest.mark.parametrize("text, expected", FOUND)
def test_find_phi(text, expected):
    assert kinds_and_texts(text) == expected


@pytest.mark.parametrize("text", NOT_PHI)
def test_no_false_positives(text):
    assert find_phi(text) == [] and not has_phi(text)


def test_spans_index_the_source():
    text = "张先生，手机13812345678，2024年3月5日入院，Mr. John Smith, john@x.org, age 92"
    spans = find_phi(text)
    assert spans == sorted(spans, key=lambda s: s.start)
    for span in spans:
        assert isinstance(span, PHISpan) and text[span.start:span.end] == span.text and span.kind in PHI_KINDS
    assert all(a.end <= b.start for a, b in pairwise(spans))  # no overlaps


def test_scrub_replaces_with_typed_placeholders():
    text = "张先生，手机13812345678，身份证110101199003071234，住院号：ZY2024001，2024年3月5日入院，92岁。"
    scrubbed, spans = scrub_phi(text)
    assert scrubbed == "[NAME]先生，手机[PHONE]，身份证[ID]，住院号：[MRN]，[DATE]入院，[AGE]岁。"
    assert [s.kind for s in spans] == ["NAME", "PHONE", "ID", "MRN", "DATE", "AGE"]
    scrubbed, _ = scrub_phi("Mr. John Smith, 555-123-4567, age 92")
    assert scrubbed == "Mr. [NAME], [PHONE], age [AGE]"
    assert not has_phi(scrubbed)


def test_scrub_kinds_and_placeholder():
    text = "Call 555-123-4567 on 2024-03-05"
    assert scrub_phi(text, kinds=("PHONE",))[0] == "Call [PHONE] on 2024-03-05"
    assert scrub_phi(text, placeholder="<{kind}>")[0] == "Call <PHONE> on <DATE>"
    assert scrub_phi("no phi here") == ("no phi here", [])


def test_lang_selects_rule_sets():
    text = "张先生 and Mr. Smith"
    assert kinds_and_texts(text, "en") == [("NAME", "Smith")]
    assert kinds_and_texts(text, "zh") == [("NAME", "张")]
    assert len(find_phi(text, "auto")) == 2


@pytest.mark.parametrize("call, error", [
    (lambda: find_phi(None), TypeError),
    (lambda: find_phi("x", lang="fr"), ValueError),
    (lambda: scrub_phi("x", kinds=("SSN",)), ValueError),
])
def test_errors(call, error):
    with pytest.raises(error):
        call()

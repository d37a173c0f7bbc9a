"""MedDocBench scorers: hand-computed cases for every rule and every reference quirk (default vs strict).

Expected values are worked out by hand in the comments; the reference is JD Health's
``jdh-algo/JoyMed`` ``evaluation/VLMEvalKit/data_configs/JDH_*.py`` (``docs/evaluation.md`` §3).
Judges are plain functions: some reply "不相等" / "不是" (the substring quirks), some raise ``JudgeError``.
"""

from __future__ import annotations

import json
import sys

import pytest

from citrusv.eval.metrics.base import JudgeError
from citrusv.eval.metrics.meddoc import (
    FULL_PARSE_JUDGE_POSITIVES,
    FULL_PARSE_PROMPT,
    SIMPLE_QA_JUDGE_POSITIVES,
    aggregate_abnormality,
    aggregate_full_parse,
    aggregate_general_qa,
    aggregate_simple_qa,
    build_general_judge_prompt,
    build_simple_qa_question,
    clean_simple_answer,
    is_meaningful,
    is_meaningful_abnormality,
    map_entry_fields,
    match_entry_names,
    normalize_simple_value,
    parse_abnormality_answer,
    parse_full_gold,
    parse_full_prediction,
    parse_general_judge_score,
    parse_markdown_table,
    reply_is_positive,
    rows_to_entries,
    score_abnormality,
    score_full_parse,
    score_general_qa,
    score_simple_qa,
    standardize_abnormality_value,
    standardize_value,
)
from citrusv.eval.metrics.meddoc_abnormal import ABNORMALITY_JUDGE_POSITIVES

# --------------------------------------------------------------------------------------------
# Fake judges
# --------------------------------------------------------------------------------------------


class Judge:
    """Replies with a fixed text (or raises ``JudgeError`` when ``reply`` is None) and records prompts."""

    def __init__(self, reply: str | None):
        self.reply = reply
        self.prompts: list[str] = []

    def __call__(self, prompt: str) -> str:
        self.prompts.append(prompt)
        if self.reply is None:
            raise JudgeError("judge unreachable")
        return self.reply


def entry(name: str, result: str, unit: str, reference: str) -> dict[str, str]:
    return {"entryname": name, "result": result, "unit": unit, "reference": reference}


def md(headers: list[str], *rows: list[str]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


ZH = ["检验项目", "结果", "单位", "参考范围"]

# --------------------------------------------------------------------------------------------
# standardize_value / is_meaningful
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "expected"), [
    (" 5.20 ", "5.2"),  # whitespace removed, numeric -> float repr without trailing zeros
    ("10", "10"),
    ("0.50", "0.5"),
    ("11.0-45.0", "11-45"),  # numeric range endpoints trimmed
    ("3.5～9.5", "3.5-9.5"),  # full-width tilde -> ~ -> -
    ("3.5 ~ 9.5", "3.5-9.5"),
    ("阴性(-)", "阴性-"),
    ("阴性（-）", "阴性-"),  # full-width brackets mapped first
    ("阳性(+)", "阳性+"),
    ("mmol/l", "MMOL/L"),  # upper-cased
    ("μmol/L", "UMOL/L"),  # Greek mu -> u
    ("ｍｇ／ｄＬ", "MG/DL"),  # full-width -> half-width
    ("1.2.3", "1.2.3"),  # digits and dots but not a float: kept
    ("<0.5", "<0.5"),
    (None, ""),
    (5.0, "5"),
])
def test_standardize_value(raw, expected):
    assert standardize_value(raw) == expected


def test_standardize_value_micro_sign_quirk():
    # The reference maps Greek mu (U+03BC) only; the micro sign (U+00B5) upper-cases to Greek capital MU.
    assert standardize_value("µmol/L") == "\u039cMOL/L" != standardize_value("μmol/L")
    assert standardize_value("µmol/L", strict=True) == "UMOL/L"


@pytest.mark.parametrize(("text", "expected"), [
    ("-", True),  # a lone sign is meaningful (a negative result)
    ("--", False),  # two or more dashes are not
    ("+", True),
    ("5", True),
    ("阴性", True),
    ("mg", True),
    ("...", False),
    ("()", False),
    ("[]", False),
    ("~", False),
    ("#", False),
    ("_", False),
    ("", False),
    ("   ", False),
    (None, False),
])
def test_is_meaningful(text, expected):
    assert is_meaningful(text) is expected


# --------------------------------------------------------------------------------------------
# Markdown tables and full-parse prediction parsing
# --------------------------------------------------------------------------------------------


def test_markdown_table_chinese_and_english():
    zh = md(ZH, ["白细胞", "5.2", "10^9/L", "3.5-9.5"], ["红细胞", "4.5", "10^12/L", "4.3-5.8"])
    assert parse_markdown_table(zh) == [
        {"检验项目": "白细胞", "结果": "5.2", "单位": "10^9/L", "参考范围": "3.5-9.5"},
        {"检验项目": "红细胞", "结果": "4.5", "单位": "10^12/L", "参考范围": "4.3-5.8"},
    ]
    en = "| Test | Value | Unit | Reference |\n| :--: | :-: | --- | - |\n| Glucose | 5.2 | mmol/L | 3.9-6.1 |"
    assert parse_markdown_table(en) == [{"Test": "Glucose", "Value": "5.2", "Unit": "mmol/L", "Reference": "3.9-6.1"}]


def test_markdown_table_fences_escapes_and_ragged_rows():
    fenced = "好的：\n```markdown\n| 项目 | 结果 |\n|---|---|\n| 白细胞 | 5.2 | 多余 |\n| 红细胞 |\n```\n完毕"
    # long row truncated to the header, short row padded with ""
    assert parse_markdown_table(fenced) == [{"项目": "白细胞", "结果": "5.2"}, {"项目": "红细胞", "结果": ""}]
    escaped = "| 项目 | 结果 |\\n|---|---|\\n| 白细胞 | 5.2 |"  # literal backslash-n
    assert parse_markdown_table(escaped) == [{"项目": "白细胞", "结果": "5.2"}]
    assert parse_markdown_table("no table here") == []
    assert parse_markdown_table("") == []


def test_markdown_dash_cell_quirk():
    table = md(ZH, ["尿蛋白", "-", "", "阴性"])
    # Reference: a cell holding only "-" is dropped, so the negative result disappears.
    assert parse_markdown_table(table) == [{"检验项目": "尿蛋白", "单位": "", "参考范围": "阴性"}]
    assert parse_markdown_table(table, strict=True) == [{"检验项目": "尿蛋白", "结果": "-", "单位": "", "参考范围": "阴性"}]


def test_markdown_leading_empty_cell_shift_quirk():
    table = "| 项目 | 结果 | 单位 |\n|---|---|---|\n| | 5.2 | g/L |"
    # Reference: empty edge cells are removed before assignment, so the row shifts left.
    assert parse_markdown_table(table) == [{"项目": "5.2", "结果": "g/L", "单位": ""}]
    assert parse_markdown_table(table, strict=True) == [{"项目": "", "结果": "5.2", "单位": "g/L"}]


@pytest.mark.parametrize(("text", "expected"), [
    ('[{"entryname": "白细胞", "result": "5.2"}]', [{"entryname": "白细胞", "result": "5.2"}]),  # JSON list
    ('{"entryname": "白细胞"}', [{"entryname": "白细胞"}]),  # JSON object -> one row
    ('结果如下 [{"项目": "A", "结果": "1"}, {"项目": "B", "结果": "2"}] 完毕',  # array found by regex
     [{"项目": "A", "结果": "1"}, {"项目": "B", "结果": "2"}]),
    ('见下：\n```json\n{"项目": "A"}\n```', [{"项目": "A"}]),  # fenced JSON
    ('"[{""项目"": ""A""}]"', [{"项目": "A"}]),  # TSV-quoted text
    ("| 项目 | 结果 |\\n|---|---|\\n| A | 1 |", [{"项目": "A", "结果": "1"}]),  # Markdown with literal \n
    ("项目名称：白细胞 结果：5.2\n项目名称：红细胞，结果：4.5", [{"entryname": "白细胞", "result": "5.2"},
                                                    {"entryname": "红细胞", "result": "4.5"}]),  # fallback pairs
    ("看不清图片", []),  # parse failure
    ("null", []),
])
def test_parse_full_prediction(text, expected):
    assert parse_full_prediction(text) == expected


def test_parse_full_gold_text_forms():
    rows = [entry("白细胞", "5.2", "10^9/L", "3.5-9.5")]
    assert parse_full_gold(json.dumps(rows, ensure_ascii=False)) == rows
    assert parse_full_gold(md(list(rows[0]), list(rows[0].values()))) == rows
    assert parse_full_gold("42") == []
    with pytest.raises(TypeError):
        parse_full_gold(42)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# Column mapping
# --------------------------------------------------------------------------------------------


def test_column_mapping_row_number_quirk():
    row = {"序号": "1", "检验项目": "白细胞", "结果": "5.2", "单位": "g/L", "参考范围": "3-5"}
    assert map_entry_fields(row)["entryname"] == "1"  # 序号 is an entry-name synonym and comes first
    assert map_entry_fields(row, strict=True) == {"entryname": "白细胞", "result": "5.2", "unit": "g/L",
                                                  "reference": "3-5"}


def test_column_mapping_reference_value_before_result_quirk():
    row = {"项目": "白细胞", "参考值": "3.5-9.5", "结果": "5.2"}
    assert map_entry_fields(row) == {"entryname": "白细胞", "result": "3.5-9.5", "unit": "", "reference": "3.5-9.5"}
    assert map_entry_fields(row, strict=True) == {"entryname": "白细胞", "result": "5.2", "unit": "",
                                                  "reference": "3.5-9.5"}


def test_column_mapping_english_headers():
    row = {"Test": "WBC", "Result": "5.2", "Unit": "10^9/L", "Normal Range": "3.5-9.5"}
    # "test" is contained in the result synonym "test_result"; "normal range" matches no reference synonym.
    assert map_entry_fields(row) == {"entryname": "WBC", "result": "WBC", "unit": "10^9/L", "reference": ""}
    assert map_entry_fields(row, strict=True) == {"entryname": "WBC", "result": "5.2", "unit": "10^9/L",
                                                  "reference": "3.5-9.5"}


def test_column_mapping_empty_header_and_null_cells():
    row = {"项目": "A", "": "x", "结果": "1"}
    assert map_entry_fields(row)["result"] == "x"  # an empty header is contained in every synonym
    assert map_entry_fields(row, strict=True)["result"] == "1"
    nulls = {"entryname": "A", "result": None}
    assert map_entry_fields(nulls)["result"] == "None"
    assert map_entry_fields(nulls, strict=True)["result"] == ""


def test_rows_to_entries_for_synthesis_tables():
    table = "| entry_name | result | reference | unit |\n|---|---|---|---|\n| 尿蛋白 | - | 阴性 | |\n| | 1 | 2 | 3 |"
    assert rows_to_entries(parse_markdown_table(table, strict=True)) == [entry("尿蛋白", "-", "", "阴性")]


# --------------------------------------------------------------------------------------------
# Matching
# --------------------------------------------------------------------------------------------


def test_greedy_matching_no_threshold_and_ties():
    # Dissimilar names are still paired (ratio 0): no similarity threshold.
    assert match_entry_names(["白细胞"], ["葡萄糖"]) == [(0, 0, 0.0)]
    # Ties keep row-major order: prediction 0 takes label 0.
    assert match_entry_names(["x", "y"], ["z"]) == [(0, 0, 0.0)]
    assert match_entry_names([], ["a"]) == []
    with pytest.raises(ValueError, match="greedy"):
        match_entry_names(["a"], ["a"], matching="optimal")  # type: ignore[arg-type]


# pred "ab", "abc"; gold "abcd", "bcd". Levenshtein (indel) ratios:
#   abc-abcd 6/7 = 0.857, ab-bcd 1 - 3/5 = 0.4   (greedy: best pair first, total 1.257)
#   ab-abcd  1 - 2/6 = 0.667, abc-bcd 1 - 2/6 = 0.667   (optimal total 1.333)
CRAFTED = (["ab", "abc"], ["abcd", "bcd"])


def test_greedy_differs_from_optimal_on_crafted_case():
    greedy = match_entry_names(*CRAFTED)
    assert [(i, j) for i, j, _ in greedy] == [(1, 0), (0, 1)]
    assert [r for _, _, r in greedy] == pytest.approx([6 / 7, 0.4])
    # Brute-force optimum (the Hungarian answer), computed without scipy.
    ratios = {(0, 0): 2 / 3, (0, 1): 0.4, (1, 0): 6 / 7, (1, 1): 2 / 3}
    best = max(((0, 0), (1, 1)), ((0, 1), (1, 0)), key=lambda perm: sum(ratios[p] for p in perm))
    assert best == ((0, 0), (1, 1))


def test_hungarian_matching():
    pytest.importorskip("scipy")
    pairs = match_entry_names(*CRAFTED, matching="hungarian")
    assert [(i, j) for i, j, _ in pairs] == [(0, 0), (1, 1)]
    assert sum(r for _, _, r in pairs) == pytest.approx(4 / 3)


def test_hungarian_without_scipy_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "scipy.optimize", None)
    with pytest.raises(ImportError, match="scipy"):
        match_entry_names(*CRAFTED, matching="hungarian")


def test_full_parse_pairing_depends_on_matching():
    # Entry names "AB" / "ABC" vs "ABCD" / "BCD" (the crafted case upper-cased by standardisation).
    gold = [entry("ABCD", "1", "", ""), entry("BCD", "2", "", "")]
    pred = json.dumps([entry("AB", "1", "", ""), entry("ABC", "2", "", "")])
    greedy = score_full_parse(pred, gold)
    assert [(p.pred_name, p.label_name) for p in greedy.pairs] == [("ABC", "ABCD"), ("AB", "BCD")]
    assert greedy.fields["result"].tp == 0  # "2" vs "1", "1" vs "2"
    pytest.importorskip("scipy")
    optimal = score_full_parse(pred, gold, matching="hungarian")
    assert [(p.pred_name, p.label_name) for p in optimal.pairs] == [("AB", "ABCD"), ("ABC", "BCD")]
    assert optimal.fields["result"].tp == 2


# --------------------------------------------------------------------------------------------
# Judge replies
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("reply", "positives", "default", "strict"), [
    ("相等", FULL_PARSE_JUDGE_POSITIVES, True, True),
    ("不相等", FULL_PARSE_JUDGE_POSITIVES, True, False),  # 不相等 contains 相等
    ("相同", FULL_PARSE_JUDGE_POSITIVES, True, True),
    ("不正确", FULL_PARSE_JUDGE_POSITIVES, True, False),
    ("否", FULL_PARSE_JUDGE_POSITIVES, False, False),
    ("是", SIMPLE_QA_JUDGE_POSITIVES, True, True),
    ("不是", SIMPLE_QA_JUDGE_POSITIVES, True, False),  # 不是 contains 是
    ("不对", SIMPLE_QA_JUDGE_POSITIVES, True, False),
    ("Yes.", SIMPLE_QA_JUDGE_POSITIVES, True, True),
    ("No", SIMPLE_QA_JUDGE_POSITIVES, False, False),
    ("true", ABNORMALITY_JUDGE_POSITIVES, True, True),
    ("False", ABNORMALITY_JUDGE_POSITIVES, False, False),
    ("不是", ABNORMALITY_JUDGE_POSITIVES, True, False),
])
def test_reply_is_positive(reply, positives, default, strict):
    assert reply_is_positive(reply, positives) is default
    assert reply_is_positive(reply, positives, strict=True) is strict


# --------------------------------------------------------------------------------------------
# LTR_fullparsing: documents
# --------------------------------------------------------------------------------------------

GOLD_A = [entry("白细胞", "5.2", "10^9/L", "3.5-9.5"), entry("红细胞", "4.5", "10^12/L", "4.3-5.8"),
          entry("血红蛋白", "140", "g/L", "130-175")]
# 白细胞 equal after standardisation; 红细胞 result differs (judge); 血小板 is extra and, with no
# threshold, is paired with the left-over 血红蛋白 (ratio 1 - 5/7): entry name false, 3 judge calls.
PRED_A = md(ZH, ["白细胞", "5.20", "10^9/L", "3.5~9.5"], ["红细胞", "4.6", "10^12/L", "4.3-5.8"],
            ["血小板", "200", "10^9/L", "125-350"])


def test_full_parse_document_judge_substring_quirk():
    judge = Judge("不相等")
    doc = score_full_parse(PRED_A, GOLD_A, judge=judge, doc_id="A")
    # Judge asked 4 times (never for the entry name); "不相等" counts as a match.
    assert doc.judge_calls == 4 and len(judge.prompts) == 4 and doc.judge_errors == 0
    assert [(p.pred_name, p.label_name) for p in doc.pairs] == [("白细胞", "白细胞"), ("红细胞", "红细胞"), ("血小板", "血红蛋白")]
    assert doc.pairs[2].similarity == pytest.approx(2 / 7)
    assert {k: v.tp for k, v in doc.fields.items()} == {"entryname": 2, "result": 3, "unit": 3, "reference": 3}
    assert doc.fields["entryname"].to_dict() == {"tp": 2, "n_pred": 3, "n_label": 3, "precision": 0.6667,
                                                 "recall": 0.6667, "f1": 0.6667}
    assert doc.score == pytest.approx((0.6667 + 3) / 4 * 100)  # per-document values rounded to 4 places
    assert doc.pred_items == 3 and not doc.parse_failed

    strict = score_full_parse(PRED_A, GOLD_A, judge=Judge("不相等"), strict=True)
    assert {k: v.tp for k, v in strict.fields.items()} == {"entryname": 2, "result": 1, "unit": 2, "reference": 2}
    assert strict.score == pytest.approx((2 / 3 + 1 / 3 + 2 / 3 + 2 / 3) / 4 * 100)


def test_full_parse_judge_prompt_and_errors():
    judge = Judge(None)
    doc = score_full_parse(PRED_A, GOLD_A, judge=judge)
    assert doc.judge_calls == 4 and doc.judge_errors == 4
    assert doc.pairs[1].checks[1].rule == "judge_error" and doc.pairs[1].checks[1].match is False
    assert doc.score == pytest.approx((0.6667 + 0.3333 + 0.6667 + 0.6667) / 4 * 100)
    prompt = judge.prompts[0]
    assert prompt.startswith("请判断以下两个result字段的值是否相等。")
    assert "预测值: 4.6\n真实值: 4.5" in prompt and prompt.endswith('请回答"相等"或"不相等"。')
    # Without a judge the rules alone decide (same counts as a judge that always says no).
    rules = score_full_parse(PRED_A, GOLD_A)
    assert rules.judge_calls == 0 and rules.score == pytest.approx(doc.score)


def test_full_parse_rules_per_field():
    gold = [entry("尿蛋白", "阴性(-)", "", "阴性"), entry("葡萄糖", "5.6", "mmol/L", "3.9-6.1")]
    pred = json.dumps([entry("尿蛋白", "阴性（-）", "--", "阴性"), entry("葡萄糖", "5.60", "", "3.90~6.10")],
                      ensure_ascii=False)
    doc = score_full_parse(pred, gold, judge=Judge("相等"))
    checks = {(p.pred_name, c.field): (c.match, c.rule) for p in doc.pairs for c in p.checks}
    assert checks[("尿蛋白", "result")] == (True, "exact")  # 阴性（-） -> 阴性(-) -> 阴性-
    assert checks[("尿蛋白", "unit")] == (True, "both_empty")  # "--" and "" both meaningless
    assert checks[("葡萄糖", "unit")] == (False, "one_empty")  # "" vs "mmol/L": no judge asked
    assert checks[("葡萄糖", "reference")] == (True, "exact")  # 3.90~6.10 -> 3.9-6.1
    assert doc.judge_calls == 0


def test_full_parse_dash_result_quirk_end_to_end():
    gold = [entry("尿蛋白", "-", "", "阴性")]
    pred = md(ZH, ["尿蛋白", "-", "", "阴性"])
    assert score_full_parse(pred, gold).fields["result"].tp == 0  # dropped cell: "" vs "-"
    assert score_full_parse(pred, gold, strict=True).score == 100.0


def test_full_parse_row_number_column_quirk_end_to_end():
    gold = [entry("白细胞", "5.2", "10^9/L", "3.5-9.5")]
    pred = md(["序号", *ZH], ["1", "白细胞", "5.2", "10^9/L", "3.5-9.5"])
    doc = score_full_parse(pred, gold)
    assert doc.pairs[0].pred_name == "1" and doc.fields["entryname"].tp == 0
    assert doc.score == pytest.approx(75.0)  # F1: 0, 1, 1, 1
    assert score_full_parse(pred, gold, strict=True).score == 100.0


def test_full_parse_reference_value_column_quirk_end_to_end():
    gold = [entry("白细胞", "5.2", "10^9/L", "3.5-9.5")]
    pred = md(["项目", "参考值", "结果", "单位"], ["白细胞", "3.5-9.5", "5.2", "10^9/L"])
    assert score_full_parse(pred, gold).score == pytest.approx(75.0)  # result compared as "3.5-9.5"
    assert score_full_parse(pred, gold, strict=True).score == 100.0
    # The judge is shown the last header *containing* a result synonym (结果), not the compared one.
    judge = Judge("相等")
    doc = score_full_parse(pred, gold, judge=judge)
    assert "预测值: 5.2\n真实值: 5.2" in judge.prompts[0] and doc.score == 100.0


def test_full_parse_judge_shown_wrong_column_quirk():
    gold = [entry("白细胞", "5.2", "10^9/L", "3.5-9.5")]
    pred = md(["检验项目", "结果", "单位", "参考值"], ["白细胞", "5.3", "10^9/L", "3.5-9.5"])
    judge = Judge("否")
    score_full_parse(pred, gold, judge=judge)
    # Compared: 结果 "5.3"; shown to the judge: the last header containing 值 (参考值).
    assert "预测值: 3.5-9.5\n真实值: 5.2" in judge.prompts[0]
    strict_judge = Judge("否")
    score_full_parse(pred, gold, judge=strict_judge, strict=True)
    assert "预测值: 5.3\n真实值: 5.2" in strict_judge.prompts[0]


def test_full_parse_english_table():
    gold = [entry("WBC", "5.2", "10^9/L", "3.5-9.5")]
    pred = md(["Test", "Result", "Unit", "Reference"], ["WBC", "5.2", "10^9/L", "3.5-9.5"])
    assert score_full_parse(pred, gold).score == pytest.approx(75.0)  # result read from "Test"
    assert score_full_parse(pred, gold, strict=True).score == 100.0
    named = md(["Name", "Value", "Unit", "Reference"], ["wbc", "5.20", "10^9/l", "3.5 - 9.5"])
    assert score_full_parse(named, gold).score == 100.0  # upper-cased, spaces removed, 5.20 -> 5.2


def test_full_parse_duplicates_and_degenerate_documents():
    gold = [entry("白细胞", "5.2", "", "")]
    pred = json.dumps([entry("白细胞", "5.2", "", ""), entry("白细胞", "5.2", "", ""), entry("--", "1", "", "")])
    doc = score_full_parse(pred, gold)
    assert doc.pred_items == 3 and doc.fields["result"].n_pred == 1 and doc.score == 100.0
    nothing = score_full_parse("[]", gold)
    assert nothing.parse_failed and nothing.score == 0.0 and nothing.fields["result"].n_label == 0
    assert score_full_parse("[]", gold, strict=True).fields["result"].n_label == 1
    with pytest.raises(TypeError, match="string keys"):
        score_full_parse(pred, [{1: "x"}])  # type: ignore[list-item]
    # Gold given as TSV text scores like the list.
    as_text = json.dumps(GOLD_A, ensure_ascii=False)
    assert score_full_parse(PRED_A, as_text).score == score_full_parse(PRED_A, GOLD_A).score


# --------------------------------------------------------------------------------------------
# LTR_fullparsing: dataset aggregation (3 documents by hand)
# --------------------------------------------------------------------------------------------
# A: PRED_A with a judge replying "不相等"  -> default TP 2/3/3/3 of 3 pred, 3 gold
# B: unreadable prediction, 2 gold entries -> parse failure, score 0, no micro counts (default)
# C: 尿蛋白 exact + extra 葡萄糖, 1 gold   -> TP 1 per field, P 0.5, R 1, F1 0.6667
GOLD_B = [entry("白细胞", "5.2", "", ""), entry("红细胞", "4.5", "", "")]
GOLD_C = [entry("尿蛋白", "阴性", "", "阴性")]
PRED_C = json.dumps([entry("尿蛋白", "阴性", "", "阴性"), entry("葡萄糖", "5.6", "mmol/L", "3.9-6.1")], ensure_ascii=False)


def _three_docs(strict: bool):
    return [score_full_parse(PRED_A, GOLD_A, judge=Judge("不相等"), strict=strict, doc_id="A"),
            score_full_parse("看不清", GOLD_B, judge=Judge("不相等"), strict=strict, doc_id="B"),
            score_full_parse(PRED_C, GOLD_C, judge=Judge("不相等"), strict=strict, doc_id="C")]


def test_full_parse_aggregation_default():
    docs = _three_docs(strict=False)
    assert [d.score for d in docs] == pytest.approx([(0.6667 + 3) / 4 * 100, 0.0, 66.67])
    summary = aggregate_full_parse(docs)
    # Macro: entry name F1 (0.6667 + 0 + 0.6667) / 3, other fields (1 + 0 + 0.6667) / 3.
    assert summary.macro["entryname"].f1 == pytest.approx(1.3334 / 3)
    assert summary.macro["result"].precision == pytest.approx(0.5)
    assert summary.macro["result"].recall == pytest.approx(2 / 3)  # (1 + 0 + 1) / 3
    assert summary.f1_macro == pytest.approx((1.3334 / 3 + 3 * 1.6667 / 3) / 4)
    # Micro: TP 11 + 4 = 15, #pred 12 + 8 = 20, #gold 12 + 4 = 16 (B adds nothing).
    assert summary.micro["unit"].to_dict() == pytest.approx(
        {"tp": 4, "n_pred": 5, "n_label": 4, "precision": 0.8, "recall": 1.0, "f1": 8 / 9})
    assert (summary.precision_micro, summary.recall_micro) == pytest.approx((0.75, 0.9375))
    assert summary.f1_micro == pytest.approx(30 / 36)
    assert summary.overall == pytest.approx(100 * (0.5 * 30 / 36 + 0.5 * (1.3334 / 3 + 1.6667) / 4))
    assert summary.overall == pytest.approx(68.0562, abs=1e-4)
    assert (summary.parse_failed_count, summary.n_docs, summary.n_valid_docs) == (1, 3, 3)
    assert summary.parse_success_rate == pytest.approx(2 / 3)
    assert (summary.total_pred_items, summary.avg_pred_items) == (5, pytest.approx(5 / 3))
    assert (summary.judge_calls, summary.judge_errors) == (4, 0)
    json.dumps(summary.to_dict(), ensure_ascii=False)


def test_full_parse_aggregation_strict():
    summary = aggregate_full_parse(_three_docs(strict=True))
    # Micro: TP 7 + 4 = 11, #pred 12 + 0 + 8 = 20, #gold 12 + 8 + 4 = 24 -> F1 = 22 / 44.
    assert summary.micro["entryname"].n_label == 3 + 2 + 1
    assert summary.f1_micro == pytest.approx(0.5)
    # Macro F1 (unrounded): entry (2/3 + 0 + 2/3) / 3, result (1/3 + 0 + 2/3) / 3, unit and reference as entry.
    assert summary.f1_macro == pytest.approx(5 / 12)
    assert summary.overall == pytest.approx(100 * (0.25 + 5 / 24))


def test_full_parse_aggregation_empty():
    summary = aggregate_full_parse([])
    assert summary.overall == 0.0 and summary.parse_success_rate == 0.0


# --------------------------------------------------------------------------------------------
# LTR_abnormalityQA
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "expected"), [
    ("12.5 ↑", "12.5"),
    ("阳性(+)", "阳性"),  # every (...) removed
    ("3.5 - 9.5", "3.5-9.5"),
    ("41--73", "41-73"),
    ("52.8 umol/L", "52.8umol/l"),
    ("偏高。", "偏高"),
    ("正常值范围:3-5", "参考范围：3-5"),
    (5, "5"),  # non-strings are only str()-ed
    (None, ""),
])
def test_standardize_abnormality_value(raw, expected):
    assert standardize_abnormality_value(raw) == expected


def test_is_meaningful_abnormality():
    assert [is_meaningful_abnormality(t) for t in ("-", "a", "_", "阴性", "", None)] == [False, True, True, True,
                                                                                         False, False]


@pytest.mark.parametrize(("text", "items"), [
    ("白细胞 12.5 偏高", [{"entryname": "白细胞", "result": "12.5", "reference": "", "status": "偏高"}]),
    ("【生化】谷丙转氨酶 54 偏高", [{"entryname": "谷丙转氨酶", "result": "54", "reference": "", "status": "偏高"}]),
    ("红细胞分布宽度 35.60 ↓", [{"entryname": "红细胞分布宽度", "result": "35.60", "reference": "", "status": "偏低"}]),
    ("游离甲状腺素11.46＜下限", [{"entryname": "游离甲状腺素", "result": "11.46", "reference": "下限", "status": "偏低"}]),
    ("梅毒螺旋体抗体 阳性(R)", [{"entryname": "梅毒螺旋体抗体", "result": "阳性", "reference": "", "status": "阳性"}]),
    ("乙肝表面抗原 阴性(-) 异常", [{"entryname": "乙肝表面抗原", "result": "阴性", "reference": "", "status": "异常"}]),
    ("平均血红蛋白浓度 312 参考范围：320-360 偏低",
     [{"entryname": "平均血红蛋白浓度", "result": "312", "reference": "参考范围：320-360", "status": "偏低"}]),
    ("异常项目如下：\n白细胞 12.5 偏高", [{"entryname": "白细胞", "result": "12.5", "reference": "", "status": "偏高"}]),
])
def test_abnormality_line_patterns(text, items):
    parsed = parse_abnormality_answer(text)
    assert (parsed.items, parsed.failed, parsed.how) == (items, False, "lines")


def test_abnormality_json_parsing():
    keys = '[{"检验项目名称": "白细胞", "结果": "12.5", "参考范围": "3.5-9.5", "异常状态": "偏高", "备注": "x"}]'
    expected = {"entryname": "白细胞", "result": "12.5", "reference": "3.5-9.5", "status": "偏高", "备注": "x"}
    assert parse_abnormality_answer("<think>先看 [表格]</think>\n" + keys).items == [expected]
    single = "{'项目': '白细胞', '状态': '偏高'}"
    assert parse_abnormality_answer(single).items == [{"entryname": "白细胞", "status": "偏高"}]
    bare = '{entryname: "白细胞", status: "偏高"} {entryname: "血小板", status: "偏低"}'
    assert [i["entryname"] for i in parse_abnormality_answer(bare).items] == ["白细胞", "血小板"]
    assert parse_abnormality_answer("[]").items == [] and not parse_abnormality_answer("[]").failed
    assert parse_abnormality_answer("").how == "empty"


def test_abnormality_no_abnormality_text_quirk():
    assert (parse_abnormality_answer("无异常").failed, parse_abnormality_answer("无异常", strict=True).failed) == (True,
                                                                                                             False)
    text = "以下为异常项目（正常项目未列出）\n白细胞 12.5 偏高"
    assert parse_abnormality_answer(text).items == []  # mentions 正常: no items
    assert [i["entryname"] for i in parse_abnormality_answer(text, strict=True).items] == ["白细胞"]
    assert parse_abnormality_answer("看不清").failed


ABN_GOLD = [{"entryname": "白细胞", "result": "12.5", "reference": "3.5-9.5", "status": "偏高"}]


def test_abnormality_empty_case():
    assert score_abnormality("[]", []).score == 100.0
    assert score_abnormality("无异常", "[]").score == 100.0  # parse "failure" overridden by the empty case
    assert not score_abnormality("无异常", "[]").parse_failed
    normal = [{"entryname": "白细胞", "status": "正常"}]
    assert score_abnormality(json.dumps(normal, ensure_ascii=False), []).score == 100.0  # all statuses 正常
    missing = [{"entryname": "白细胞", "result": "12.5"}]
    doc = score_abnormality(json.dumps(missing, ensure_ascii=False), [{"entryname": "x", "status": ""}])
    assert doc.empty_case and doc.fields["status"].f1 == 1.0 and doc.fields["status"].n_pred == 0


def test_abnormality_judge_on_every_field_and_substring_quirk():
    pred = json.dumps([{"检验项目": "白细胞计数", "结果": "12.5", "参考范围": "3.5~9.5", "异常状态": "升高"}], ensure_ascii=False)
    judge = Judge("不是")
    doc = score_abnormality(pred, ABN_GOLD, judge=judge)
    # entryname, reference ("3.5~9.5" stays, only "-" joins) and status differ: 3 judge calls, all "yes".
    assert [c.rule for c in doc.pairs[0].checks] == ["judge", "exact", "judge", "judge"]
    assert doc.score == 100.0 and judge.prompts[0].startswith("请判断以下两个entryname是否等价")
    assert "预测值：白细胞计数\n标准值：白细胞" in judge.prompts[0]
    strict = score_abnormality(pred, ABN_GOLD, judge=Judge("不是"), strict=True)
    assert strict.score == pytest.approx(25.0)
    failing = score_abnormality(pred, ABN_GOLD, judge=Judge(None))
    assert (failing.judge_calls, failing.judge_errors, failing.score) == (3, 3, 25.0)


def test_abnormality_status_crash_quirk():
    pred = json.dumps([{"entryname": "白细胞", "status": "偏高"}, {"entryname": "红细胞", "status": None}])
    ok = json.dumps([{"entryname": "白细胞", "status": None}, {"entryname": "红细胞", "status": "偏高"}])
    crashed = score_abnormality(ok, ABN_GOLD)  # None is reached before a non-正常 status: crash
    assert crashed.error and crashed.score == 0.0 and crashed.parse_failed
    assert score_abnormality(pred, ABN_GOLD).error is None  # "偏高" first: the test stops before None
    assert score_abnormality(ok, ABN_GOLD, strict=True).error is None
    summary = aggregate_abnormality([crashed, score_abnormality(json.dumps(ABN_GOLD), ABN_GOLD)])
    assert (summary.n_docs, summary.n_valid_docs) == (2, 1) and summary.overall == 100.0


# 1: duplicate prediction rows, all exact           -> TP 1, lookup 1/1, raw 2/1, score 100
# 2: "无异常" vs []                                  -> empty case, 100, counts 0
# 3: 1 of 2 gold found exactly                      -> TP 1, P 1, R 0.5, F1 0.6667, raw 1/2
# 4: unreadable prediction, 1 gold                  -> parse failure, score 0, raw 0/1
ABN_DOCS = [
    (json.dumps(ABN_GOLD * 2, ensure_ascii=False), ABN_GOLD),
    ("无异常", []),
    (json.dumps([{"entryname": "血红蛋白", "result": "98", "reference": "130-175", "status": "偏低"}], ensure_ascii=False),
     [{"entryname": "血红蛋白", "result": "98", "reference": "130-175", "status": "偏低"},
      {"entryname": "血小板", "result": "400", "reference": "125-350", "status": "偏高"}]),
    ("看不清", ABN_GOLD),
]


def test_abnormality_aggregation_raw_count_quirk():
    docs = [score_abnormality(p, g, doc_id=str(i)) for i, (p, g) in enumerate(ABN_DOCS)]
    assert [d.score for d in docs] == pytest.approx([100.0, 100.0, 66.67, 0.0])
    assert [(d.pred_items, d.label_items) for d in docs] == [(2, 1), (0, 0), (1, 2), (0, 1)]
    summary = aggregate_abnormality(docs)
    # Macro F1 (1 + 1 + 0.6667 + 0) / 4; micro TP 2 over raw #pred 3 and #gold 4 -> F1 4 / 7.
    assert summary.f1_macro == pytest.approx(2.6667 / 4)
    assert summary.micro["status"].to_dict() == pytest.approx(
        {"tp": 2, "n_pred": 3, "n_label": 4, "precision": 2 / 3, "recall": 0.5, "f1": 4 / 7})
    assert summary.overall == pytest.approx(100 * (0.5 * 4 / 7 + 0.5 * 2.6667 / 4))
    assert (summary.parse_failed_count, summary.parse_success_rate) == (1, 0.75)
    assert (summary.total_pred_items, summary.total_label_items) == (3, 4)

    strict_docs = [score_abnormality(p, g, strict=True) for p, g in ABN_DOCS]
    strict = aggregate_abnormality(strict_docs, strict=True)
    # De-duplicated: #pred 1 + 0 + 1 + 0 = 2, #gold 1 + 0 + 2 + 1 = 4 -> F1 = 4 / 6.
    assert strict.micro["result"].n_pred == 2 and strict.f1_micro == pytest.approx(2 / 3)
    assert strict.f1_macro == pytest.approx((2 + 2 / 3) / 4)
    assert strict.overall == pytest.approx(100 * 2 / 3)
    json.dumps(strict.to_dict(), ensure_ascii=False)


# --------------------------------------------------------------------------------------------
# LTR_simpleQA
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "clean"), [
    ("答案是5.2 g/L", "5.2 g/L"),
    ("回答：5.2", "5.2"),
    ("该项测量结果是 5.2", "5.2"),
    ("根据检验单，白细胞的测量结果为5.2 g/L", "5.2 g/L"),
    ("图中白细胞的参考区间是3.5-9.5", "3.5-9.5"),
    ("  5.2  ", "5.2"),
])
def test_clean_simple_answer(raw, clean):
    assert clean_simple_answer(raw) == clean


@pytest.mark.parametrize(("raw", "norm"), [
    ("5.2  ×10^9/L", "5.2 e9/l"),
    ("12.0", "12"),
    ("12.0 g/L", "12 g/l"),
    ("3.5 ～ 9.5", "3.5-9.5"),
    ("41--73", "41-73"),
    ("参考区间：3.5-9.5。", "3.5-9.5"),
    ("0.5 μmol/L", "0.5 umol/l"),
    ("", ""),
])
def test_normalize_simple_value(raw, norm):
    assert normalize_simple_value(raw) == norm


@pytest.mark.parametrize(("pred", "gold", "field_type", "score", "rule"), [
    ("5.2 g/L", "5.2 g/L", "result", 1.0, "exact"),
    ("答案是5.2 g/L。", "5.2 g/L", "result", 1.0, "exact"),
    ("4.5×10^9/L", "4.5*10^9/L", "result", 1.0, "exact"),  # both -> 4.5e9/l
    ("5.20 g/L", "5.2 g/L", "result", 1.0, "number"),
    ("5.21 g/L", "5.2 g/L", "result", 1.0, "number"),  # 0.19 % relative error
    ("5.2 mg/L", "5.2 g/L", "result", 0.5, "number_only"),
    ("5.3 g/L", "5.2 g/L", "result", 0.5, "char_overlap"),  # 1.9 % off; character sets share 6 of 7
    ("阴性", "阳性", "result", 0.0, "none"),
    ("", "5.2 g/L", "result", 0.0, "empty"),
    ("3.50-9.50", "3.5-9.5", "reference", 1.0, "range"),
    ("3.5～9.5", "3.5-9.5", "reference", 1.0, "exact"),
    ("参考区间：3.5-9.5", "3.5-9.5", "reference", 1.0, "exact"),
    ("3.5-9.6", "3.5-9.5", "reference", 0.5, "char_overlap"),  # 5 of 6 characters
    ("1.2.3", "5.2 g/L", "result", 0.0, "reference_crash"),
])
def test_simple_qa_ladder(pred, gold, field_type, score, rule):
    item = score_simple_qa(pred, gold, field_type=field_type)
    assert (item.score, item.rule) == (score, rule)


def test_simple_qa_judge_and_quirks():
    question = build_simple_qa_question("白细胞", "result", has_unit=True)
    assert question == "图中显示白细胞的测量结果是多少？如果有单位请同时包含单位"
    judge = Judge("不是")
    item = score_simple_qa("4.6", "4.5 g/L", question=question, judge=judge)
    assert (item.score, item.rule, item.judge_called) == (1.0, "judge", True)  # 不是 contains 是
    assert "问题：" + question in judge.prompts[0] and "预测答案：4.6\n标准答案：4.5 g/L" in judge.prompts[0]
    strict = score_simple_qa("4.6", "4.5 g/L", judge=Judge("不是"), strict=True)
    assert (strict.score, strict.rule) == (0.0, "none")
    half = score_simple_qa("5.2 mg/L", "5.2 g/L", judge=Judge("否"))
    assert (half.score, half.judge_called) == (0.5, True)  # the judge runs below 1, a no keeps 0.5
    error = score_simple_qa("5.2 mg/L", "5.2 g/L", judge=Judge(None))
    assert (error.score, error.judge_error) == (0.5, True)
    exact = Judge("是")
    assert score_simple_qa("5.2", "5.2", judge=exact).judge_called is False and exact.prompts == []
    # The crash leaves no room for the judge; strict reads "1.2.3" as text and asks.
    crash_judge = Judge("是")
    assert score_simple_qa("1.2.3", "5.2 g/L", judge=crash_judge).score == 0.0 and crash_judge.prompts == []
    assert score_simple_qa("1.2.3", "5.2 g/L", judge=Judge("是"), strict=True).score == 1.0
    with pytest.raises(ValueError, match="field_type"):
        score_simple_qa("1", "1", field_type="unit")  # type: ignore[arg-type]


def test_simple_qa_aggregation():
    items = [score_simple_qa("5.2 g/L", "5.2 g/L"), score_simple_qa("5.2 mg/L", "5.2 g/L"),
             score_simple_qa("阴性", "3.5-9.5", field_type="reference"),
             score_simple_qa("3.5-9.5", "3.5-9.5", field_type="reference")]
    summary = aggregate_simple_qa(items)
    assert (summary.overall, summary.exact_match_rate, summary.n) == (62.5, 50.0, 4)
    assert summary.by_field_type["result"].to_dict() == {"score": 75.0, "count": 2, "exact_match_rate": 50.0}
    assert summary.by_field_type["reference"].to_dict() == {"score": 50.0, "count": 2, "exact_match_rate": 50.0}
    assert summary.score_distribution == {"0-50": 1, "50-80": 1, "80-100": 2}
    assert aggregate_simple_qa([]).overall == 0.0
    json.dumps(summary.to_dict(), ensure_ascii=False)


# --------------------------------------------------------------------------------------------
# GMD_simpleQA / GMD_complexQA
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("reply", "default", "strict"), [
    ("推理……<score>0.8</score>", (80.0, "tag"), (80.0, "tag")),
    ("<score>0.5</score> 或 <score>1</score>", (50.0, "tag"), (50.0, "tag")),  # first tag wins
    ("<SCORE> 1 </SCORE>", (100.0, "tag"), (100.0, "tag")),
    ("<score>85</score>", (100.0, "tag"), (85.0, "tag_points")),  # clamped to 1 before x 100
    ("1", (1.0, "last_number"), (100.0, "last_number")),  # bare "1" gives 1 point
    ("得分 0.5", (0.5, "last_number"), (50.0, "last_number")),
    ("评分：80", (80.0, "last_number"), (80.0, "last_number")),
    ("1.0 分, 满分 150", (0.0, "out_of_range"), (0.0, "out_of_range")),  # last number is 150
    ("-0.5", (0.5, "last_number"), (50.0, "last_number")),  # the sign is not read
    ("无法评分", (0.0, "no_number"), (0.0, "no_number")),
])
def test_parse_general_judge_score(reply, default, strict):
    assert parse_general_judge_score(reply) == default
    assert parse_general_judge_score(reply, strict=True) == strict


def test_general_qa_scoring_and_aggregation():
    prompt = build_general_judge_prompt("诊断是什么？", "肺炎", "社区获得性肺炎")
    assert "问题：诊断是什么？\n预测答案：肺炎\n标准答案：社区获得性肺炎" in prompt
    assert prompt.endswith("请将最终评分输出在<score>标签中。\n")
    items = [
        score_general_qa("肺炎", "肺炎", question="q", judge=Judge("<score>1.0</score>"), doc_type="病历", department="内科"),
        score_general_qa("支气管炎", "肺炎", question="q", judge=Judge("<score>0.2</score>"), doc_type="病历",
                         department="外科"),
        score_general_qa("肺炎", "肺炎", question="q", judge=Judge(None), doc_type="处方", department="内科"),
        score_general_qa("肺炎", "肺炎", question="q", judge=Judge("1"), item_id="bare", doc_type="处方",
                         department="内科"),
    ]
    assert [i.score for i in items] == pytest.approx([100.0, 20.0, 0.0, 1.0])
    assert items[2].judge_error and items[2].rule == "judge_error"
    summary = aggregate_general_qa(items)
    assert summary.overall == pytest.approx(121 / 4)
    assert summary.by_doc_type["病历"].to_dict() == pytest.approx({"score": 60.0, "count": 2, "exact_match_rate": None})
    assert summary.by_department["内科"].score == pytest.approx(101 / 3)
    assert summary.judge_errors == 1 and summary.score_distribution == {"0-50": 3, "50-80": 0, "80-100": 1}
    json.dumps(summary.to_dict(), ensure_ascii=False)


def test_task_prompts():
    assert FULL_PARSE_PROMPT == "请将图中检验单表格解析为Markdown格式，表头包括检验项目、结果、单位、参考范围"

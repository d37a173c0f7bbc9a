"""Reference tests for answer extraction, multiple choice and VQA scoring (docs/evaluation.md §1)."""

from __future__ import annotations

import pytest

from citrusv.eval.metrics.answers import (
    extract_boxed_content,
    extract_tag_content,
    parse_response,
    pre_extract_vqa,
    strip_think,
)
from citrusv.eval.metrics.base import JudgeError
from citrusv.eval.metrics.choice import judge_multi_choice, option_letters
from citrusv.eval.metrics.vqa import (
    judge_closed,
    judge_prompt,
    judge_yes_no,
    open_exact_match,
    parse_judge_verdict,
    score_vqa,
    token_prf,
)


# ----------------------------------------------------------------------------- extraction
@pytest.mark.parametrize("text, expected", [
    (r"so \boxed{B}", "B"),
    (r"\boxed{a} then \boxed{ {x} y }", "{x} y"),  # last box, balanced braces, stripped
    ("no box here", "None"),
    (r"\boxed{unclosed", "None"),
])
def test_extract_boxed_content(text, expected):
    assert extract_boxed_content(text) == expected


def test_extract_tag_content_joins_spans_and_falls_back():
    assert extract_tag_content("<answer>a</answer> x <answer> b </answer>", "answer") == "a  b"
    assert extract_tag_content("plain", "answer") == "plain"
    assert extract_tag_content("plain", "answer", hard=False) == ""
    assert extract_tag_content("<answer>open only", "answer") == "<answer>open only"
    assert extract_tag_content("", "answer") == ""


def test_strip_think_keeps_text_after_last_close():
    assert strip_think("<think>a</think>b<think>c</think> final") == " final"
    assert strip_think("no think") == "no think"


@pytest.mark.parametrize("response, expected", [
    ("Yes", "yes"),
    ("The answer is: Lung", ": lung"),  # 'answer is' then 'answer:' not present after cut
    ("**Answer**: B", " b"),
    (r"Final: \boxed{C}", "c"),
    ("<answer>Liver</answer>", "liver"),
    ("boxed but no box", "None"),  # the word 'boxed' alone triggers box extraction
    ("x <unused94>hidden<unused95> answer: y", " y"),
    ("answer is a. final answer is b", " b"),  # last marker in list order wins
    ("答案:肝脏", "肝脏"),
])
def test_parse_response(response, expected):
    assert parse_response(response) == expected


def test_parse_response_dollar_boxed_branch_never_fires_on_real_text():
    # '$\boxed{B}$' goes through the generic boxed branch: the reference's own literal is broken.
    assert parse_response(r"$\boxed{B}$") == "b"


def test_pre_extract_prefers_answer_tag_then_box():
    assert pre_extract_vqa(r"<answer>yes</answer> \boxed{no}") == "yes"
    assert pre_extract_vqa(r"it is \boxed{no}") == "no"
    assert pre_extract_vqa("plain") == "plain"


# ----------------------------------------------------------------------------- multiple choice
CHOICES = ["A. Pneumonia", "B. Pleural effusion", "C. Pneumothorax", "D. Atelectasis"]


@pytest.mark.parametrize("response, gold, correct, rule", [
    ("B", "B", True, "exact"),
    ("b\n\nBecause the costophrenic angle is blunted.", "B", True, "exact"),  # first paragraph is a letter
    ("Reasoning...\n\nC. Pneumothorax", "C", True, "exact"),  # last paragraph's head is a letter
    ("The answer is (B).", "B", True, "similarity"),  # '(b)' is no bare letter: fallback, only B holds a 'b'
    ("The answer is (B).", "A", False, "similarity"),
    ("Answer: C", "C", True, "exact"),  # cut after 'answer:', stripped
    ("<answer>D</answer>", "D", True, "exact"),
    ("**D**", "D", True, "exact"),  # the fork removes '*'
    ("b. pleural effusion", "B", True, "exact"),  # head before '.' is the letter
    ("pleural effusion", "B", True, "similarity"),
    ("Pneumothorax is most likely", "C", True, "similarity"),
])
def test_multi_choice_cascade(response, gold, correct, rule):
    verdict = judge_multi_choice(CHOICES, gold, response)
    assert (verdict.correct, verdict.rule) == (correct, rule)


def test_multi_choice_option_text_branch():
    # An answer equal to a full option string (no '.' in it) is matched to its letter.
    choices = ["A: lung", "B: liver"]
    assert judge_multi_choice(choices, "B", "liver").correct  # fallback picks 'b: liver'
    verdict = judge_multi_choice(["lung", "liver"], "B", "Liver")
    assert (verdict.correct, verdict.rule) == (True, "option_text")
    assert judge_multi_choice(["lung", "liver"], "A", "Liver").correct is False


def test_multi_choice_letter_branch_compares_option_text_with_gold():
    # A letter that is not the gold is right only when its option text equals the gold (MCMLE-style
    # golds that are option texts).
    verdict = judge_multi_choice(["lung", "liver"], "liver", "B")
    assert (verdict.correct, verdict.rule) == (True, "letter")


def test_multi_choice_empty_answers_default_reproduces_reference():
    # Only spaces → empty → wrong; '   \n' escapes the check and the fallback picks A.
    assert judge_multi_choice(CHOICES, "A", "    ").rule == "empty"
    assert judge_multi_choice(CHOICES, "A", "   \n").correct is True
    assert judge_multi_choice(CHOICES, "B", "   \n").correct is False
    assert judge_multi_choice(CHOICES, "A", "%%%").correct is True  # nothing similar → index 0


def test_multi_choice_strict_fixes_empty_and_no_similarity():
    assert judge_multi_choice(CHOICES, "A", "   \n", strict=True).correct is False
    verdict = judge_multi_choice(CHOICES, "A", "%%%", strict=True)
    assert (verdict.correct, verdict.rule) == (False, "no_match")


def test_multi_choice_answer_tag_extraction_flag():
    text = "<think>A looks wrong</think><answer>C</answer>"
    assert judge_multi_choice(CHOICES, "C", text, extract_answer_tag=True).correct
    assert judge_multi_choice(CHOICES, "C", "thinking... final answer is c").correct


def test_option_letters_bounds():
    assert option_letters(3) == ["a", "b", "c"]
    with pytest.raises(ValueError, match="1..26"):
        option_letters(0)


# ----------------------------------------------------------------------------- VQA rules
@pytest.mark.parametrize("gold, response, correct", [
    ("yes", "Yes.", True),
    ("no", "No, there is no fracture.", True),
    ("yes", "Yes, but not clearly", False),  # 'not' contains 'no' → both present → wrong
    ("no", "The lungs are normal", True),  # quirk: 'no' inside 'normal', gold 'no' is a substring
    ("yes", "The answer is yes", True),
    ("yes", "maybe", False),
])
def test_judge_yes_no(gold, response, correct):
    assert judge_yes_no(gold, response) is correct


def test_judge_closed_and_open_exact_match():
    assert judge_closed("Left", "left.") is True  # periods removed for closed
    assert judge_closed("Left", "left lung") is False
    assert open_exact_match("Liver", "liver") is True
    assert open_exact_match("Liver", "liver.") is False  # periods kept for open


def test_token_prf():
    assert token_prf("right lower lobe", "right lobe") == pytest.approx((2 / 3, 1.0, 0.8))
    assert token_prf("", "x") == (0.0, 0.0, 0.0)


def test_judge_prompt_and_verdict():
    prompt = judge_prompt("Where is the lesion?", "left lobe", "right frontal lobe")
    assert "The question is: Where is the lesion?" in prompt
    assert "The standard answer: right frontal lobe" in prompt
    assert "The user's answer: left lobe" in prompt
    assert "(0 represents correct, 1 represents incorrect)" in prompt
    assert "<judge>{0/1}</judge>" in prompt
    assert parse_judge_verdict("<think>same</think>\n<judge>0</judge>") is True
    assert parse_judge_verdict("<judge>1</judge>") is False
    assert parse_judge_verdict("<judge> 0 </judge>") is False  # exact "0" only
    assert parse_judge_verdict("<judge>\n0\n</judge>") is False  # reference regex is single-line
    assert parse_judge_verdict("0") is False and parse_judge_verdict(None) is False


def _rows():
    return [
        {"id": "1", "question": "Is there a fracture?", "answer": "yes", "prediction": "Yes."},
        {"id": "2", "question": "Is it normal?", "answer": "No", "prediction": "<answer>no</answer>"},
        {"id": "3", "question": "Which organ?", "answer": "Liver", "prediction": "liver"},
        {"id": "4", "question": "Which side?", "answer": "right", "prediction": "The right side"},
    ]


def test_score_vqa_rule_mode_vqa_rad():
    scores = score_vqa("vqa_rad", _rows())
    assert [item.correct for item in scores.items] == [True, True, True, False]
    assert (scores.closed_total, scores.open_total) == (2, 2)
    assert scores.accuracy == pytest.approx(75.0)
    assert scores.closed_accuracy == pytest.approx(100.0) and scores.open_accuracy == pytest.approx(50.0)
    assert scores.comparable is False  # open answers by rule


def test_score_vqa_judge_for_open_only():
    calls: list[str] = []

    def judge(prompt: str) -> str:
        calls.append(prompt)
        return "<think>ok</think><judge>0</judge>" if "right side" in prompt else "<judge>1</judge>"

    scores = score_vqa("path_vqa", _rows(), judge=judge)
    assert len(calls) == 2  # only the two open questions
    assert "The user's answer: the right side" in calls[1]  # lower-cased response as the fork
    assert [item.correct for item in scores.items] == [True, True, False, True]
    assert scores.accuracy == pytest.approx(75.0) and scores.comparable


def test_score_vqa_judge_failure_counts_wrong():
    def judge(prompt: str) -> str:
        raise JudgeError("down")

    scores = score_vqa("vqa_rad", _rows(), judge=judge)
    assert scores.judge_failures == 2
    assert [item.method for item in scores.items][2:] == ["judge_failed", "judge_failed"]
    assert scores.accuracy == pytest.approx(50.0)


def _slake_rows():
    return [
        {"id": "s1", "question": "Is this a CT?", "answer": "Yes", "answer_type": "CLOSED", "prediction": "Yes"},
        {"id": "s2", "question": "Is this a CT?", "answer": "Yes", "answer_type": "CLOSED", "prediction": "yes, because of the table"},
        {"id": "s3", "question": "Which organ?", "answer": "Lung", "answer_type": "OPEN", "prediction": "Lung"},
        {"id": "s4", "question": "这是什么器官?", "answer": "肺", "answer_type": "OPEN", "prediction": ""},
    ]


def test_slake_rule_mode_capitalised_gold_quirk_and_strict():
    default = score_vqa("slake", _slake_rows())
    # 'Yes' never hits the yes/no rule: exact match, so the verbose answer is wrong.
    assert [item.kind for item in default.items] == ["closed", "closed", "open", "open"]
    assert [item.correct for item in default.items] == [True, False, True, False]
    assert default.comparable is False
    strict = score_vqa("slake", _slake_rows(), strict=True)
    assert [item.kind for item in strict.items][:2] == ["yes_no", "yes_no"]
    assert [item.correct for item in strict.items] == [True, True, True, False]


def test_slake_judge_mode_judges_every_item_with_raw_case():
    seen: list[str] = []

    def judge(prompt: str) -> str:
        seen.append(prompt)
        return "<judge>0</judge>"

    scores = score_vqa("slake", _slake_rows(), judge=judge)
    assert len(seen) == 4
    assert "The standard answer: Yes" in seen[0] and "The user's answer: Yes" in seen[0]
    assert scores.accuracy == pytest.approx(100.0)  # empty open answer: judged, no crash

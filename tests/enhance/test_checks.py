"""Pure checks of the enhancement pipelines: fact entailment rules, answer matching, prompt files."""

from __future__ import annotations

import pytest

from citrusv.enhance.checks import (
    answer_kind,
    check_fact,
    content_terms,
    extract_choice,
    judge_verdict,
    match_closed,
    normalize_text,
    parse_bool,
    yes_no,
)
from citrusv.enhance.prompts import load_prompt

TEXT = "There is no fracture of the femur. A small joint effusion is present, but no mass is seen."
ZH = "图像未见明显骨折，可见少量关节积液。病变位于肝右叶。"


@pytest.mark.parametrize("question, answer, text, status", [
    ("Is there a fracture?", "No", TEXT, "entailed"),
    ("Is there a fracture?", "Yes", TEXT, "contradicted"),
    ("Is there a joint effusion?", "yes", TEXT, "entailed"),
    ("Is there an effusion?", "no", TEXT, "contradicted"),
    ("Is there a mass?", "no", TEXT, "entailed"),
    ("Is there a pneumothorax?", "no", TEXT, "missing"),  # the fact was dropped
    ("Which bone is shown?", "Femur", TEXT, "entailed"),
    ("What modality is this?", "CT", TEXT, "missing"),
    ("How big is the effusion?", "small", TEXT, "entailed"),
    ("Describe the findings.", "A small effusion of the knee joint without fracture or mass lesion.", TEXT,
     "needs_judge"),
    ("图中有骨折吗？", "没有", ZH, "entailed"),
    ("图中有骨折吗？", "有", ZH, "contradicted"),
    ("病变在哪里？", "肝右叶", ZH, "entailed"),
    ("病变在哪里？", "肝左叶", ZH, "missing"),
])
def test_check_fact(question, answer, text, status):
    assert check_fact(question, answer, text).status == status


@pytest.mark.parametrize("answer, kind", [("Yes.", "yes_no"), ("否", "yes_no"), ("left lower lobe", "short"),
                                          ("肝右叶", "short"), ("a b c d e f", "long")])
def test_answer_kind(answer, kind):
    assert answer_kind(answer) == kind


def test_small_helpers():
    assert normalize_text("The Liver, 3.5 cm!") == "liver 3.5 cm"
    assert (yes_no("Yes"), yes_no("no."), yes_no("maybe")) == (True, False, None)
    assert (parse_bool("True, because"), parse_bool("错误"), parse_bool("")) == (True, False, None)
    assert content_terms("Is there a fracture of the femur?") == ["fracture", "femur"]
    assert judge_verdict({"entailed": True}, "entailed") is True
    assert judge_verdict({"correct": "no"}, "correct") is False
    assert judge_verdict({"other": 1}, "correct") is None and judge_verdict(["x"], "correct") is None


OPTIONS = {"A": "Pneumonia", "B": "Pneumothorax", "C": "Effusion", "D": "Normal"}


@pytest.mark.parametrize("text, expected", [
    ("B", "B"), ("(B)", "B"), ("B. Pneumothorax", "B"), ("The answer is C", "C"), ("选D", "D"),
    ("pneumonia", "A"), ("I am not sure", None),
])
def test_extract_choice(text, expected):
    assert extract_choice(text, OPTIONS) == expected


@pytest.mark.parametrize("answer, standard, fmt, expected", [
    ("B. Pneumothorax", "B", "mcq", True),
    ("A", "B", "mcq", False),
    ("True", "true", "tf", True),
    ("False.", "True", "tf", False),
    ("不正确", "False", "tf", True),
    ("Left lower lobe.", "left lower lobe", "short", True),
    ("right lower lobe", "left lower lobe", "short", False),
    ("anything", "something", "open", None),
])
def test_match_closed(answer, standard, fmt, expected):
    assert match_closed(answer, standard, fmt, OPTIONS if fmt == "mcq" else None) is expected


def test_match_closed_rejects_unknown_format():
    with pytest.raises(ValueError, match="fmt"):
        match_closed("a", "a", "essay")


def test_prompt_files_load_and_render(tmp_path):
    prompt = load_prompt("entailment_judge")
    assert prompt.tag == "entailment_judge.v1" and set(prompt.variables) == {"question", "answer", "consolidated"}
    text = prompt.render(question="Q?", answer="A", consolidated="C")
    assert "Q?" in text and '{"entailed"' in text
    with pytest.raises(ValueError, match="missing"):
        prompt.render(question="Q?")
    (tmp_path / "p.v1.md").write_text("---\nname: p\nversion: 1\nvariables: [x]\n---\nold $x\n")
    (tmp_path / "p.v2.md").write_text("---\nname: p\nversion: 2\nvariables: [x]\n---\nnew $x\n")
    assert load_prompt("p", root=tmp_path).render(x=1) == "new 1\n"
    assert load_prompt("p", 1, root=tmp_path).tag == "p.v1"
    (tmp_path / "bad.v1.md").write_text("---\nname: bad\nversion: 2\n---\ntext\n")
    with pytest.raises(ValueError, match="version"):
        load_prompt("bad", root=tmp_path)
    (tmp_path / "undeclared.v1.md").write_text("---\nname: undeclared\nversion: 1\n---\nuses $y\n")
    with pytest.raises(ValueError, match="placeholders"):
        load_prompt("undeclared", root=tmp_path)
    with pytest.raises(FileNotFoundError):
        load_prompt("p", 7, root=tmp_path)

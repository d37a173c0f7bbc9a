"""Verified visual-reasoning synthesis against the local fake OpenAI-compatible server."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image

from citrusv.data.jsonl import read_samples, write_samples
from citrusv.enhance import (
    ReasonConfig,
    ReasoningSynthesizer,
    question_difficulty,
    run_units,
    select_candidates,
)
from citrusv.llm import LLMClient
from citrusv.llm.fake_server import FakeOpenAIServer, last_user_text
from citrusv.processing.reasoning import parse_reasoning

OPTIONS = {"A": "Pneumonia", "B": "Normal", "C": "Effusion", "D": "Mass"}


def write_input(folder):
    folder.mkdir()
    Image.fromarray(np.zeros((8, 8, 3), dtype=np.uint8)).save(folder / "cxr.png")

    def row(i, question, answer, task=None):
        out = {"id": f"r{i}", "images": ["cxr.png"],
               "messages": [{"role": "user", "content": f"<image>{question}"},
                            {"role": "assistant", "content": answer}]}
        if task:
            out["tags"] = {"task": [task]}
        return out

    rows = [row(1, "What is the most likely diagnosis?", "Pneumonia", "Differential Diagnosis"),
            row(2, "Where is the lesion located, based on the image?", "Left lobe", "Lesion Localization"),
            row(3, "What is this?", "Chest"),  # easy: not a candidate
            row(4, "What is the most likely diagnosis?", " ".join(["word"] * 40), "Differential Diagnosis")]
    write_samples(rows, folder / "in.jsonl")
    return folder / "in.jsonl"


def handler(request):
    """Generation by format; the answering model is right about [dx] questions and wrong about
    [lesion] ones; the judge agrees only with [dx] answers."""
    text = last_user_text(request)
    marker = "[lesion]" if "lesion" in text else "[dx]"
    if "Question format:" in text:
        if "Question format: multiple choice" in text:
            return json.dumps({"question": f"{marker} Which finding?", "options": OPTIONS, "answer": "A"})
        if "Question format: true/false" in text:
            return json.dumps({"question": f"{marker} The image shows consolidation.", "answer": "true"})
        return json.dumps({"question": f"{marker} Describe the key finding.", "answer": "Right lower lobe consolidation."})
    if "Candidate answer:" in text:
        return json.dumps({"correct": "[dx]" in text})
    right = "[dx]" in text
    if "Options:" in text:
        final = "A" if right else "B"
    elif "consolidation." in text:
        final = "True" if right else "False"
    else:
        final = "Consolidation of the right lower lobe."
    return f"<think>The right lower lobe is opaque, so the finding follows.</think>\n<answer>{final}</answer>"


def test_question_difficulty():
    assert question_difficulty("What is this?") == 0
    assert question_difficulty("What is the most likely diagnosis?") == 1
    assert question_difficulty("What is the most likely diagnosis?", {"task": ["Differential Diagnosis"]}) == 2


def test_select_candidates(tmp_path):
    path = write_input(tmp_path / "data")
    units, skipped = select_candidates(read_samples(path), ReasonConfig(formats=("mcq", "open")))
    assert [u.id for u in units] == ["r1--reason-mcq", "r1--reason-open", "r2--reason-mcq", "r2--reason-open"]
    assert skipped == {"easy": 1, "long_response": 1}
    units, skipped = select_candidates(read_samples(path), ReasonConfig(tasks=("Lesion Localization",)))
    assert {u.source_ids[0] for u in units} == {"r2"} and skipped["task"] == 3


def test_reasoning_kept_only_when_final_answer_matches(tmp_path):
    path = write_input(tmp_path / "data")
    out = tmp_path / "out" / "reason.jsonl"
    config = ReasonConfig(formats=("mcq", "tf", "open"))
    units, skipped = select_candidates(read_samples(path), config)
    with FakeOpenAIServer(handler) as server:
        client = LLMClient(server.base_url, "gen", api_key="", cache_dir=tmp_path / "cache")
        answerer = LLMClient(server.base_url, "ans", api_key="", cache_dir=tmp_path / "cache")
        process = ReasoningSynthesizer(client, path.parent, out.parent, answerer=answerer, config=config)
        summary = run_units("reason", units, process, out, workers=2, not_candidates=skipped)
        client.close()
        answerer.close()
    # 6 units x (generate + answer) + 2 open-question judge calls.
    assert len(server.requests) == 14
    assert summary.kept == 3 and summary.dropped == {"wrong_answer": 3}
    assert summary.by_tag == {"Differential Diagnosis": {"kept": 3, "dropped": 0, "yield": 1.0},
                              "Lesion Localization": {"kept": 0, "dropped": 3, "yield": 0.0}}
    rows = read_samples(out)
    assert sorted(r.id for r in rows) == ["r1--reason-mcq", "r1--reason-open", "r1--reason-tf"]
    for row in rows:
        parts = parse_reasoning(row.messages[1]["content"])
        assert parts.think and parts.answer and not parts.warnings
        assert row.extra["source_ids"] == ["r1"] and row.tags["task"] == ["Differential Diagnosis"]
        assert row.extra["model"] == {"generate": "gen", "answer": "ans", "judge": "gen"}
        assert row.extra["prompt_version"]["reason_generate"] == "reason_generate.v1"
    mcq = next(r for r in rows if r.id.endswith("mcq"))
    assert "Options:\nA. Pneumonia" in mcq.messages[0]["content"] and mcq.extra["enhance"]["standard_answer"] == "A"
    dropped = [json.loads(line) for line in (out.parent / "reason.dropped.jsonl").read_text().splitlines()]
    assert {d["reason"] for d in dropped} == {"wrong_answer"} and all(d["source_ids"] == ["r2"] for d in dropped)


def test_bad_generation_and_missing_reasoning(tmp_path):
    path = write_input(tmp_path / "data")
    config = ReasonConfig(formats=("mcq",), tasks=("Differential Diagnosis",))
    units, _ = select_candidates(read_samples(path), config)
    replies = iter([json.dumps({"question": "Q?", "options": OPTIONS, "answer": "Z"})])

    with FakeOpenAIServer(lambda request: next(replies)) as server:
        client = LLMClient(server.base_url, "gen", api_key="")
        summary = run_units("reason", units, ReasoningSynthesizer(client, path.parent, tmp_path, config=config),
                            tmp_path / "a.jsonl")
        assert summary.dropped == {"bad_generation": 1}
        replies = iter([json.dumps({"question": "Q?", "options": OPTIONS, "answer": "A"}), "A"])
        summary = run_units("reason", units, ReasoningSynthesizer(client, path.parent, tmp_path, config=config),
                            tmp_path / "b.jsonl")
        assert summary.dropped == {"no_reasoning": 1}
        client.close()

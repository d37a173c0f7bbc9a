"""Dialogue de-identification rewrite against the local fake OpenAI-compatible server."""

from __future__ import annotations

import json

from citrusv.data.jsonl import read_samples, write_samples
from citrusv.enhance import (
    DialogueDeidentifier,
    medical_quantities,
    run_units,
    select_dialogues,
)
from citrusv.llm import LLMClient
from citrusv.llm.fake_server import FakeOpenAIServer, last_user_text


def dialogue(i, user, assistant):
    return {"id": f"d{i}", "tags": {"task": ["Treatment Generation"]},
            "messages": [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]}


ROWS = [
    dialogue(1, "医生你好，我是张先生，手机13812345678，最近咳嗽三天，体温38.5℃。", "建议服用阿莫西林500毫克，每日3次。"),
    dialogue(2, "Hi, I'm Mr. John Smith, call me at 555-123-4567. I have had a headache for 2 days.",
             "Take ibuprofen 400 mg."),
    dialogue(3, "My name is Mr. Lee, potassium 3.2 mmol/L, is that low?", "Yes, below 3.5-5.5 mmol/L."),
    dialogue(4, "Ms. Brown here, my knee hurts.", "Rest it."),
]
# The dialogue text in each rewrite prompt -> the rewrite.
REWRITES = {
    "张先生": [("user", "医生你好，我最近咳嗽三天，体温38.5℃。"), ("assistant", "建议服用阿莫西林500毫克，每日3次。")],
    "John Smith": [("user", "Hi, call me at 555-123-4567. I have had a headache for 2 days."),  # phone left
                   ("assistant", "Take ibuprofen 400 mg.")],
    "Mr. Lee": [("user", "Is my potassium low?"), ("assistant", "Yes, it is below normal.")],  # numbers lost
    "Ms. Brown": [("user", "My knee hurts.")],  # a turn lost
}


def handler(request):
    text = last_user_text(request)
    for needle, turns in REWRITES.items():
        if needle in text:
            return json.dumps({"messages": [{"role": r, "content": c} for r, c in turns]}, ensure_ascii=False)
    raise LookupError(text[:80])


def test_medical_quantities():
    assert medical_quantities("K 3.5-5.5 mmol/L, 500 mg bid, 38.5℃, BP 120/80 mmHg") == {
        "3.5-5.5mmol/l": 1, "500mg": 1, "38.5℃": 1, "120/80mmhg": 1}
    assert medical_quantities("call 555-123-4567") == {}


def test_deid_drops_leftover_phone_and_lost_content(tmp_path):
    write_samples(ROWS, tmp_path / "in.jsonl")
    units, skipped = select_dialogues(read_samples(tmp_path / "in.jsonl"))
    out = tmp_path / "out" / "deid.jsonl"
    with FakeOpenAIServer(handler) as server:
        client = LLMClient(server.base_url, "rewriter", api_key="")
        summary = run_units("deid-dialogue", units, DialogueDeidentifier(client), out, not_candidates=skipped)
        client.close()
    assert len(server.requests) == 4
    assert summary.kept == 1
    assert summary.dropped == {"phi_remaining": 1, "medical_content_lost": 1, "structure_changed": 1}
    (row,) = read_samples(out)  # validates against the sample schema
    assert row.id == "d1" and "13812345678" not in json.dumps(row.to_dict(), ensure_ascii=False)
    assert row.extra["enhance"]["phi_before"] == {"NAME": 1, "PHONE": 1}
    assert row.extra["prompt_version"] == {"deid": "deid_rewrite.v1"} and row.extra["model"] == {"deid": "rewriter"}
    assert row.extra["source_ids"] == ["d1"] and row.tags == {"task": ["Treatment Generation"]}
    dropped = {d["id"]: d for d in map(json.loads, (out.parent / "deid.dropped.jsonl").read_text().splitlines())}
    assert dropped["d2"]["reason"] == "phi_remaining" and dropped["d2"]["detail"] == "PHONE×1"
    assert "555" not in json.dumps(dropped)  # the drop log names kinds, not the PHI itself
    assert dropped["d3"]["reason"] == "medical_content_lost" and "3.2mmol/l" in dropped["d3"]["detail"]
    assert dropped["d4"]["reason"] == "structure_changed"


def test_select_dialogues_skips_non_dialogues():
    from citrusv.data.schema import parse_sample

    rows = [parse_sample({"id": "a", "messages": [{"role": "user", "content": "hi"}]}),
            parse_sample({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]})]
    units, skipped = select_dialogues(rows)
    assert units == [] and skipped == {"not_dialogue": 1, "no_id": 1}


def test_endpoint_errors_are_not_recorded_and_retried_on_rerun(tmp_path):
    from citrusv.llm.fake_server import FakeReply

    write_samples(ROWS[:2], tmp_path / "in.jsonl")
    units, _ = select_dialogues(read_samples(tmp_path / "in.jsonl"))
    out = tmp_path / "deid.jsonl"
    with FakeOpenAIServer(FakeReply.error(400, "bad request")) as server:
        client = LLMClient(server.base_url, "rewriter", api_key="")
        summary = run_units("deid-dialogue", units, DialogueDeidentifier(client), out)
        client.close()
    assert summary.errors == 2 and summary.kept == 0 and summary.dropped == {}
    with FakeOpenAIServer(handler) as server:
        client = LLMClient(server.base_url, "rewriter", api_key="")
        summary = run_units("deid-dialogue", units, DialogueDeidentifier(client), out)
        client.close()
    assert summary.skipped_done == 0 and summary.kept == 1 and summary.dropped == {"phi_remaining": 1}

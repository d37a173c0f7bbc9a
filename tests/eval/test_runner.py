"""Prediction files, runners (endpoint and a scripted answerer), the LLM judge and result tables."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from citrusv.eval.judge import make_llm_judge
from citrusv.eval.metrics.base import JudgeError, judge_many
from citrusv.eval.predictions import PredictionWriter, read_predictions
from citrusv.eval.report import write_reports
from citrusv.eval.results import BenchmarkScore, load_scores
from citrusv.eval.runner import Answer, EndpointAnswerer, run_benchmark
from citrusv.eval.types import EvalItem
from citrusv.llm import LLMClient
from citrusv.llm.fake_server import FakeOpenAIServer, FakeReply, decode_data_url, image_urls, last_user_text


def _items(n=5, family="mcq", images=()):
    return [EvalItem(id=f"q{i}", benchmark="medqa_usmle", family=family, question=f"question {i}",
                     prompt=f"<image>\nQuestion: question {i}", answer="A", images=list(images),
                     options={"A": "x", "B": "y"}) for i in range(n)]


class ScriptedAnswerer:
    name = "scripted"

    def __init__(self, fail_ids=(), crash_after=None):
        self.fail_ids, self.crash_after, self.calls = set(fail_ids), crash_after, []

    def answer(self, items):
        self.calls.append([i.id for i in items])
        if self.crash_after is not None and len(self.calls) > self.crash_after:
            raise KeyboardInterrupt  # a killed run
        return [Answer(error="boom") if i.id in self.fail_ids else Answer(text=f"A for {i.id}") for i in items]


def test_run_is_resumable_after_a_crash_and_retries_failures(tmp_path):
    path = tmp_path / "p.jsonl"
    items = _items(5)
    with pytest.raises(KeyboardInterrupt):
        run_benchmark(ScriptedAnswerer(fail_ids={"q1"}, crash_after=1), items, path, batch_size=2, progress=False)
    with open(path, "a") as handle:
        handle.write('{"id": "q2", "predi')  # half-written line of the killed process
    second = ScriptedAnswerer()
    summary = run_benchmark(second, items, path, batch_size=2, progress=False)
    assert summary.skipped == 1 and summary.answered == 4 and summary.failed == 0  # q0 kept; q1 retried
    assert sorted(i for call in second.calls for i in call) == ["q1", "q2", "q3", "q4"]
    rows = read_predictions(path)  # the partial line was cut: the file parses cleanly
    assert sorted(r["id"] for r in rows) == [f"q{i}" for i in range(5)]
    assert all(not r.get("error") for r in rows)
    assert rows[0]["prediction"].startswith("A for") and rows[0]["model"] == "scripted"
    third = ScriptedAnswerer()
    assert run_benchmark(third, items, path, progress=False).skipped == 5 and third.calls == []


def test_read_predictions_reports_bad_lines(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text('{"id": "a", "prediction": "x"}\nnot json\n[1]\n{"prediction": "no id"}\n')
    errors: list[str] = []
    assert [r["id"] for r in read_predictions(path, errors)] == ["a"]
    assert len(errors) == 3 and "line 2" in errors[0]
    with pytest.raises(ValueError, match="line 2"):
        read_predictions(path)


def test_prediction_writer_finished_ids(tmp_path):
    with PredictionWriter(tmp_path / "p.jsonl") as writer:
        writer.write([{"id": "a"}, {"id": "b", "error": "x"}])
        assert writer.finished == {"a"}


def test_endpoint_answerer_sends_images_and_system_prompt(tmp_path):
    image = tmp_path / "x.png"
    Image.fromarray(np.full((12, 10, 3), 200, np.uint8)).save(image)
    items = _items(3, images=[str(image)])
    items[1].system_prompt = "你是医学文档解析专家"
    items[2].images = [str(tmp_path / "missing.png")]

    def handler(request):
        if "question 0" in last_user_text(request):
            return FakeReply.error(400, "bad request")
        return "B"

    with FakeOpenAIServer(handler) as server:
        client = LLMClient(server.base_url, "served", backoff_base=0.0, max_retries=1)
        answers = EndpointAnswerer(client).answer(items)
        requests = server.requests
    assert answers[0].error and "400" in answers[0].error  # no retry on 400; error kept per item
    assert answers[1].text == "B" and answers[1].error is None
    assert answers[2].error and "missing.png" in answers[2].error  # unreadable image: that item only
    assert len(requests) == 2  # one 400, one answer (the missing image never left the machine)
    sent = next(r for r in requests if "question 1" in last_user_text(r))
    assert sent["messages"][0] == {"role": "system", "content": "你是医学文档解析专家"}
    assert "<image>" not in last_user_text(sent)
    mime, data = decode_data_url(image_urls(sent)[0])
    assert mime == "image/png" and Image.open(__import__("io").BytesIO(data)).size == (10, 12)
    assert sent["temperature"] == 0.0 and sent["max_tokens"] == 8192 and sent["seed"] == 42


def test_llm_judge_caches_verdicts_and_reports_failures(tmp_path):
    replies = {"ok": "<judge>0</judge>"}

    def handler(request):
        text = last_user_text(request)
        return replies["ok"] if "fine" in text else FakeReply.error(503, "overloaded")

    with FakeOpenAIServer(handler) as server:
        judge = make_llm_judge(server.base_url, "gpt-4.1", cache_dir=tmp_path / "cache", max_retries=1,
                               backoff_base=0.0)
        assert judge("fine 1") == "<judge>0</judge>"
        with pytest.raises(JudgeError):
            judge("broken")
        replies_many = judge_many(judge, ["fine 1", "fine 2", "broken"])
        assert replies_many[:2] == ["<judge>0</judge>"] * 2 and isinstance(replies_many[2], JudgeError)
        bodies = [r for r in server.requests if "fine" in last_user_text(r)]
    assert len(bodies) == 2  # 'fine 1' answered from the disk cache the second time
    assert bodies[0]["temperature"] == 0.5 and bodies[0]["max_tokens"] == 2048


def _score(model, bench, title, capability, family, value, **kw):
    return BenchmarkScore(benchmark=bench, title=title, capability=capability, family=family, model=model,
                          score=value, metric="accuracy", **kw)


def test_reports_paper_layout_average_footnotes_breakdowns_and_chart(tmp_path):
    scores = [
        _score("m1", "vqa_rad", "VQA-RAD", "medical_vqa", "vqa", 60.0, comparable=False,
               notes=["scored without an LLM judge"]),
        _score("m1", "slake", "SLAKE", "medical_vqa", "vqa", 80.0),
        _score("m2", "vqa_rad", "VQA-RAD", "medical_vqa", "vqa", 70.0),
        _score("m1", "chexpert_plus", "CheXpert Plus", "report", "report", 30.0,
               metrics={"rouge_l": 30.0, "cider": 90.5, "ratescore": None}),
        _score("m1", "mecovqa_g_plus", "MeCoVQA-G+", "grounding", "segmentation", 50.0,
               by_tag={"modality": {"CT": {"mean": 40.0, "count": 2}, "MR": {"mean": 60.0, "count": 1}}}),
    ]
    for s in scores:
        s.save(tmp_path / "runs" / s.model / f"{s.benchmark}.score.json")
    loaded = load_scores(tmp_path / "runs")
    assert len(loaded) == 5 and loaded[0].to_dict() == next(s for s in scores if s.model == "m1" and s.benchmark == loaded[0].benchmark).to_dict()
    written = write_reports(loaded, tmp_path / "tables")
    vqa = (tmp_path / "tables" / "medical_vqa.md").read_text()
    header = next(line for line in vqa.splitlines() if line.startswith("| Model"))
    assert header.split("|")[2].strip() == "VQA-RAD" and "Avg." in header
    assert "| m1 | 60.00* | 80.00 | 70.00 |" in vqa  # average of a complete row
    assert "| m2 | 70.00 | – | – |" in vqa  # incomplete row: no average
    assert "scored without an LLM judge" in vqa
    report = (tmp_path / "tables" / "report.md").read_text()
    assert "CheXpert Plus ROUGE-L | CheXpert Plus CIDEr | CheXpert Plus RaTE |" in report
    assert "| m1 | 30.00 | 90.50 | – |" in report and "Avg." not in report
    csv_text = (tmp_path / "tables" / "medical_vqa.csv").read_text().splitlines()
    assert csv_text[1].startswith("m1,60.00,80.00")  # no footnote marks in CSV
    breakdown = (tmp_path / "tables" / "breakdowns" / "mecovqa_g_plus.modality.md").read_text()
    assert "| m1 | 40.00 (n=2) | 60.00 (n=1) |" in breakdown
    png = tmp_path / "tables" / "medical_vqa.png"
    assert png in written and Image.open(png).size[0] > 100
    json.loads((tmp_path / "runs" / "m1" / "vqa_rad.score.json").read_text())

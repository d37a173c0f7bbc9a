"""Dual parsing, agreement, Easy / Hard buckets, QA rows and MedDocBench export."""

from __future__ import annotations

import json
import random

import pytest

from citrusv.data.schema import parse_sample
from citrusv.eval.benchmarks import load_benchmark
from citrusv.eval.metrics.meddoc_full import score_full_parse
from citrusv.llm import LLMClient
from citrusv.llm.fake_server import (
    FakeOpenAIServer,
    decode_data_url,
    image_urls,
    last_user_text,
)
from citrusv.synth.docs.artefacts import Artefacts, apply_artefacts
from citrusv.synth.docs.consensus import (
    LLMEquivalenceJudge,
    OracleParser,
    VLMTableParser,
    compare_tables,
    consensus,
    entries_to_markdown,
)
from citrusv.synth.docs.export import GeneralQAItem, LabDoc, export_meddocbench
from citrusv.synth.docs.normalize import abnormality
from citrusv.synth.docs.qa import (
    abnormal_items,
    abnormality_qa,
    downsample_by_type,
    full_parse_sample,
    simple_qa,
    template_general_qa,
)
from citrusv.synth.docs.render import (
    random_general_document,
    random_lab_report,
    render_lab_report,
)

ROW = {"entryname": "白细胞计数", "result": "5.2", "unit": "10^9/L", "reference": "3.5-9.5"}


def test_oracle_parse_reproduces_truth_exactly():
    """Oracle parser -> Markdown -> strict parser: F1 = 1.0 on every field, on the capture and after
    geometry normalisation."""
    rng = random.Random(0)
    for i in range(6):
        report = random_lab_report(rng, "zh" if i % 2 else "en", doc_id=f"d{i}")
        truth = [e.table_row() for e in report.entries]
        image = apply_artefacts(render_lab_report(report, width=600), Artefacts(rotation=90 * (i % 4), skew_deg=3))
        oracle = OracleParser(lambda _image, truth=truth: truth)
        result = consensus(image, oracle, oracle)
        assert result.bucket == "easy" and result.entries == truth
        score = score_full_parse(entries_to_markdown(result.entries), truth, strict=True)
        assert score.score == 100.0 and all(f.f1 == 1.0 for f in score.fields.values())


def test_compare_tables_rules_and_judge():
    variant = {"entryname": "WBC", "result": "5,20", "unit": "×10^9/L", "reference": "3.5～9.5"}
    assert compare_tables([ROW], [variant]).exact
    other = {**ROW, "result": "5.3"}
    disagreement = compare_tables([ROW], [other])
    assert not disagreement.agreed and disagreement.differences[0]["field"] == "result"
    assert compare_tables([ROW], [other], judge=lambda *args: True).agreed
    missing = compare_tables([ROW], [ROW, {**ROW, "entryname": "血红蛋白"}])
    assert not missing.agreed and missing.missing_a == ["hgb"]
    assert not compare_tables([], []).agreed


class _PlannedParsers:
    """Routes fake VLM requests by model name. Parser A always reads the truth; parser B's reading
    depends on the planned case and on whether the page it sees is upright (portrait)."""

    def __init__(self):
        self.truth: list[dict[str, str]] = []
        self.case = "agree"

    def __call__(self, request):
        from io import BytesIO

        from PIL import Image

        model = request["model"]
        if model == "judge":
            text = last_user_text(request)
            return json.dumps({"equivalent": "trace" in text and "微量" in text})
        _, data = decode_data_url(image_urls(request)[0])
        width, height = Image.open(BytesIO(data)).size
        upright = height > width
        rows = [dict(r) for r in self.truth]
        if model == "parser-b":
            if self.case == "notation":  # same content, other notation: exact after the rules
                rows[0]["result"] = rows[0]["result"].replace(".", ",") + " ↑"
                rows[0]["reference"] = rows[0]["reference"].replace("-", "～")
            elif self.case == "hard" and not upright:  # misreads a rotated page
                rows = rows[:-1]
            elif self.case == "semantic":
                rows[0]["result"] = "trace"
            elif self.case == "reject":
                rows[0]["result"] = "999"
        return entries_to_markdown([{**r, "result": "微量"} if self.case == "semantic" and model == "parser-a" and i == 0
                                    else r for i, r in enumerate(rows)])


@pytest.mark.parametrize("case, bucket, judge_calls", [
    ("agree", "easy", 0), ("notation", "easy", 0), ("hard", "hard", 0), ("semantic", "easy", 1), ("reject", "rejected", 2),
])
def test_consensus_with_two_fake_vlm_endpoints(case, bucket, judge_calls):
    plan = _PlannedParsers()
    rng = random.Random(4)
    report = random_lab_report(rng, "en", n_entries=5)
    plan.truth = [{**e.table_row(), "result": e.result if e.result[0].isdigit() else "5.5",
                   "reference": e.reference if e.result[0].isdigit() else "1-9"} for e in report.entries]
    plan.case = case
    image = apply_artefacts(render_lab_report(report, width=500), Artefacts(rotation=90, skew_deg=2))
    with FakeOpenAIServer(plan) as server:
        a = VLMTableParser(LLMClient(server.base_url, "parser-a", max_retries=0), "a")
        b = VLMTableParser(LLMClient(server.base_url, "parser-b", max_retries=0), "b")
        judge = LLMEquivalenceJudge(LLMClient(server.base_url, "judge", max_retries=0))
        result = consensus(image, a, b, judge=judge)
    assert result.bucket == bucket
    assert judge.calls == judge_calls
    if bucket == "hard":
        assert result.before.missing_b and result.after.exact
        assert [s["name"] for s in result.geometry] == ["perspective", "orientation", "dewarp"]
        assert result.geometry[1]["params"]["orientation"] == 90
        assert result.entries == plan.truth
    if bucket == "rejected":
        assert result.entries == [] and result.image is None


def test_qa_rows_follow_the_schema_and_the_numbers():
    rng = random.Random(2)
    report = random_lab_report(rng, "zh", n_entries=10, p_abnormal=0.5)
    entries = [e.table_row() for e in report.entries]
    rows = [full_parse_sample("d0", "img/d0.png", entries, bucket="hard"),
            *simple_qa("d0", "img/d0.png", entries, rng, per_doc=5),
            *abnormality_qa("d0", "img/d0.png", entries, rng, per_doc=3)]
    for row in rows:
        parse_sample(row)
    assert rows[0]["tags"]["bucket"] == ["hard"]
    assert {r["tags"]["field"][0] for r in rows[1:6]} <= {"result_unit", "result", "unit", "reference", "entryname"}
    listing = json.loads(rows[6]["messages"][1]["content"])
    expected = [e.entryname for e in report.entries if e.status != "normal"]
    assert [item["entryname"] for item in listing] == expected
    for row in rows[7:]:
        answer = json.loads(row["messages"][1]["content"])
        assert answer["status"] == abnormality(answer["result"], answer["reference"])


def test_downsample_caps_the_largest_type():
    items = ["a"] * 60 + ["b"] * 25 + ["c"] * 5
    kept = downsample_by_type(items, lambda x: x, random.Random(0), max_share=0.5)
    counts = {t: kept.count(t) for t in "abc"}
    assert counts["c"] == 5 and counts["b"] == 25 and counts["a"] <= 0.5 * len(kept)
    with pytest.raises(ValueError):
        downsample_by_type(items, lambda x: x, random.Random(0), max_share=0.2)


def test_meddocbench_export_loads_and_scores(tmp_path):
    rng = random.Random(5)
    docs, general = [], []
    for i in range(3):
        report = random_lab_report(rng, "zh", doc_id=f"lab{i}", n_entries=6, p_abnormal=0.5)
        path = tmp_path / "src" / f"lab{i}.png"
        path.parent.mkdir(exist_ok=True)
        render_lab_report(report, width=500).save(path)
        docs.append(LabDoc(report.doc_id, path, [e.table_row() for e in report.entries]))
        doc = random_general_document(rng, "zh", doc_id=f"gen{i}")
        for qa in template_general_qa(doc):
            general.append(GeneralQAItem(doc.doc_id, path, qa["kind"], qa["question"], qa["answer"], doc.doc_type,
                                         doc.department))
    counts = export_meddocbench(tmp_path / "meddocbench", docs, general)
    assert counts["LTR_fullparsing"] == 3 and counts["GMD_complexQA"] == 3
    errors: list = []
    full = load_benchmark("meddocbench_ltr_full", tmp_path, errors=errors, image_cache_dir=tmp_path / "_c")
    for name in ("meddocbench_ltr_simple", "meddocbench_ltr_abnormal", "meddocbench_gmd_simple", "meddocbench_gmd_complex"):
        assert load_benchmark(name, tmp_path, errors=errors, image_cache_dir=tmp_path / "_c")
    assert not errors
    by_id = {item.id: item for item in full}
    for doc in docs:
        score = score_full_parse(entries_to_markdown(doc.entries), by_id[doc.doc_id].answer, strict=True)
        assert score.score == 100.0
    assert abnormal_items(docs[0].entries) is not None


def test_general_qa_keeps_only_agreed_answers():
    """An LLM writes questions; two VLMs answer; the judge keeps the pairs that agree."""
    from PIL import Image

    from citrusv.synth.docs.qa import general_qa_consensus

    answers = {"vlm-a": {"What is the drug?": "Amoxicillin", "What is the dosage?": "0.5 g tid",
                         "Summarise the advice.": "Follow up in two weeks."},
               "vlm-b": {"What is the drug?": "amoxicillin", "What is the dosage?": "0.25 g bid",
                         "Summarise the advice.": "Return for follow-up after 2 weeks."}}

    def handler(request):
        text = last_user_text(request)
        if request["model"] == "writer":
            return json.dumps({"simple": ["What is the drug?", "What is the dosage?"], "complex": ["Summarise the advice."]})
        if request["model"] == "judge":
            return json.dumps({"agree": "0.25 g bid" not in text})
        return answers[request["model"]][text]

    with FakeOpenAIServer(handler) as server:
        def client(model):
            return LLMClient(server.base_url, model, max_retries=0)

        kept = general_qa_consensus(Image.new("RGB", (64, 64), "white"), "prescription", client("writer"),
                                    [client("vlm-a"), client("vlm-b")], client("judge"))
    assert [(k["kind"], k["question"], k["answer"]) for k in kept] == [
        ("simple", "What is the drug?", "Amoxicillin"), ("complex", "Summarise the advice.", "Follow up in two weeks.")]
    with pytest.raises(ValueError, match="two answering"):
        general_qa_consensus(None, "x", None, [None], None)

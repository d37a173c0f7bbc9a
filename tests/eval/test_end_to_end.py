"""A tiny random Citrus-V through the whole evaluation: fixture benchmarks → runner → scores → tables."""

from __future__ import annotations

import json

import pytest
from benchmark_fixtures import BUILDERS, IMAGE_SIZE

from citrusv.cli import main
from citrusv.eval.predictions import read_predictions

BENCHMARKS = ["vqa_rad", "medqa_usmle", "pmc_vqa", "chexpert_plus", "meddocbench_ltr_simple",
              "mecovqa_g_plus", "medsam2_detection"]


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("benchmarks")
    for name in BENCHMARKS:
        BUILDERS[name](root)
    return root


def test_eval_run_scores_writes_tables_and_resumes(native_checkpoint, data_root, tmp_path, capsys):
    out = tmp_path / "out"
    args = ["eval", "run", "--model", str(native_checkpoint), "--name", "tiny", "--benchmarks",
            ",".join(BENCHMARKS), "--data-root", str(data_root), "--out", str(out), "--max-new-tokens", "4",
            "--batch-size", "2", "--device", "cpu"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    model_dir = out / "tiny"
    for name in BENCHMARKS:
        score = json.loads((model_dir / f"{name}.score.json").read_text())
        assert 0.0 <= score["score"] <= 100.0, name
        assert score["count"] >= 1 and score["model"] == "tiny"
        rows = read_predictions(model_dir / f"{name}.predictions.jsonl")
        assert rows and all(not r.get("error") for r in rows), name
        assert len(score["items"]) >= len(rows) - len(score["errors"])
        # Each fixture has one bad row: reported, not fatal.
        assert "row" in (model_dir / f"{name}.load_errors.txt").read_text()
    seg_rows = read_predictions(model_dir / "mecovqa_g_plus.predictions.jsonl")
    assert all(isinstance(r["prediction_masks"], list) and r["image_size"] == [IMAGE_SIZE[1], IMAGE_SIZE[0]] for r in seg_rows)
    vqa = json.loads((model_dir / "vqa_rad.score.json").read_text())
    assert vqa["comparable"] is False  # open answers without a judge
    assert "VQA-RAD" in printed and "not comparable" in printed
    tables = out / "tables"
    for capability in ("medical_vqa", "text_qa", "document", "report", "grounding"):
        assert (tables / f"{capability}.md").read_text().startswith("# ")
        assert (tables / f"{capability}.csv").is_file() and (tables / f"{capability}.png").is_file()
    assert "| tiny |" in (tables / "grounding.md").read_text()
    assert (tables / "breakdowns" / "mecovqa_g_plus.modality.md").is_file()

    # A rerun answers nothing new (every id is finished) and rescores to the same numbers.
    before = {n: (model_dir / f"{n}.predictions.jsonl").read_text() for n in BENCHMARKS}
    assert main(args) == 0
    assert {n: (model_dir / f"{n}.predictions.jsonl").read_text() for n in BENCHMARKS} == before

    # Offline re-scoring of the same predictions gives the same overall score.
    output = tmp_path / "rescored.json"
    assert main(["eval", "score", "--benchmark", "medqa_usmle", "--predictions",
                 str(model_dir / "medqa_usmle.predictions.jsonl"), "--output", str(output)]) == 0
    rescored = json.loads(output.read_text())
    assert rescored["score"] == json.loads((model_dir / "medqa_usmle.score.json").read_text())["score"]
    assert all({"id", "score"} <= set(item) for item in rescored["items"])


def test_eval_cli_errors_are_one_clear_line(tmp_path, capsys):
    assert main(["eval", "run", "--endpoint", "http://127.0.0.1:9/v1", "--benchmarks", "nope",
                 "--data-root", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "unknown benchmark(s) nope" in capsys.readouterr().err
    assert main(["eval", "run", "--endpoint", "http://127.0.0.1:9/v1", "--benchmarks", "vqa_rad",
                 "--data-root", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "--served-model" in capsys.readouterr().err
    assert main(["eval", "score", "--benchmark", "vqa_rad", "--predictions", str(tmp_path / "none.jsonl"),
                 "--output", str(tmp_path / "o.json")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_eval_list_checks_files(tmp_path, capsys, data_root):
    assert main(["eval", "list", "--data-root", str(data_root)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith("vqa_rad") and line.endswith("ok") for line in lines)
    assert any(line.startswith("slake") and "MISSING" in line for line in lines)


def test_eval_score_with_a_judge_endpoint(tmp_path, capsys):
    from citrusv.llm.fake_server import FakeOpenAIServer, last_user_text

    rows = [
        {"id": "1", "question": "Which organ?", "answer": "Liver", "answer_type": "open", "prediction": "hepar"},
        {"id": "2", "question": "Is it CT?", "answer": "Yes", "answer_type": "closed", "prediction": "yes"},
    ]
    predictions = tmp_path / "slake.jsonl"
    predictions.write_text("".join(json.dumps(r) + "\n" for r in rows) + "{broken\n")

    def handler(request):
        return "<judge>0</judge>" if "hepar" in last_user_text(request) else "<judge>1</judge>"

    output = tmp_path / "slake.json"
    with FakeOpenAIServer(handler) as server:
        args = ["eval", "score", "--benchmark", "slake", "--predictions", str(predictions), "--output", str(output),
                "--judge-endpoint", server.base_url, "--judge-api-key", ""]
        assert main(args) == 0
        assert main(args) == 0  # second time from the verdict cache
        calls = len(server.requests)
    assert calls == 2  # SLAKE: every item judged once, then cached
    score = json.loads(output.read_text())
    assert score["score"] == 50.0 and score["comparable"] is True
    assert [i["method"] for i in score["items"]] == ["judge", "judge"]
    assert any("line 3" in e for e in score["errors"])  # the broken line is reported, the rest scored
    assert (tmp_path / "judge-cache").is_dir()

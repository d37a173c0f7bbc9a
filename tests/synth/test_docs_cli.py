"""``citrusv synth docs`` end to end on a tiny corpus (oracle and fake-endpoint parsers)."""

from __future__ import annotations

import argparse
import json

from citrusv.cli import synth
from citrusv.data.jsonl import read_samples
from citrusv.eval.benchmarks import load_benchmark
from citrusv.llm.fake_server import FakeOpenAIServer
from citrusv.synth.docs.consensus import entries_to_markdown


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="citrusv")
    commands = parser.add_subparsers(dest="command", required=True)
    synth.add_parser(commands)
    args = parser.parse_args(argv)
    return args.run(args)


def test_render_normalize_parse_build(tmp_path, capsys):
    corpus = tmp_path / "corpus"
    assert _run(["synth", "docs", "render", "--out", str(corpus), "--n", "4", "--kinds", "lab,general",
                 "--artefacts", "rotate", "--width", "500", "--seed", "1"]) == 0
    assert json.loads(capsys.readouterr().out) == {"rendered": 4, "lab": 2, "general": 2}
    assert _run(["synth", "docs", "normalize", "--input", str(corpus / "manifest.jsonl"), "--out", str(tmp_path / "norm")]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["orientation_accuracy"] == 1.0 and summary["max_skew_residual_deg"] <= 1.0
    assert _run(["synth", "docs", "parse", "--manifest", str(corpus / "manifest.jsonl"), "--out", str(tmp_path / "parsed"),
                 "--oracle"]) == 0
    assert json.loads(capsys.readouterr().out) == {"documents": 4, "easy": 2, "general": 2}
    out = tmp_path / "samples.jsonl"
    assert _run(["synth", "docs", "build-qa", "--consensus", str(tmp_path / "parsed" / "consensus.jsonl"),
                 "--out", str(out), "--meddoc-out", str(tmp_path / "meddocbench")]) == 0
    counts = json.loads(capsys.readouterr().out)
    samples = read_samples(out)
    assert len(samples) == counts["samples"] and counts["meddoc_LTR_fullparsing"] == 2
    assert load_benchmark("meddocbench_ltr_full", tmp_path, image_cache_dir=tmp_path / "_c")
    assert load_benchmark("meddocbench_gmd_simple", tmp_path, image_cache_dir=tmp_path / "_c")


def test_parse_with_endpoints_resumes(tmp_path, capsys):
    corpus = tmp_path / "corpus"
    _run(["synth", "docs", "render", "--out", str(corpus), "--n", "2", "--artefacts", "none", "--width", "500"])
    capsys.readouterr()
    truth = {}
    for line in (corpus / "manifest.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        truth[row["id"]] = row["doc"]["entries"]
    tables = [entries_to_markdown(entries) for entries in truth.values()]
    calls = []

    def handler(request):
        calls.append(request["model"])
        return tables[(len(calls) - 1) // 2]  # both parsers read the same document in turn

    argv = ["synth", "docs", "parse", "--manifest", str(corpus / "manifest.jsonl"), "--out", str(tmp_path / "p")]
    with FakeOpenAIServer(handler) as server:
        argv += ["--parser-a", server.base_url, "--model-a", "vlm-a", "--parser-b", server.base_url, "--model-b", "vlm-b"]
        assert _run(argv) == 0
        assert json.loads(capsys.readouterr().out) == {"documents": 2, "easy": 2}
        assert _run(argv) == 0  # rerun: everything already there
        assert json.loads(capsys.readouterr().out) == {"documents": 2, "skipped": 2}
    assert calls == ["vlm-a", "vlm-b", "vlm-a", "vlm-b"]


def test_parse_needs_one_source(tmp_path):
    import pytest

    with pytest.raises(ValueError, match="either --oracle"):
        _run(["synth", "docs", "parse", "--manifest", str(tmp_path / "m.jsonl"), "--out", str(tmp_path)])

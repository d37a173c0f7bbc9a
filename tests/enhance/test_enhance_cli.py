"""``citrusv enhance`` through its argparse parser: outputs, summary, resume after a kill."""

from __future__ import annotations

import argparse
import json

import pytest
from test_consolidate import handler as consolidate_handler
from test_consolidate import write_input as write_consolidate_input
from test_deid import ROWS
from test_deid import handler as deid_handler

from citrusv.cli import enhance
from citrusv.data.jsonl import read_samples, write_samples
from citrusv.enhance import DialogueDeidentifier
from citrusv.llm.fake_server import FakeOpenAIServer


def cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="citrusv")
    enhance.add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.run(args)


def test_deid_cli_resumes_after_a_kill(tmp_path, monkeypatch, capsys):
    write_samples(ROWS, tmp_path / "in.jsonl")
    out = tmp_path / "out" / "deid.jsonl"
    original = DialogueDeidentifier.__call__
    calls = []

    def dies_on_third(self, unit):
        calls.append(unit.id)
        if len(calls) == 3:
            raise KeyboardInterrupt  # the process is killed while working on the third row
        return original(self, unit)

    with FakeOpenAIServer(deid_handler) as server:
        argv = ["enhance", "deid-dialogue", str(tmp_path / "in.jsonl"), str(out), "--endpoint", server.base_url,
                "--model", "rewriter", "--no-cache", "--workers", "1", "--api-key-env", ""]
        monkeypatch.setattr(DialogueDeidentifier, "__call__", dies_on_third)
        with pytest.raises(KeyboardInterrupt):
            cli(argv)
        assert len(server.requests) == 2
        with open(out, "a", encoding="utf-8") as handle:
            handle.write('{"id": "d3", "messa')  # a line cut off by the kill
        monkeypatch.setattr(DialogueDeidentifier, "__call__", original)
        assert cli(argv) == 0
        assert len(server.requests) == 4  # only d3 and d4 were asked again
    printed = capsys.readouterr().out
    assert "already done 2" in printed and "wrote" in printed
    assert [r.id for r in read_samples(out)] == ["d1"]
    summary = json.loads((out.parent / "deid.summary.json").read_text())
    assert summary["skipped_done"] == 2 and summary["total_kept"] == 1
    assert summary["total_dropped"] == {"phi_remaining": 1, "medical_content_lost": 1, "structure_changed": 1}
    assert summary["usage"]["rewriter"]["calls"] == 2
    assert (out.parent / "deid.usage.jsonl").exists()


def test_consolidate_cli_with_cache(tmp_path, capsys):
    path = write_consolidate_input(tmp_path / "data")
    out = tmp_path / "out" / "cons.jsonl"
    with FakeOpenAIServer(consolidate_handler()) as server:
        argv = ["enhance", "consolidate", str(path), str(out), "--endpoint", server.base_url, "--model", "vlm",
                "--api-key-env", ""]
        assert cli(argv) == 0
        assert len(server.requests) == 3
        out.unlink()
        (out.parent / "cons.dropped.jsonl").unlink()
        assert cli(argv) == 0  # redo from scratch: the cache answers everything
        assert len(server.requests) == 3
    (row,) = read_samples(out)
    assert row.extra["source_ids"] == ["r1", "r2", "r3", "r4"]
    assert (out.parent / "llm_cache").is_dir()
    assert "fact_missing 1" in capsys.readouterr().out


def test_cli_rejects_missing_input(tmp_path):
    with pytest.raises(FileNotFoundError):
        cli(["enhance", "reason", str(tmp_path / "nope.jsonl"), str(tmp_path / "o.jsonl"), "--endpoint",
             "http://127.0.0.1:9/v1", "--model", "m"])

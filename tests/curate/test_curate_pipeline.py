"""The pipeline end to end: mixed sources, every row accounted for, resume after crashes with no
duplicated and no lost rows, spawn workers equal to in-process, report files, the CLI."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from citrusv.curate import pipeline
from citrusv.curate.config import CurationConfig, load_config
from citrusv.curate.pipeline import read_manifest, run_curation
from citrusv.curate.testing import write_series

ANSWERS = [f"Finding {i}: the {organ} shows a {size} millimetre {kind} lesion with {edge} margins and no {other}."
           for i, (organ, size, kind, edge, other) in enumerate(
               [("liver", 12, "hypodense", "smooth", "ascites"), ("kidney", 30, "cystic", "sharp", "hydronephrosis"),
                ("lung", 8, "solid", "spiculated", "effusion"), ("spleen", 15, "hyperdense", "lobulated", "infarct"),
                ("pancreas", 22, "hypoenhancing", "ill-defined", "duct dilation"),
                ("thyroid", 9, "calcified", "irregular", "lymphadenopathy")])]


def _make_sources(root: Path) -> dict:
    rng = np.random.default_rng(0)
    rows, expected_ids = [], []
    for i in range(24):  # 6 distinct QA texts, each 4 times (exact, case noise, near)
        answer = ANSWERS[i % 6]
        if i >= 12:
            answer = answer.upper()
        if i >= 18:
            answer = answer.replace("margins", "borders")
        rows.append({"id": f"qa{i}", "messages": [{"role": "user", "content": "What does the CT show? MRN 1234567."},
                                                  {"role": "assistant", "content": answer}]})
    rows.append({"id": "short", "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "ok"}]})
    rows.append({"id": "url", "messages": [{"role": "user", "content": "Read https://example.com and answer the question."},
                                           {"role": "assistant", "content": ANSWERS[0] + " Extra words to differ here."}]})
    rows.append({"id": "bad", "messages": "not a list"})
    (root / "qa.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n{broken json\n")
    expected_ids += [r["id"] for r in rows] + ["qa:28"]
    images = root / "images"
    images.mkdir()
    for i in range(6):
        pixels = (rng.random((96, 96)) * 255).astype(np.uint8)
        Image.fromarray(pixels).save(images / f"img{i}.png")
        Image.fromarray(pixels).save(images / f"img{i}_dup.png")
        (images / f"img{i}.txt").write_text(ANSWERS[i])
        (images / f"img{i}_dup.txt").write_text(ANSWERS[i] if i < 3 else ANSWERS[(i + 1) % 6])  # same image, other report for i >= 3
        expected_ids += [f"images/img{i}.png", f"images/img{i}_dup.png"]
    Image.fromarray(np.zeros((20, 20), np.uint8)).save(images / "tiny.png")
    expected_ids.append("images/tiny.png")
    dicom = root / "dicom"
    write_series(dicom / "good", patient_id="P1", study_uid="1.2.826.0.1.1", series_uid="1.2.826.0.1.1.1")
    write_series(dicom / "bad", patient_id="P2", series_uid="1.2.826.0.1.2.1", gaps_mm=[2.5, 7.5, 2.5])
    return {"sources": [str(root / "qa.jsonl"), str(images), str(dicom)], "n_rows": len(expected_ids), "ids": expected_ids,
            "key": str(root.parent / "deid.key")}


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    root = tmp_path_factory.mktemp("sources") / "in"
    root.mkdir()
    return _make_sources(root)


def _config(sources, **kw) -> CurationConfig:
    values = {"sources": sources["sources"], "workers": 0, "shard_size": 5, "charts": False, "deid_secret_file": sources["key"],
              "filters": {"regex_rules": [{"name": "url", "pattern": "https?://"}]}}
    values.update(kw)
    return CurationConfig.from_dict(values)


def _outputs(out: Path):
    kept = [line for p in sorted((out / "shards").glob("*.jsonl")) for line in p.read_text().splitlines()]
    dropped = [line for p in sorted((out / "dropped").glob("*.jsonl")) for line in p.read_text().splitlines()]
    audit = [json.loads(line)["output"] for p in sorted((out / "audit").glob("*.jsonl")) for line in p.read_text().splitlines()]
    return kept, dropped, audit


def test_end_to_end_accounts_for_every_row(sources, tmp_path):
    out = tmp_path / "out"
    summary = run_curation(_config(sources, charts=True), out)
    kept, dropped, audit = _outputs(out)
    kept_ids = [json.loads(k)["id"] for k in kept]
    drops = [json.loads(d) for d in dropped]
    series_rows = [i for i in kept_ids if "series-" in i] + [d["id"] for d in drops if "series-" in str(d["id"])]
    folder_ids = {i for i in sources["ids"] if not i.startswith(("dicom",))}
    assert sorted(i for i in kept_ids + [d["id"] for d in drops] if "series-" not in str(i)) == sorted(folder_ids)
    assert len(series_rows) == 2 and len(set(kept_ids)) == len(kept_ids)
    by_reason = summary["dropped_by_stage"]
    assert by_reason["schema"] == {"schema": 2}
    assert by_reason["text_length"] == {"text_too_short": 1}
    assert by_reason["regex"] == {"regex:url": 1}
    assert by_reason["image_size"] == {"image_too_small": 1}
    assert by_reason["dicom"] == {"nonuniform_spacing": 1}
    # 24 QA rows = 6 texts x (original, exact dup, case dup, near dup): 6 kept
    assert by_reason["dedup"]["dup_text_exact"] + by_reason["dedup"].get("dup_text_near", 0) == 18
    # same image + same report (3) dropped; same image + other report (3) kept
    assert by_reason["dedup"]["dup_pair"] == 3
    assert summary["kept"] == 6 + 9 + 1 and summary["rows_in"] == 28 + 13 + 2
    assert summary["tags"]["modality"]["CT"] >= 7 and summary["tags"]["region"]["Abdomen"] >= 1
    assert "1234567" not in "\n".join(kept)
    assert len(audit) == 4 and all((out / "dicom" / a).exists() for a in audit)
    for name in ("report.json", "report.md", "tags.csv", "tags.png", "drops.png", "run.json", "manifest.jsonl"):
        assert (out / name).exists(), name
    assert "| dedup | dup_pair | 3 |" in (out / "report.md").read_text()
    assert "Doe" not in "\n".join(kept) and "P1" not in "\n".join(kept)


@pytest.fixture(scope="module")
def reference(sources, tmp_path_factory):
    """Outputs of one uninterrupted in-process run."""
    out = tmp_path_factory.mktemp("reference") / "out"
    run_curation(_config(sources), out)
    return _outputs(out)


def test_resume_after_crash_following_a_commit(sources, reference, tmp_path):
    out = tmp_path / "crashy"

    def crash_after_three(entry, seen=[]):  # noqa: B006 - state across calls on purpose
        seen.append(entry["shard"])
        if len(seen) == 3:
            raise KeyboardInterrupt("killed")

    with pytest.raises(KeyboardInterrupt):
        run_curation(_config(sources), out, on_commit=crash_after_three)
    assert len(read_manifest(out)) == 3
    run_curation(_config(sources), out)  # resume
    assert _outputs(out) == reference
    shards = [e["shard"] for e in read_manifest(out)]
    assert len(shards) == len(set(shards)) == len(list((out / "shards").glob("*.jsonl")))


def test_resume_after_crash_between_outputs_and_manifest(sources, reference, tmp_path, monkeypatch):
    out = tmp_path / "crashy"
    real = pipeline._append_manifest
    calls = []

    def append_then_die(out_dir, entry):
        calls.append(entry["shard"])
        if len(calls) == 4:  # shard files are written, its manifest line is not
            with open(out_dir / "manifest.jsonl", "a") as handle:
                handle.write('{"shard": "half-writ')  # a torn line
            raise OSError("disk vanished")
        real(out_dir, entry)

    monkeypatch.setattr(pipeline, "_append_manifest", append_then_die)
    with pytest.raises(OSError):
        run_curation(_config(sources), out)
    monkeypatch.setattr(pipeline, "_append_manifest", real)
    assert len(read_manifest(out)) == 3
    run_curation(_config(sources), out)
    assert _outputs(out) == reference


def test_max_shards_then_resume_and_config_guard(sources, reference, tmp_path):
    out = tmp_path / "steps"
    run_curation(_config(sources), out, max_shards=2)
    assert len(read_manifest(out)) == 2
    with pytest.raises(ValueError, match="different settings"):
        run_curation(_config(sources, shard_size=7), out)
    while len(read_manifest(out)) < 10:
        before = len(read_manifest(out))
        run_curation(_config(sources), out, max_shards=3)
        if len(read_manifest(out)) == before:
            break
    assert _outputs(out) == reference


def test_spawn_workers_match_in_process_and_resume_with_other_count(sources, reference, tmp_path):
    out = tmp_path / "parallel"
    run_curation(_config(sources, workers=2), out, max_shards=4)
    run_curation(_config(sources, workers=0), out)  # resume in-process: the worker count may change
    assert _outputs(out) == reference
    assert len(read_manifest(out)) == len({e["shard"] for e in read_manifest(out)})


def test_parquet_source(tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    import pyarrow as pa

    rows = [{"id": f"p{i}", "messages": [{"role": "user", "content": "Describe the chest radiograph please."},
                                         {"role": "assistant", "content": ANSWERS[i % 3]}]} for i in range(6)]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "data.parquet")
    summary = run_curation(CurationConfig.from_dict({"sources": [str(tmp_path / "data.parquet")], "workers": 0,
                                                      "charts": False}), tmp_path / "out")
    assert summary["rows_in"] == 6 and summary["kept"] == 3
    assert summary["tags"]["task"]["Image Description"] == 3


def test_config_file_and_errors(tmp_path):
    config = load_config(Path(__file__).parents[2] / "configs" / "curate" / "default.yaml")
    assert config.filters.min_image_pixels == 4096 and config.workers == 2 and config.filters.regex_rules
    with pytest.raises(ValueError, match="unknown key"):
        CurationConfig.from_dict({"dedupe": {}})
    with pytest.raises(ValueError, match="engine"):
        CurationConfig.from_dict({"engine": "spark"})
    with pytest.raises(FileNotFoundError):
        run_curation(CurationConfig.from_dict({"sources": [str(tmp_path / "missing.jsonl")], "workers": 0}), tmp_path / "o")


def test_cli(sources, tmp_path, capsys):
    from citrusv.cli import curate

    parser = argparse.ArgumentParser()
    curate.add_parser(parser.add_subparsers(dest="command"))
    out = tmp_path / "cli_out"
    config = tmp_path / "curate.yaml"  # the spelling: citrusv curate run CONFIG.yaml
    config.write_text("workers: 0\nshard_size: 50\ncharts: false\n")
    args = parser.parse_args(["curate", "run", str(config), "--out", str(out)]
                             + [a for s in sources["sources"] for a in ("--source", s)])
    assert args.run(args) == 0
    assert json.loads((out / "run.json").read_text())["shard_size"] == 50
    assert "rows in" in capsys.readouterr().out
    args = parser.parse_args(["curate", "report", str(out), "--no-charts"])
    assert args.run(args) == 0
    args = parser.parse_args(["curate", "qc-dicom", str(Path(sources["sources"][2]))])
    assert args.run(args) == 1  # one series rejected
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    assert sorted(x["accepted"] for x in lines) == [False, True]
    args = parser.parse_args(["curate", "deid-dicom", str(Path(sources["sources"][2]) / "good"), str(tmp_path / "deid"),
                              "--secret-file", str(tmp_path / "key")])
    assert args.run(args) == 0
    assert len((tmp_path / "deid" / "audit.jsonl").read_text().splitlines()) == 4


def test_llm_tagging_in_pipeline(tmp_path):
    from citrusv.llm.fake_server import FakeOpenAIServer

    rows = [{"id": f"x{i}", "messages": [{"role": "user", "content": f"Question {i} about this thing, please answer it."},
                                         {"role": "assistant", "content": ANSWERS[i]}]} for i in range(3)]
    (tmp_path / "x.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    with FakeOpenAIServer('{"task": "Basic", "region": "Other"}') as server:
        config = CurationConfig.from_dict({"sources": [str(tmp_path / "x.jsonl")], "workers": 0, "charts": False,
                                           "tagging": {"llm": {"base_url": server.base_url, "model": "m"}}})
        summary = run_curation(config, tmp_path / "out")
    assert summary["tags"]["task"]["Basic"] == 3 and summary["llm_untagged"] == 0
    assert summary["tags"]["region"]["Abdomen"] + summary["tags"]["region"]["Chest"] >= 2  # rules first


@pytest.mark.slow
def test_ray_engine_matches_local_and_resumes(sources, reference, tmp_path):
    """On a local Ray instance (2 CPUs): stop after 3 shards, resume on Ray, same output as local."""
    ray = pytest.importorskip("ray")
    out = tmp_path / "ray"
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)  # runs join it instead of starting one
    try:
        run_curation(_config(sources, engine="ray", workers=2), out, max_shards=3)
        assert len(read_manifest(out)) == 3
        run_curation(_config(sources, engine="ray", workers=2), out)
    finally:
        ray.shutdown()
    assert _outputs(out) == reference


def test_sigkill_then_resume(sources, reference, tmp_path):
    """A real kill -9 right after the second commit (no cleanup runs), then a resume."""
    import subprocess
    import sys

    out = tmp_path / "killed"
    config = json.dumps(_config(sources).to_dict())
    script = ("import json, os, signal, sys\n"
              "from citrusv.curate.config import CurationConfig\n"
              "from citrusv.curate.pipeline import run_curation\n"
              "seen = []\n"
              "def die(entry):\n"
              "    seen.append(entry)\n"
              "    if len(seen) == 2:\n"
              "        os.kill(os.getpid(), signal.SIGKILL)\n"
              "run_curation(CurationConfig.from_dict(json.loads(sys.argv[1])), sys.argv[2], on_commit=die)\n")
    proc = subprocess.run([sys.executable, "-c", script, config, str(out)], capture_output=True, timeout=120, check=False)
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]
    assert len(read_manifest(out)) == 2
    run_curation(_config(sources), out)
    assert _outputs(out) == reference


def test_llm_dialogue_rewrite_in_pipeline(tmp_path):
    """Dialogues with PHI go through the LLM rewrite (the enhancer's checks); the others cost no
    request; a rewrite that still carries PHI drops the row with the reason."""
    from citrusv.llm.fake_server import FakeOpenAIServer

    def dialogue(rid, user, answer):
        return {"id": rid, "messages": [{"role": "user", "content": user}, {"role": "assistant", "content": answer}]}

    rows = [dialogue("phi", "I am Mr. John Smith, call me at 617-555-0123. I take metformin 500 mg daily, is that fine?",
                     "Metformin 500 mg daily is a usual starting dose; keep taking it with meals."),
            dialogue("clean", "Is metformin 500 mg daily a usual starting dose for type 2 diabetes?",
                     "Yes, 500 mg daily with meals is a usual starting dose."),
            dialogue("stubborn", "I am Mrs. Ann Jones, my phone is 617-555-0199. Can I take ibuprofen 400 mg?",
                     "Ibuprofen 400 mg is fine for most adults.")]
    (tmp_path / "d.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")

    def handler(request):
        prompt = request["messages"][-1]["content"]
        if "Smith" in prompt:
            return json.dumps({"messages": [
                {"role": "user", "content": "I take metformin 500 mg daily, is that fine?"},
                {"role": "assistant", "content": "Metformin 500 mg daily is a usual starting dose; keep taking it with meals."}]})
        return json.dumps({"messages": [  # still holds the phone number
            {"role": "user", "content": "My phone is 617-555-0199. Can I take ibuprofen 400 mg?"},
            {"role": "assistant", "content": "Ibuprofen 400 mg is fine for most adults."}]})

    with FakeOpenAIServer(handler) as server:
        config = CurationConfig.from_dict({"sources": [str(tmp_path / "d.jsonl")], "workers": 0, "charts": False,
                                           "filters": {"min_tokens": 1}, "dedup": {"enabled": False},
                                           "llm_deid": {"base_url": server.base_url, "model": "m"}})
        summary = run_curation(config, tmp_path / "out")
        assert len(server.calls) == 2  # the row without PHI was not sent
    kept = {json.loads(line)["id"]: json.loads(line) for line in
            (tmp_path / "out" / "shards" / "000-d-00000.jsonl").read_text().splitlines()}
    assert set(kept) == {"phi", "clean"}
    assert kept["phi"]["messages"][0]["content"] == "I take metformin 500 mg daily, is that fine?"
    assert kept["clean"]["messages"][0]["content"] == rows[1]["messages"][0]["content"]
    assert summary["dropped_by_stage"]["llm_deid"] == {"phi_remaining": 1}
    manifest = json.loads((tmp_path / "out" / "manifest.jsonl").read_text().splitlines()[0])
    assert manifest["llm_rewritten"] == 1

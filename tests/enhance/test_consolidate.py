"""Instruction consolidation against the local fake OpenAI-compatible server."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from citrusv.data.jsonl import read_samples, write_samples
from citrusv.enhance import (
    ConsolidateConfig,
    Consolidator,
    group_by_image,
    image_hash,
    output_paths,
    run_units,
)
from citrusv.llm import LLMClient
from citrusv.llm.fake_server import FakeOpenAIServer, image_urls, routed

GOOD = {"questions": [{"question": "Describe the bone and joint findings.",
                       "answer": "The femur shows no fracture. A moderate joint effusion is present in the "
                                 "suprapatellar recess."}]}
# Drops the "Is there a mass? yes" fact.
PARTIAL = {"questions": [{"question": "What does this MRI show?", "answer": "This MRI shows the knee."}]}
JUDGE = {"entailed": True, "reason": "stated"}


def picture(seed: int) -> Image.Image:
    pixels = np.random.default_rng(seed).integers(0, 255, (12, 10, 3), dtype=np.uint8)
    return Image.fromarray(pixels)


def write_input(folder):
    folder.mkdir()
    picture(1).save(folder / "knee.png")
    picture(1).save(folder / "knee_copy.bmp")  # same pixels, another path and format
    picture(2).save(folder / "mri.png")
    picture(3).save(folder / "liver.png")

    def row(i, image, question, answer, task="Lesion Localization"):
        return {"id": f"r{i}", "images": [image], "tags": {"task": [task], "modality": ["MRI"]},
                "messages": [{"role": "user", "content": f"<image>{question}"},
                             {"role": "assistant", "content": answer}]}

    rows = [row(1, "knee.png", "Is there a fracture?", "No"),
            row(2, "knee_copy.bmp", "Which bone is shown?", "Femur"),
            row(3, "knee.png", "Is there a joint effusion?", "Yes"),
            row(4, "knee.png", "Describe the effusion.", "A moderate effusion in the suprapatellar recess."),
            row(5, "mri.png", "Is there a mass?", "Yes", task="Differential Diagnosis"),
            row(6, "mri.png", "What modality is used?", "MRI", task="Differential Diagnosis"),
            row(7, "liver.png", "What organ is shown?", "Liver")]
    write_samples(rows, folder / "in.jsonl")
    return folder / "in.jsonl"


def handler():
    return routed({"Does the new text state": json.dumps(JUDGE), "Which bone is shown": json.dumps(GOOD),
                   "What modality is used": json.dumps(PARTIAL)})


def test_image_hash_is_by_pixels(tmp_path):
    picture(1).save(tmp_path / "a.png")
    picture(1).save(tmp_path / "b.bmp")
    picture(2).save(tmp_path / "c.png")
    assert image_hash(tmp_path / "a.png") == image_hash(tmp_path / "b.bmp") != image_hash(tmp_path / "c.png")


def test_group_by_image(tmp_path):
    path = write_input(tmp_path / "data")
    units, skipped = group_by_image(read_samples(path), path.parent, ConsolidateConfig())
    assert [u.source_ids for u in units] == [["r1", "r2", "r3", "r4"], ["r5", "r6"]]
    assert skipped == {"too_few_short_questions": 1}
    assert units[0].id.startswith("cons-") and units[0].tag == "Lesion Localization"
    with pytest.raises(ValueError, match="min_questions"):
        ConsolidateConfig(min_questions=1)


def test_consolidate_keeps_good_rejects_dropped_fact_and_caches(tmp_path):
    path = write_input(tmp_path / "data")
    out = tmp_path / "out" / "cons.jsonl"
    samples = read_samples(path)
    config = ConsolidateConfig()
    units, skipped = group_by_image(samples, path.parent, config)
    with FakeOpenAIServer(handler()) as server:
        client = LLMClient(server.base_url, "fake-vlm", api_key="", cache_dir=tmp_path / "cache")
        process = Consolidator(client, out.parent, config=config)
        summary = run_units("consolidate", units, process, out, not_candidates=skipped)
        first = len(server.requests)
        # 2 consolidation calls (each with the image) + 1 judge call for the long answer of r4.
        assert first == 3
        assert sum(len(image_urls(r)) for r in server.requests) == 2
        assert summary.kept == 1 and summary.dropped == {"fact_missing": 1}
        assert summary.by_tag["Lesion Localization"]["yield"] == 1.0
        assert summary.by_tag["Differential Diagnosis"]["yield"] == 0.0

        kept = read_samples(out)  # every produced row validates against the schema
        (row,) = kept
        assert row.extra["source_ids"] == ["r1", "r2", "r3", "r4"]
        assert row.extra["prompt_version"] == {"consolidate": "consolidate.v1", "judge": "entailment_judge.v1"}
        assert row.extra["model"] == {"consolidate": "fake-vlm", "judge": "fake-vlm"}
        assert row.extra["enhance"]["judged"] == 1
        assert row.messages[0]["content"].startswith("<image>")
        assert row.resolve_paths(out.parent).images[0].endswith("knee.png")
        assert image_hash(row.resolve_paths(out.parent).images[0]) == row.extra["enhance"]["image_hash"]
        _, dropped_path, summary_path = output_paths(out)
        (dropped,) = [json.loads(line) for line in dropped_path.read_text().splitlines()]
        assert dropped["reason"] == "fact_missing" and "Is there a mass?" in dropped["detail"]
        assert dropped["source_ids"] == ["r5", "r6"]
        assert json.loads(summary_path.read_text())["total_kept"] == 1

        # Rerun on the same output: everything is done, nothing is asked.
        again = run_units("consolidate", units, process, out)
        assert again.skipped_done == 2 and again.kept == 0 and len(server.requests) == first
        # A fresh output with the same cache: every answer is a cache hit.
        fresh = run_units("consolidate", units, process, tmp_path / "out" / "fresh.jsonl")
        assert fresh.kept == 1 and len(server.requests) == first
        assert client.usage.cache_hits == 3
        client.close()


def test_consolidate_bad_reply_is_dropped(tmp_path):
    path = write_input(tmp_path / "data")
    units, _ = group_by_image(read_samples(path), path.parent, ConsolidateConfig())
    with FakeOpenAIServer('{"questions": []}') as server:
        client = LLMClient(server.base_url, "fake-vlm", api_key="")
        summary = run_units("consolidate", units, Consolidator(client, tmp_path), tmp_path / "o.jsonl")
        client.close()
    assert summary.dropped == {"bad_reply": 2}

"""Folder inference: one row per image, mask PNGs at the original size, bad files reported, resume."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import random_image
from PIL import Image

from citrusv.cli import main
from citrusv.inference import CitrusVPipeline
from citrusv.inference.batch import find_images, infer_folder
from citrusv.inference.constraints import ForcedTokens


class ForcedPipeline(CitrusVPipeline):
    """The tiny random model forced to answer "Here [SEG]." so every image gets one mask."""

    forced: list[int] = []
    calls = 0

    def run(self, inputs, settings=None, *, logits_processor=None):
        type(self).calls += 1
        return super().run(inputs, settings, logits_processor=[ForcedTokens(self.forced), *(logits_processor or [])])


@pytest.fixture
def pipeline(native_checkpoint):
    pipe = ForcedPipeline.from_pretrained(native_checkpoint, device="cpu")
    tokenizer = pipe.processor.tokenizer
    ForcedPipeline.forced = tokenizer("Here [SEG].", add_special_tokens=False)["input_ids"] + [pipe.processor.token_ids.im_end]
    ForcedPipeline.calls = 0
    return pipe


def _folder(tmp_path):
    folder = tmp_path / "images"
    (folder / "sub").mkdir(parents=True)
    random_image(30, 40, seed=1).save(folder / "a.png")
    random_image(24, 24, seed=2).save(folder / "sub" / "b.jpg")
    random_image(20, 36, seed=3).save(folder / "c.tif")
    (folder / "broken.png").write_bytes(b"not an image")
    (folder / "notes.txt").write_text("ignored")
    return folder


def test_infer_folder_rows_masks_errors_and_resume(pipeline, tmp_path):
    folder, out = _folder(tmp_path), tmp_path / "out"
    assert [p.name for p in find_images(folder)] == ["a.png", "broken.png", "c.tif", "b.jpg"]
    summary = infer_folder(pipeline, folder, "Segment the lesion.", out, batch_size=2, progress=False, max_new_tokens=6)
    assert (summary.answered, summary.skipped, summary.failed) == (3, 0, 1)
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert sorted(r["id"] for r in rows) == ["a.png", "c.tif", "sub/b.jpg"]
    for row in rows:
        h, w = Image.open(folder / row["id"]).size[::-1]
        assert row["image_size"]["orig_hw"] == [h, w] and row["prompt"] == "Segment the lesion."
        assert len(row["masks"]) == 1 and len(row["mask_files"]) == 1
        mask = np.asarray(Image.open(out / row["mask_files"][0]))
        assert mask.shape == (h, w) and set(np.unique(mask)) <= {0, 255}
    error = json.loads((out / "errors.jsonl").read_text())
    assert error["id"] == "broken.png" and error["error"]

    # A killed run leaves a partial line; the rerun drops it and only answers what is missing.
    lines = (out / "results.jsonl").read_text().splitlines(keepends=True)
    (out / "results.jsonl").write_text("".join(lines[:2]) + lines[2][:15])
    ForcedPipeline.calls = 0
    again = infer_folder(pipeline, folder, "Segment the lesion.", out, batch_size=2, progress=False, max_new_tokens=6)
    assert (again.answered, again.skipped, again.failed) == (1, 2, 1) and ForcedPipeline.calls == 1
    ids = [json.loads(line)["id"] for line in (out / "results.jsonl").read_text().splitlines()]
    assert sorted(ids) == ["a.png", "c.tif", "sub/b.jpg"]  # nothing lost, nothing duplicated


def test_infer_folder_reads_dicom(pipeline, tmp_path):
    pytest.importorskip("pydicom")
    from citrusv.medio.synthetic import synthetic_ct_dataset

    folder = tmp_path / "dicom"
    folder.mkdir()
    stored = (np.arange(32 * 40, dtype=np.uint16).reshape(32, 40) % 2000)
    synthetic_ct_dataset(stored).save_as(folder / "slice.dcm", enforce_file_format=True)
    summary = infer_folder(pipeline, folder, "Segment.", tmp_path / "out", progress=False, max_new_tokens=6)
    assert summary.answered == 1
    row = json.loads((tmp_path / "out" / "results.jsonl").read_text())
    assert row["image_size"]["orig_hw"] == [32, 40]


def test_cli_folder_mode(native_checkpoint, tmp_path, capsys):
    folder = _folder(tmp_path)
    code = main(["infer", "--model", str(native_checkpoint), "--image", str(folder), "--prompt", "Describe.",
                 "--out", str(tmp_path / "out"), "--max-new-tokens", "4"])
    assert code == 1  # one unreadable file
    out = capsys.readouterr().out
    assert "answered 3, skipped 0 (already done), failed 1" in out
    assert main(["infer", "--model", str(native_checkpoint), "--image", str(folder), "--prompt", "Describe."]) == 2
    assert "needs --out" in capsys.readouterr().err

"""The small modality classifier: learns visibly different synthetic modalities, saves / loads."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from citrusv.curate.modality_classifier import (
    ModalityClassifier,
    ModalityClassifierStage,
    image_features,
    train_from_rows,
)


def _synthetic(kind: str, rng) -> Image.Image:
    yy, xx = np.mgrid[:96, :96] / 96.0
    if kind == "X-Ray":  # grayscale, smooth bright blobs
        g = np.exp(-((xx - rng.uniform(0.3, 0.7)) ** 2 + (yy - 0.5) ** 2) / rng.uniform(0.02, 0.08)) + rng.normal(0, 0.05, xx.shape)
        return Image.fromarray((np.clip(g, 0, 1) * 255).astype(np.uint8)).convert("RGB")
    if kind == "Fundus":  # orange-red disc on black
        disc = ((xx - 0.5) ** 2 + (yy - 0.5) ** 2 < rng.uniform(0.15, 0.22)).astype(float)
        rgb = np.stack([disc * rng.uniform(0.7, 1.0), disc * rng.uniform(0.25, 0.45), disc * 0.1], axis=2)
    else:  # Histopathology: pink / purple texture everywhere
        noise = rng.random((96, 96))
        rgb = np.stack([0.8 + 0.15 * noise, 0.45 + 0.3 * noise, 0.75 + 0.2 * rng.random((96, 96))], axis=2)
    return Image.fromarray((np.clip(rgb + rng.normal(0, 0.03, rgb.shape), 0, 1) * 255).astype(np.uint8))


def test_classifier_learns_and_round_trips(tmp_path):
    rng = np.random.default_rng(0)
    kinds = ["X-Ray", "Fundus", "Histopathology"]
    train = [(k, _synthetic(k, rng)) for k in kinds for _ in range(20)]
    test = [(k, _synthetic(k, rng)) for k in kinds for _ in range(10)]
    rows = []
    for i, (kind, image) in enumerate(train):
        path = tmp_path / f"{i}.png"
        image.save(path)
        rows.append({"images": [str(path)], "tags": {"modality": [kind.lower()]}})
    model = train_from_rows(rows)
    accuracy = np.mean([model.predict(image)[0] == kind for kind, image in test])
    assert accuracy >= 0.95, accuracy
    model.save(tmp_path / "m.npz")
    loaded = ModalityClassifier.load(tmp_path / "m.npz")
    feats = np.stack([image_features(im) for _, im in test])
    assert np.allclose(loaded.predict_proba(feats), model.predict_proba(feats))
    stage = ModalityClassifierStage(loaded, min_confidence=0.5)
    row = {"images": [rows[0]["images"][0]], "messages": []}
    stage.check(row)
    assert row["tags"] == {"modality": ["X-Ray"]}
    tagged = {"images": [rows[0]["images"][0]], "tags": {"modality": ["CT"]}}
    stage.check(tagged)
    assert tagged["tags"]["modality"] == ["CT"]  # existing tags win


def test_classifier_errors():
    with pytest.raises(ValueError):
        ModalityClassifier(["X-Ray", "Sonar"])
    with pytest.raises(ValueError, match="two"):
        ModalityClassifier(["CT", "MRI"]).fit(np.zeros((3, 94)), ["CT"] * 3)
    with pytest.raises(RuntimeError, match="not trained"):
        ModalityClassifier(["CT", "MRI"]).predict_proba(np.zeros(94))
    with pytest.raises(ValueError, match="no rows"):
        train_from_rows([{"messages": []}])


def test_cli_train_and_pipeline_stage(tmp_path):
    import argparse
    import json

    from citrusv.cli import curate
    from citrusv.curate.config import CurationConfig
    from citrusv.curate.pipeline import run_curation

    rng = np.random.default_rng(1)
    lines = []
    for i, kind in enumerate(["X-Ray", "Fundus"] * 8):
        _synthetic(kind, rng).save(tmp_path / f"{i}.png")
        lines.append({"id": f"r{i}", "images": [f"{i}.png"], "tags": {"modality": [kind]},
                      "messages": [{"role": "user", "content": "<image>"}]})
    (tmp_path / "train.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    parser = argparse.ArgumentParser()
    curate.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["curate", "train-modality", "--data", str(tmp_path / "train.jsonl"), "--out", str(tmp_path / "m.npz")])
    assert args.run(args) == 0
    folder = tmp_path / "unlabelled"
    folder.mkdir()
    for i, kind in enumerate(["X-Ray", "Fundus", "Fundus"]):
        _synthetic(kind, rng).save(folder / f"u{i}.png")
    config = CurationConfig.from_dict({"sources": [str(folder)], "workers": 0, "charts": False,
                                       "tagging": {"modality_model": str(tmp_path / "m.npz"), "modality_min_confidence": 0.6}})
    summary = run_curation(config, tmp_path / "out")
    assert summary["tags"]["modality"]["X-Ray"] == 1 and summary["tags"]["modality"]["Fundus"] == 2

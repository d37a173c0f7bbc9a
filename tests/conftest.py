"""Shared fixtures: tiny random models of the real architecture, built offline."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from PIL import Image

torch.set_num_threads(2)


@pytest.fixture(scope="session")
def tokenizer():
    from citrusv.model.tiny import tiny_tokenizer

    return tiny_tokenizer()


@pytest.fixture(scope="session")
def _tiny(tokenizer):
    from citrusv.model.tiny import tiny_model

    return tiny_model(tokenizer=copy.deepcopy(tokenizer))


@pytest.fixture
def model(_tiny):
    """A fresh copy of the tiny Qwen2.5-VL Citrus-V (eval mode), safe to modify."""
    return copy.deepcopy(_tiny[0]).eval()


@pytest.fixture
def processor(_tiny):
    from citrusv.processing import CitrusVProcessor

    return CitrusVProcessor.for_model_config(_tiny[0].config, copy.deepcopy(_tiny[1]))


@pytest.fixture(scope="session")
def native_checkpoint(tmp_path_factory):
    from citrusv.model.tiny import save_tiny_checkpoint

    return save_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "native")


@pytest.fixture(scope="session")
def released_checkpoint(tmp_path_factory):
    from citrusv.model.tiny import save_tiny_checkpoint

    return save_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "released", layout="released")


def random_image(height: int, width: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray((rng.random((height, width, 3)) * 255).astype(np.uint8))


@pytest.fixture
def image():
    return random_image(60, 80)


def spread_sam_weights(model, seed: int = 0, scale: float = 0.3) -> None:
    """Perturb SAM2's weights so mask logits span a wide range (random tiny weights give ~0)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in model.sam2.parameters():
            param.add_(torch.randn(param.shape, generator=generator) * scale)
        model.sam2.shared_image_embedding.positional_embedding.copy_(
            model.sam2.prompt_encoder.shared_embedding.positional_embedding)


def write_training_data(folder, count: int = 16, seed: int = 0):
    """A JSONL shard mixing text-only, image and segmentation samples (1 or 2 masks), with images
    of different sizes, plus two bad rows. Returns the JSONL path."""
    import json
    from pathlib import Path

    from citrusv.processing.masks import rle_encode

    folder = Path(folder)
    (folder / "img").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(count):
        kind = i % 4
        if kind == 0:
            rows.append({"id": f"text{i}", "messages": [
                {"role": "user", "content": f"What is a CT scan number {i}?"},
                {"role": "assistant", "content": "A cross-sectional X-ray image of the body. " * (1 + i % 5)}]})
            continue
        height, width = int(rng.integers(32, 90)), int(rng.integers(32, 90))
        random_image(height, width, seed * 1000 + i).save(folder / "img" / f"{i}.png")
        if kind == 1:
            rows.append({"id": f"vqa{i}", "images": [f"img/{i}.png"], "messages": [
                {"role": "user", "content": "<image>What modality is this?"},
                {"role": "assistant", "content": "CT of the abdomen."}]})
            continue
        count_masks = 1 + i % 2
        masks = []
        for k in range(count_masks):
            mask = np.zeros((height, width), dtype=bool)
            mask[k * 5: k * 5 + height // 2, 3: 3 + width // 2] = True
            masks.append(rle_encode(mask))
        rows.append({"id": f"seg{i}", "images": [f"img/{i}.png"], "masks": masks, "messages": [
            {"role": "user", "content": "<image>Segment the organs."},
            {"role": "assistant", "content": " and ".join(["[SEG]"] * count_masks)}]})
    path = folder / "train.jsonl"
    with open(path, "w") as handle:
        for row in rows:
            handle.write(json.dumps(row) + "\n")
        handle.write(json.dumps({"id": "bad", "messages": [{"role": "user", "content": "x"}],
                                 "masks": [{"size": [2, 2], "counts": [4]}]}) + "\n")
        handle.write("{broken json\n")
    return path

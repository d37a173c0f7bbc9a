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

"""A small trainable image classifier for the modality tag (numpy only).

Features (``image_features``, 94 numbers): an 8×8 grayscale thumbnail (64), per-channel RGB mean
and standard deviation (6), an 8-bin saturation histogram (8) and a 16-bin gray-level histogram
(16). The model is multinomial logistic regression with L2 regularisation, trained by full-batch
gradient descent on standardised features (deterministic). It tells apart modalities that look
different at a glance (grayscale radiology vs colour fundus, histology, dermoscopy, endoscopy);
it is a fallback for image rows with no DICOM metadata and no text cue, applied only above a
confidence threshold. Saved as ``.npz`` (no pickle).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..data.taxonomy import canonical_tag
from .stage import Row, RowStage

__all__ = ["ModalityClassifier", "ModalityClassifierStage", "image_features", "train_from_rows"]


def image_features(image: Any) -> np.ndarray:
    """``[94]`` float32 features of a PIL image or a path (see the module docstring)."""
    from PIL import Image

    if not isinstance(image, Image.Image):
        with Image.open(image) as opened:
            image = opened.convert("RGB")
    rgb = np.asarray(image.convert("RGB").resize((64, 64), Image.Resampling.BILINEAR), dtype=np.float32) / 255.0
    gray = rgb.mean(axis=2)
    thumb = gray.reshape(8, 8, 8, 8).mean(axis=(1, 3)).ravel()
    stats = np.concatenate([rgb.mean(axis=(0, 1)), rgb.std(axis=(0, 1))])
    saturation = (rgb.max(axis=2) - rgb.min(axis=2)) / np.maximum(rgb.max(axis=2), 1e-6)
    sat_hist = np.histogram(saturation, bins=8, range=(0, 1))[0] / saturation.size
    gray_hist = np.histogram(gray, bins=16, range=(0, 1))[0] / gray.size
    return np.concatenate([thumb, stats, sat_hist, gray_hist]).astype(np.float32)


class ModalityClassifier:
    """Multinomial logistic regression over ``image_features``.

    Args:
        labels: the modality names (taxonomy spelling), one per class.
    """

    def __init__(self, labels: Sequence[str], weights: np.ndarray | None = None, bias: np.ndarray | None = None,
                 mean: np.ndarray | None = None, scale: np.ndarray | None = None):
        self.labels = [canonical_tag("modality", label) for label in labels]
        self.weights, self.bias, self.mean, self.scale = weights, bias, mean, scale

    def fit(self, features: np.ndarray, labels: Sequence[str], *, l2: float = 1e-3, steps: int = 500,
            lr: float = 0.5) -> ModalityClassifier:
        """Train on ``features [N, 94]`` and their modality names.

        Raises:
            ValueError: fewer than two classes, or a label not in ``self.labels``.
        """
        if len(set(labels)) < 2:
            raise ValueError(f"need at least two modalities to train, got {sorted(set(labels))}")
        index = {label: i for i, label in enumerate(self.labels)}
        try:
            y = np.array([index[canonical_tag("modality", label)] for label in labels])
        except KeyError as err:
            raise ValueError(f"label {err.args[0]!r} is not one of the classifier's labels {self.labels}") from None
        x = np.asarray(features, dtype=np.float64)
        self.mean, self.scale = x.mean(axis=0), x.std(axis=0) + 1e-6
        x = (x - self.mean) / self.scale
        onehot = np.eye(len(self.labels))[y]
        w, b = np.zeros((x.shape[1], len(self.labels))), np.zeros(len(self.labels))
        for _ in range(steps):
            p = self._softmax(x @ w + b)
            grad = (p - onehot) / len(x)
            w -= lr * (x.T @ grad + l2 * w)
            b -= lr * grad.sum(axis=0)
        self.weights, self.bias = w, b
        return self

    @staticmethod
    def _softmax(z: np.ndarray) -> np.ndarray:
        z = z - z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        """``[N, classes]`` probabilities.

        Raises:
            RuntimeError: the classifier is not trained.
        """
        if self.weights is None:
            raise RuntimeError("the modality classifier is not trained: call fit() or load()")
        x = (np.atleast_2d(np.asarray(features, dtype=np.float64)) - self.mean) / self.scale
        return self._softmax(x @ self.weights + self.bias)

    def predict(self, image: Any) -> tuple[str, float]:
        """``(modality, probability)`` of one image (PIL image or path)."""
        p = self.predict_proba(image_features(image))[0]
        return self.labels[int(p.argmax())], float(p.max())

    def save(self, path: str | Path) -> None:
        np.savez(path, labels=np.array(self.labels), weights=self.weights, bias=self.bias, mean=self.mean, scale=self.scale)

    @classmethod
    def load(cls, path: str | Path) -> ModalityClassifier:
        with np.load(path, allow_pickle=False) as data:
            return cls([str(s) for s in data["labels"]], data["weights"], data["bias"], data["mean"], data["scale"])


def train_from_rows(rows: Sequence[Row], **fit_kwargs: Any) -> ModalityClassifier:
    """Train on rows with images and exactly one modality tag (first image of each)."""
    features, labels = [], []
    for row in rows:
        modality = (row.get("tags") or {}).get("modality") or []
        if row.get("images") and len(modality) == 1:
            features.append(image_features(row["images"][0]))
            labels.append(canonical_tag("modality", modality[0]))
    if not features:
        raise ValueError("no rows with an image and one modality tag to train on")
    return ModalityClassifier(sorted(set(labels))).fit(np.stack(features), labels, **fit_kwargs)


class ModalityClassifierStage(RowStage):
    """Tags image rows that still lack a modality when the classifier is at least ``min_confidence``
    sure (never drops)."""

    name = "modality_classifier"

    def __init__(self, model: ModalityClassifier, min_confidence: float = 0.8):
        self.model, self.min_confidence = model, min_confidence

    def check(self, row: Row) -> tuple[str, str] | None:
        tags = row.get("tags") or {}
        if row.get("images") and not tags.get("modality"):
            label, prob = self.model.predict(row["images"][0])
            if prob >= self.min_confidence:
                row["tags"] = {**tags, "modality": [label]}
        return None

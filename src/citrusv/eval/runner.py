"""Runners: answer benchmark items with our model or any OpenAI-compatible endpoint.

Both answerers take a batch of ``EvalItem`` and return one ``Answer`` per item, never raising for
one bad item (an unreadable image, a failed request): its ``error`` says why and the next run
retries it. ``run_benchmark`` appends answers to a predictions file as they arrive, skips ids that
are already answered, and shows a progress bar.

Decoding follows the reference evaluators (``REFERENCE_GENERATION``): greedy with up to 8192 new
tokens for VQA / QA / reports / documents, 512 for detection, temperature 0.2 (seeded) and 1024
tokens for segmentation (the Citrus-V ``eval_segmentation.py`` setting).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from tqdm.auto import tqdm

from .predictions import PredictionWriter, iter_batches
from .types import EvalItem

__all__ = [
    "REFERENCE_GENERATION",
    "Answer",
    "Answerer",
    "EndpointAnswerer",
    "PipelineAnswerer",
    "RunSummary",
    "run_benchmark",
]

logger = logging.getLogger(__name__)

#: Per family: (max_new_tokens, temperature). Seed 42 everywhere, as the reference.
REFERENCE_GENERATION: dict[str, tuple[int, float]] = {
    "vqa": (8192, 0.0),
    "mcq": (8192, 0.0),
    "report": (8192, 0.0),
    "meddoc_full": (8192, 0.0),
    "meddoc_simple": (8192, 0.0),
    "meddoc_abnormal": (8192, 0.0),
    "meddoc_general": (8192, 0.0),
    "segmentation": (1024, 0.2),
    "detection": (512, 0.0),
}
REFERENCE_SEED = 42


@dataclass
class Answer:
    """What the model said about one item."""

    text: str = ""
    masks: list[dict[str, Any]] = field(default_factory=list)  # COCO RLE at original size
    image_size: list[int] | None = None  # [h, w] of the first image
    error: str | None = None


class Answerer(Protocol):
    """Anything that answers a batch of items."""

    name: str

    def answer(self, items: Sequence[EvalItem]) -> list[Answer]: ...


def _generation_for(family: str, max_new_tokens: int | None) -> tuple[int, float]:
    tokens, temperature = REFERENCE_GENERATION[family]
    return (max_new_tokens or tokens), temperature


class PipelineAnswerer:
    """Our model through ``CitrusVPipeline``: one batched generation per group of items.

    Args:
        pipeline: a ``CitrusVPipeline``.
        name: the model name in tables (default: the checkpoint folder name).
        max_new_tokens: overrides the reference budget (useful on CPU).
    """

    def __init__(self, pipeline: Any, *, name: str = "citrus-v", max_new_tokens: int | None = None):
        self.pipeline = pipeline
        self.name = name
        self.max_new_tokens = max_new_tokens

    def _conversation(self, item: EvalItem) -> list[dict[str, Any]]:
        messages = []
        if item.system_prompt:
            messages.append({"role": "system", "content": item.system_prompt})
        messages.append({"role": "user", "content": item.prompt})
        return messages

    def answer(self, items: Sequence[EvalItem]) -> list[Answer]:
        if not items:
            return []
        family = items[0].family
        tokens, temperature = _generation_for(family, self.max_new_tokens)
        settings = {"max_new_tokens": tokens, "do_sample": temperature > 0, "seed": REFERENCE_SEED}
        if temperature > 0:
            settings["temperature"] = temperature
        try:
            results = self.pipeline.chat([self._conversation(i) for i in items], [i.images for i in items], **settings)
        except Exception as err:  # one unreadable image must not sink the batch: retry one by one
            if len(items) == 1:
                return [Answer(error=f"{type(err).__name__}: {err}")]
            logger.info("batch failed (%s); answering its %d items one by one", err, len(items))
            return [answer for item in items for answer in self.answer([item])]
        answers = []
        for result in results:
            size = list(result.image_size.orig_hw) if result.image_size is not None else None
            masks = [m.rle for m in result.masks] if family == "segmentation" else []
            answers.append(Answer(text=result.text, masks=masks, image_size=size))
        return answers


class EndpointAnswerer:
    """Any OpenAI-compatible chat endpoint (vLLM, SGLang, OpenAI, our own ``citrusv serve``).

    Images go as base64 data URLs, before the text; ``<image>`` placeholders are removed from the
    text (endpoints place images by content parts). Requests run concurrently with the client's
    retries, backoff and rate limit; a request that still fails becomes an ``Answer`` with an
    ``error``. Masks are read from the ``citrusv`` extension field of a response when present
    (``citrusv serve``); other endpoints return text only, so segmentation scores are 0 for them.
    """

    def __init__(self, client: Any, *, name: str | None = None, max_new_tokens: int | None = None,
                 progress: bool = False):
        self.client = client
        self.name = name or client.model
        self.max_new_tokens = max_new_tokens
        self.progress = progress

    def _request(self, item: EvalItem) -> dict[str, Any]:
        from ..llm import system_message, user_message

        tokens, temperature = _generation_for(item.family, self.max_new_tokens)
        messages = [system_message(item.system_prompt)] if item.system_prompt else []
        text = item.prompt.replace("<image>\n", "").replace("<image>", "")
        messages.append(user_message(text, [Path(p) for p in item.images]))
        return {"messages": messages, "temperature": temperature, "max_tokens": tokens, "seed": REFERENCE_SEED}

    def answer(self, items: Sequence[EvalItem]) -> list[Answer]:
        requests: list[dict[str, Any] | None] = []
        answers: list[Answer | None] = []
        for item in items:
            try:
                requests.append(self._request(item))
                answers.append(None)
            except Exception as err:  # an unreadable image: this item only
                requests.append(None)
                answers.append(Answer(error=f"{type(err).__name__}: {err}"))
        pending = [r for r in requests if r is not None]
        results = iter(self.client.chat_many(pending, progress=self.progress) if pending else [])
        out = []
        for answer in answers:
            if answer is not None:
                out.append(answer)
                continue
            result = next(results)
            if isinstance(result, Exception):
                out.append(Answer(error=f"{type(result).__name__}: {result}"))
                continue
            message = ((result.raw or {}).get("choices") or [{}])[0].get("message") or {}
            extension = message.get("citrusv") or {}
            masks = [m.get("rle", m) for m in extension.get("masks", []) if isinstance(m, dict)]
            out.append(Answer(text=result.text or "", masks=masks))
        return out


@dataclass
class RunSummary:
    benchmark: str
    model: str
    predictions: str
    answered: int
    skipped: int
    failed: int
    seconds: float


def run_benchmark(answerer: Answerer, items: Sequence[EvalItem], predictions_path: str | Path, *,
                  batch_size: int = 8, progress: bool = True) -> RunSummary:
    """Answer every item not yet in ``predictions_path``; rows are appended batch by batch.

    Items are sorted by family so one batch shares generation settings. Returns counts: newly
    answered, skipped (already answered by an earlier run), failed (rows written with an error).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    started = time.perf_counter()
    benchmark = items[0].benchmark if items else ""
    answered = failed = 0
    with PredictionWriter(predictions_path) as writer:
        todo = [item for item in items if item.id not in writer.finished]
        skipped = len(items) - len(todo)
        todo.sort(key=lambda item: item.family)
        bar = tqdm(total=len(todo), desc=f"{answerer.name} · {benchmark}", unit="item", disable=not progress)
        for batch in iter_batches(todo, batch_size):
            tick = time.perf_counter()
            answers = answerer.answer(batch)
            elapsed = (time.perf_counter() - tick) / max(len(batch), 1)
            rows = []
            for item, answer in zip(batch, answers, strict=True):
                row = item.to_dict()
                row.update(prediction=answer.text, model=answerer.name, elapsed_s=round(elapsed, 4))
                if item.family == "segmentation":
                    row["prediction_masks"] = answer.masks
                if answer.image_size is not None:
                    row["image_size"] = answer.image_size
                if answer.error:
                    row["error"] = answer.error
                    failed += 1
                else:
                    answered += 1
                rows.append(row)
            writer.write(rows)
            bar.update(len(batch))
        bar.close()
    return RunSummary(benchmark, answerer.name, str(predictions_path), answered, skipped, failed,
                      round(time.perf_counter() - started, 3))

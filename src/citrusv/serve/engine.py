"""``BatchingEngine``: a bounded request queue and one worker thread that batches requests.

The worker takes the first waiting request, collects more for up to ``max_wait_ms`` or until
``max_batch_size``, groups them by generation settings (requests with different settings are never
decoded together) and runs one ``CitrusVPipeline.run`` per group. Each request is encoded on its
own first, so a bad request fails alone (``APIError`` 400) and never sinks its batch. At most
``max_pending`` requests wait or run at once; ``submit`` raises ``QueueFullError`` beyond that
(the server answers 429).

Text streaming: a request may pass ``on_text(delta)``; a pass-through logits processor sees the
tokens generated so far at every decoding step and reports the new text (the final token's text
arrives with the result). Callbacks run on the worker thread and must not block.
"""

from __future__ import annotations

import concurrent.futures
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..inference.pipeline import CitrusVResult, GenerationSettings
from .errors import APIError

logger = logging.getLogger(__name__)

__all__ = ["BatchingEngine", "EngineOutput", "QueueFullError"]


class QueueFullError(RuntimeError):
    """More requests than ``max_pending`` are waiting or running."""


@dataclass
class EngineOutput:
    """What the engine returns for one request.

    Attributes:
        result: the pipeline's result.
        prompt_tokens: prompt length in tokens (images expanded).
        queue_ms: time between submission and the start of its batch.
        batch_size: requests generated together with this one (itself included).
        run_ms: time of the batch's ``pipeline.run`` call (generation, masks, parsing).
    """

    result: CitrusVResult
    prompt_tokens: int
    queue_ms: float
    batch_size: int
    run_ms: float = 0.0


@dataclass
class _Job:
    conversation: list[dict[str, Any]]
    images: list[Any]
    settings: GenerationSettings
    on_text: Callable[[str], None] | None
    future: concurrent.futures.Future = field(default_factory=concurrent.futures.Future)
    enqueued: float = field(default_factory=time.perf_counter)


def _settings_key(settings: GenerationSettings) -> tuple:
    return tuple(sorted(vars(settings).items()))


def _make_observer(processor: Any, callbacks: Sequence[Callable[[str], None] | None], prompt_width: int):
    """A logits processor that leaves scores alone and reports each row's new text."""
    from transformers import LogitsProcessor

    ids = processor.token_ids
    end_ids = {ids.im_end, ids.endoftext, ids.pad}

    class _TextObserver(LogitsProcessor):
        def __init__(self) -> None:
            self.sent = [""] * len(callbacks)
            self.done = [False] * len(callbacks)

        def __call__(self, input_ids, scores):
            new = input_ids[:, prompt_width:]
            if new.shape[1] == 0:
                return scores
            for row, callback in enumerate(callbacks):
                if callback is None or self.done[row]:
                    continue
                tokens = new[row].tolist()
                for position, token in enumerate(tokens):
                    if token in end_ids:
                        tokens, self.done[row] = tokens[:position], True
                        break
                text = processor.decode(tokens).lstrip()
                if text.endswith("\ufffd") or not text.startswith(self.sent[row]) or len(text) == len(self.sent[row]):
                    continue  # an incomplete UTF-8 sequence, or nothing new
                delta, self.sent[row] = text[len(self.sent[row]):], text
                callback(delta)
            return scores

    return _TextObserver()


class BatchingEngine:
    """Runs ``pipeline`` on batches of queued requests in one worker thread.

    Args:
        pipeline: a ``CitrusVPipeline`` (anything with ``processor`` and ``run``).
        max_batch_size: requests per ``pipeline.run`` call.
        max_wait_ms: how long to wait for more requests once one is waiting.
        max_pending: requests waiting or running at once; more raise ``QueueFullError``.
        max_prompt_tokens: longer prompts fail with a 400 ``APIError`` (``None``: no limit).
    """

    def __init__(self, pipeline: Any, *, max_batch_size: int = 8, max_wait_ms: float = 5.0, max_pending: int = 64,
                 max_prompt_tokens: int | None = None):
        if max_batch_size < 1 or max_pending < 1 or max_wait_ms < 0:
            raise ValueError(f"need max_batch_size >= 1, max_pending >= 1, max_wait_ms >= 0; got {max_batch_size}, "
                             f"{max_pending}, {max_wait_ms}")
        self.pipeline = pipeline
        self.max_batch_size = max_batch_size
        self.max_wait_s = max_wait_ms / 1000.0
        self.max_pending = max_pending
        self.max_prompt_tokens = max_prompt_tokens
        self._queue: queue.Queue[_Job | None] = queue.Queue()
        self._lock = threading.Lock()
        self._pending = 0
        self._thread: threading.Thread | None = None
        self.batches_run = 0
        self.requests_done = 0

    # ------------------------------------------------------------------ lifecycle
    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def pending(self) -> int:
        """Requests waiting or running."""
        return self._pending

    def start(self) -> BatchingEngine:
        if not self.running:
            self._thread = threading.Thread(target=self._loop, name="citrusv-engine", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Finish the batch in progress, fail the waiting requests, end the worker."""
        if self._thread is None:
            return
        self._queue.put(None)
        self._thread.join(timeout)
        self._thread = None
        while True:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                break
            if job is not None and job.future.set_running_or_notify_cancel():
                job.future.set_exception(APIError(503, "the server is shutting down"))

    # ------------------------------------------------------------------ submission
    def submit(self, conversation: list[dict[str, Any]], images: Sequence[Any], settings: GenerationSettings,
               on_text: Callable[[str], None] | None = None) -> concurrent.futures.Future:
        """Queue one conversation; the future resolves to an ``EngineOutput``.

        Raises:
            QueueFullError: ``max_pending`` requests are already waiting or running.
            RuntimeError: the engine is not started.
        """
        if not self.running:
            raise RuntimeError("the engine is not running (call start())")
        with self._lock:
            if self._pending >= self.max_pending:
                raise QueueFullError(f"{self._pending} requests pending (limit {self.max_pending})")
            self._pending += 1
        job = _Job(list(conversation), list(images), settings, on_text)
        job.future.add_done_callback(self._release)
        self._queue.put(job)
        return job.future

    def _release(self, _future: concurrent.futures.Future) -> None:
        with self._lock:
            self._pending -= 1

    # ------------------------------------------------------------------ worker
    def _loop(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch, stopping = [first], False
            deadline = time.perf_counter() + self.max_wait_s
            while len(batch) < self.max_batch_size:
                remaining = deadline - time.perf_counter()
                try:
                    job = self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get_nowait()
                except queue.Empty:
                    break
                if job is None:
                    stopping = True
                    break
                batch.append(job)
            groups: dict[tuple, list[_Job]] = {}
            for job in batch:
                groups.setdefault(_settings_key(job.settings), []).append(job)
            for jobs in groups.values():
                self._run_group(jobs)
            if stopping:
                return

    def _run_group(self, jobs: list[_Job]) -> None:
        processor = self.pipeline.processor
        started = time.perf_counter()
        ready = []
        for job in jobs:
            if not job.future.set_running_or_notify_cancel():
                continue
            try:
                encoded = processor.encode(job.conversation, job.images)
            except ValueError as err:  # bad messages, reserved tokens, unreadable image
                job.future.set_exception(APIError(400, str(err), param="messages"))
                continue
            if self.max_prompt_tokens is not None and len(encoded.input_ids) > self.max_prompt_tokens:
                job.future.set_exception(APIError(
                    400, f"the prompt is {len(encoded.input_ids)} tokens (images included), over the limit of "
                         f"{self.max_prompt_tokens}", param="messages", code="context_length_exceeded"))
                continue
            ready.append((job, encoded))
        if not ready:
            return
        try:
            inputs = processor.collate([encoded for _, encoded in ready])
            observer = None
            if any(job.on_text for job, _ in ready):
                observer = _make_observer(processor, [job.on_text for job, _ in ready], inputs.input_ids.shape[1])
            run_started = time.perf_counter()
            results = self.pipeline.run(inputs, ready[0][0].settings,
                                        logits_processor=[observer] if observer is not None else None)
            run_ms = (time.perf_counter() - run_started) * 1000.0
        except Exception as err:  # reported to every caller of the batch; the worker keeps going
            logger.exception("batch of %d request(s) failed", len(ready))
            for job, _ in ready:
                job.future.set_exception(err)
            return
        self.batches_run += 1
        for (job, encoded), result in zip(ready, results):
            self.requests_done += 1
            job.future.set_result(EngineOutput(result=result, prompt_tokens=len(encoded.input_ids),
                                               queue_ms=(started - job.enqueued) * 1000.0, batch_size=len(ready),
                                               run_ms=run_ms))

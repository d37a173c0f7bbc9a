"""Token streaming for the UI through the pipeline's public ``logits_processor`` hook.

``CitrusVPipeline`` has no streamer argument, so :class:`TokenTap` is a logits processor that
leaves the scores unchanged and hands the tokens generated so far to a callback at every
decoding step. Generation runs in a worker thread; :func:`stream_chat` yields the partial text as
it grows and finally the complete :class:`CitrusVResult` (masks included). The tap sees the
sequence before each step's token is chosen, so the partial text lags one token behind; the
final event carries the whole answer. This is real streaming (not a replay of a finished answer).
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from ..inference.pipeline import CitrusVPipeline, CitrusVResult

__all__ = ["StreamEvent", "TokenTap", "stream_chat"]


class TokenTap:
    """A pass-through logits processor that reports the generated token ids (row 0) per step.

    Args:
        on_tokens: called with the list of token ids generated so far.
        prompt_width: width of the prompt; taken from the first call when omitted (so one
            instance serves one ``generate()`` call).
    """

    def __init__(self, on_tokens: Callable[[list[int]], None], prompt_width: int | None = None):
        self.on_tokens = on_tokens
        self.prompt_width = prompt_width

    def __call__(self, input_ids, scores):
        if self.prompt_width is None:
            self.prompt_width = int(input_ids.shape[1])
        self.on_tokens(input_ids[0, self.prompt_width:].tolist())
        return scores


@dataclass
class StreamEvent:
    """One step of a streamed answer.

    Attributes:
        text: the answer decoded so far (the whole answer when ``result`` is set).
        result: the pipeline's result, on the last event only.
    """

    text: str
    result: CitrusVResult | None = None


def stream_chat(pipeline: CitrusVPipeline, conversation: Sequence[dict[str, Any]], images: Sequence[Any],
                *, lock: threading.Lock | None = None, **generation: Any) -> Iterator[StreamEvent]:
    """Answer one conversation, yielding partial texts, then the final result.

    Args:
        pipeline: the model.
        conversation: messages as for ``CitrusVPipeline.chat``.
        images: the conversation's images.
        lock: held while generating (the pipeline is not thread-safe).
        generation: ``GenerationSettings`` overrides.

    Raises:
        Whatever the pipeline raises, re-raised in the caller's thread.
    """
    events: queue.Queue = queue.Queue()

    def work() -> None:
        try:
            tap = TokenTap(lambda ids: events.put(("tokens", ids)))
            with lock if lock is not None else contextlib.nullcontext():
                result = pipeline.chat([list(conversation)], [list(images)], logits_processor=[tap], **generation)[0]
            events.put(("result", result))
        except BaseException as err:  # noqa: BLE001 - handed to the consumer thread
            events.put(("error", err))
        finally:
            events.put(("done", None))

    worker = threading.Thread(target=work, name="citrusv-ui-generate", daemon=True)
    worker.start()
    last_text = None
    pending = None
    while True:
        kind, payload = pending or events.get()
        pending = None
        if kind == "tokens":
            while True:  # skip to the newest partial answer: only it is worth drawing
                try:
                    following = events.get_nowait()
                except queue.Empty:
                    break
                if following[0] != "tokens":
                    pending = following
                    break
                payload = following[1]
            text = pipeline.processor.decode(payload)
            if text != last_text:
                last_text = text
                yield StreamEvent(text=text)
        elif kind == "result":
            yield StreamEvent(text=payload.text, result=payload)
        elif kind == "error":
            worker.join()
            raise payload
        else:
            break
    worker.join()

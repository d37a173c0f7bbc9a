"""Pulling one JSON value out of a model's reply.

Models asked for JSON still wrap it: in ```json fences, after "Here is the result:", after a
``<think>...</think>`` block whose reasoning may itself contain braces. ``extract_json`` tries,
in order: the whole reply, each fenced block, then every ``{`` (or ``[``) from the left, decoding
the longest valid JSON value that starts there; the first success wins.
"""

from __future__ import annotations

import json
import re
from typing import Any

from .errors import LLMResponseError

__all__ = ["extract_json"]

_THINK = re.compile(r"<think>.*?</think>", re.DOTALL)
_FENCE = re.compile(r"```[ \t]*(?:json|JSON|json5)?[ \t]*\n?(.*?)```", re.DOTALL)
_EXPECT = {None: "{[", dict: "{", list: "["}


def _fits(value: Any, expect: type | None) -> bool:
    return isinstance(value, (dict, list)) if expect is None else isinstance(value, expect)


def extract_json(text: str, expect: type | None = None) -> Any:
    """The first JSON object or array in ``text``.

    Args:
        text: the reply.
        expect: ``dict`` or ``list`` to accept only objects or only arrays (so a stray ``[1]`` in
            prose is not taken for the answer); ``None`` accepts either.

    Raises:
        LLMResponseError: no JSON value of the expected kind; ``.text`` holds the reply.
        ValueError: ``expect`` is not ``dict``, ``list`` or ``None``.
    """
    if expect not in _EXPECT:
        raise ValueError(f"expect must be dict, list or None, got {expect!r}")
    if not isinstance(text, str):
        raise LLMResponseError(f"the reply is {type(text).__name__}, not text", None)
    body = _THINK.sub("", text)
    if "</think>" in body:  # an unclosed <think> (some servers strip the opening tag)
        body = body.rsplit("</think>", 1)[1]
    candidates = [body.strip(), *(block.strip() for block in _FENCE.findall(body))]
    for candidate in candidates:
        try:
            value = json.loads(candidate)
        except (json.JSONDecodeError, ValueError):
            continue
        if _fits(value, expect):
            return value
    decoder = json.JSONDecoder()
    openers = _EXPECT[expect]
    for start, char in enumerate(body):
        if char not in openers:
            continue
        try:
            value, _ = decoder.raw_decode(body, start)
        except json.JSONDecodeError:
            continue
        if _fits(value, expect):
            return value
    kind = {None: "JSON object or array", dict: "JSON object", list: "JSON array"}[expect]
    raise LLMResponseError(f"no {kind} found in the reply", text)

"""``<think>`` / ``<answer>`` sections of chain-of-thought answers."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = ["ReasoningParts", "parse_reasoning"]


@dataclass(frozen=True)
class ReasoningParts:
    """A model answer split into its reasoning and its conclusion.

    Attributes:
        think: text inside ``<think>…</think>`` (``None`` when absent).
        answer: text inside ``<answer>…</answer>``; without tags, the text outside ``<think>``.
        warnings: unterminated or repeated tags.
    """

    think: str | None
    answer: str
    warnings: list[str] = field(default_factory=list)


def _section(text: str, tag: str, warnings: list[str]) -> tuple[str | None, str]:
    """Extract the first ``<tag>…</tag>``; returns (inside, text with the section removed)."""
    opener, closer = f"<{tag}>", f"</{tag}>"
    start = text.find(opener)
    if start < 0:
        if closer in text:  # "</think>" without an opener: everything before it is the section
            end = text.find(closer)
            warnings.append(f"</{tag}> without <{tag}>")
            return text[:end].strip(), text[end + len(closer):]
        return None, text
    end = text.find(closer, start + len(opener))
    if text.count(opener) > 1:
        warnings.append(f"several <{tag}> sections; the first one is used")
    if end < 0:
        warnings.append(f"unterminated <{tag}> (the output may have been cut off)")
        rest = text[start + len(opener):]
        # An unterminated <think> still ends where an <answer> begins.
        cut = rest.find("<answer>") if tag == "think" else -1
        if cut >= 0:
            return rest[:cut].strip(), text[:start] + rest[cut:]
        return rest.strip(), text[:start]
    return text[start + len(opener):end].strip(), text[:start] + text[end + len(closer):]


def parse_reasoning(text: str) -> ReasoningParts:
    """Split ``<think>…</think><answer>…</answer>`` output; never raises.

    Without an ``<answer>`` tag the answer is whatever is left outside ``<think>``.
    """
    if not isinstance(text, str):
        return ReasoningParts(None, "", [f"expected text, got {type(text).__name__}"])
    warnings: list[str] = []
    think, rest = _section(text, "think", warnings)
    answer, outside = _section(rest, "answer", warnings)
    if answer is None:
        answer = rest.strip()
    elif outside.strip():
        leftover = re.sub(r"\s+", " ", outside.strip())
        warnings.append(f"text outside <think>/<answer> ignored: {leftover[:60]!r}")
    return ReasoningParts(think=think, answer=answer, warnings=warnings)

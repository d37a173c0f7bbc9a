"""Answer extraction from model text, as the reference VQA / QA scorers do it.

The reference is JD Health's fork of MedEvalKit (``jdh-algo/JoyMed``, ``evaluation/
MedEvalKit_local/utils/utils.py``); see ``docs/evaluation.md``. Every function here reproduces
one of its helpers, quirks included, because the paper's numbers were produced with them.
"""

from __future__ import annotations

import re

__all__ = [
    "ANSWER_PATTERNS",
    "extract_boxed_content",
    "extract_tag_content",
    "parse_response",
    "pre_extract_vqa",
    "strip_think",
]

#: Markers after which the answer follows, applied in this order; for each marker present only
#: the text after its last occurrence is kept (the fork's list, with its ``answer is: **``).
ANSWER_PATTERNS = (
    "**answer**:",
    "**answer**",
    "*answer*:",
    "**answer:**",
    "answer is: **",
    "answer is",
    "answer:",
    "答案:",
    "final answer",
    "final answer is",
)

_UNUSED_SPAN = re.compile(r"<unused94>(.*?)<unused95>", re.DOTALL)


def extract_boxed_content(text: str) -> str:
    r"""The content of the last ``\boxed{...}`` (balanced braces, stripped), else the string ``"None"``.

    Same contract as ``mathruler.grader.extract_boxed_content``: callers compare against the
    literal ``"None"``, so a model that answers "None" is indistinguishable from no box.
    """
    start = text.rfind("\\boxed{")
    if start == -1:
        return "None"
    content = text[start + len("\\boxed{"):]
    depth = 0
    for index, char in enumerate(content):
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
        if depth == -1:
            return content[:index].strip()
    return "None"


def extract_tag_content(text: str, tag: str, *, hard: bool = True) -> str:
    """Every ``<tag>…</tag>`` span joined by single spaces (stripped).

    With no complete span: the whole text when ``hard`` (MedEvalKit's ``extract(text, tag)``),
    else ``""``. An empty or ``None`` text gives ``""``.
    """
    if not text:
        return ""
    open_tag, close_tag = f"<{tag}>", f"</{tag}>"
    pieces: list[str] = []
    start = text.find(open_tag)
    while start != -1:
        end = text.find(close_tag, start + len(open_tag))
        if end == -1:
            break
        pieces.append(text[start + len(open_tag):end])
        start = text.find(open_tag, end + len(close_tag))
    joined = " ".join(pieces).strip() if pieces else ""
    # The reference builds the string piece + " " and strips: an all-blank span list gives "".
    if joined:
        return joined
    return text if hard else ""


def strip_think(text: str) -> str:
    """Everything after the last ``</think>`` (the fork's reasoning-mode preprocessing)."""
    marker = text.rfind("</think>")
    return text[marker + len("</think>"):] if marker != -1 else text


def parse_response(response: str) -> str:
    r"""The fork's ``parse_response``: lower-case, unwrap a box or ``<answer>``, cut at answer markers.

    Order, as the reference: (1) its ``$\boxed{`` test is written with an unescaped ``\b`` (a
    backspace character), so it never fires on real text; (2) a text containing ``boxed`` → the
    last ``\boxed{}`` content (``"None"`` when the word occurs without a box); (3) else
    ``<answer>`` content; (4) else an ``<unused94>…<unused95>`` span is removed. Then, for each of
    ``ANSWER_PATTERNS`` present, keep what follows its last occurrence.
    """
    response = response.lower()
    if "$\x08oxed{" in response and "}$" in response:  # the reference's literal, kept for parity
        response = response.replace("$\x08oxed{", "").replace("}$", "")
    elif "boxed" in response:
        response = extract_boxed_content(response)
    elif "<answer>" in response:
        response = extract_tag_content(response, "answer")
    elif "<unused94>" in response and "<unused95>" in response:
        match = _UNUSED_SPAN.search(response)
        if match:
            response = response[:match.start()] + response[match.end():]
    for pattern in ANSWER_PATTERNS:
        if pattern in response:
            response = response.split(pattern)[-1]
    return response


def pre_extract_vqa(response: str) -> str:
    r"""The VQA scorers' first step: ``<answer>`` content if present, else a ``\boxed{}`` content."""
    if "<answer>" in response:
        return extract_tag_content(response, "answer")
    boxed = extract_boxed_content(response)
    return boxed if boxed != "None" else response

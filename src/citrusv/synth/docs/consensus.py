"""Dual parsing, agreement checking and Easy / Hard buckets for lab-report tables.

* A ``TableParser`` turns a page image into rows ``{entryname, result, unit, reference}``.
  ``VLMTableParser`` asks any OpenAI-compatible VLM endpoint (``citrusv.llm.LLMClient``) for the
  four-column Markdown table and reads it with the evaluation suite's strict parser
  (``parse_markdown_table(strict=True)`` + ``rows_to_entries``); ``OracleParser`` returns known rows.
* ``compare_tables`` normalises both tables (``citrusv.synth.docs.normalize``), pairs rows by
  canonical entry name, and calls a cell ``exact`` when the canonical strings agree, otherwise
  asks the ``EquivalenceJudge`` (an LLM, JSON answer) when one is given.
* ``consensus`` parses the raw capture with both parsers; agreement -> ``easy``
  (Consensus-Before). Otherwise it normalises the page geometry and parses again; agreement ->
  ``hard`` (Consensus-After); else ``rejected``. Only agreed documents are kept.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from PIL import Image

from ...eval.metrics.meddoc_tables import parse_markdown_table, rows_to_entries
from .geometry import NormalizedPage, normalize_page
from .normalize import NormalizedEntry, normalize_entry

__all__ = [
    "FIELDS",
    "PARSE_PROMPT",
    "Agreement",
    "ConsensusResult",
    "EquivalenceJudge",
    "LLMEquivalenceJudge",
    "OracleParser",
    "TableParser",
    "VLMTableParser",
    "compare_tables",
    "consensus",
    "entries_to_markdown",
]

logger = logging.getLogger(__name__)

FIELDS = ("entryname", "result", "unit", "reference")
#: The parse request (the MedDocBench full-parse wording plus the exact four columns).
PARSE_PROMPT = ("请将图中检验单表格解析为Markdown格式，表头包括检验项目、结果、单位、参考范围。"
                "Output only one Markdown table with the columns | 检验项目 | 结果 | 单位 | 参考范围 |, one row per test, "
                "cells copied exactly as printed; leave a cell empty when the report has none.")
_HEADERS = ("检验项目", "结果", "单位", "参考范围")


def entries_to_markdown(entries: Sequence[dict[str, Any]]) -> str:
    """The four-column Markdown table (检验项目 | 结果 | 单位 | 参考范围) of ``entries``."""
    lines = ["| " + " | ".join(_HEADERS) + " |", "|" + "---|" * len(_HEADERS)]
    for entry in entries:
        cells = [str(entry.get(name, "")).replace("|", "/").replace("\n", " ").strip() for name in FIELDS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


class TableParser(Protocol):
    """Anything that turns a page image into table rows."""

    name: str

    def parse(self, image: Image.Image) -> list[dict[str, str]]: ...


class VLMTableParser:
    """A table parser behind an OpenAI-compatible VLM endpoint.

    Args:
        client: a ``citrusv.llm.LLMClient`` (its cache, retries and rate limit apply).
        name: a label for reports (``"parser_a"``).
        prompt: the user text sent with the image.
        max_tokens: answer length cap.
    """

    def __init__(self, client: Any, name: str, *, prompt: str = PARSE_PROMPT, max_tokens: int | None = 2048):
        self.client, self.name, self.prompt, self.max_tokens = client, name, prompt, max_tokens

    def parse_text(self, image: Image.Image) -> str:
        from ...llm import user_message

        return self.client.chat([user_message(self.prompt, [image])], max_tokens=self.max_tokens).text

    def parse(self, image: Image.Image) -> list[dict[str, str]]:
        return rows_to_entries(parse_markdown_table(self.parse_text(image), strict=True))


class OracleParser:
    """Returns ``lookup(image)``: known rows (tests, and the exactness check of the pipeline)."""

    def __init__(self, lookup: Callable[[Image.Image], Sequence[dict[str, Any]]], name: str = "oracle"):
        self.lookup, self.name = lookup, name

    def parse(self, image: Image.Image) -> list[dict[str, str]]:
        markdown = entries_to_markdown(self.lookup(image))  # through Markdown, as a VLM answer would go
        return rows_to_entries(parse_markdown_table(markdown, strict=True))


# ----------------------------------------------------------------------------------- agreement


class EquivalenceJudge(Protocol):
    def __call__(self, field: str, a: str, b: str, entryname: str) -> bool: ...


_JUDGE_PROMPT = ("Two transcriptions of the same lab-report cell differ. Field: {field}; test: {entry}.\n"
                 "A: {a}\nB: {b}\n"
                 "Do they mean exactly the same thing (same value, same unit or interval; only notation differs)? "
                 'Answer with JSON: {{"equivalent": true}} or {{"equivalent": false}}.')


class LLMEquivalenceJudge:
    """An LLM deciding whether two differing cells are equivalent (JSON ``{"equivalent": bool}``)."""

    def __init__(self, client: Any):
        self.client = client
        self.calls = 0

    def __call__(self, field: str, a: str, b: str, entryname: str) -> bool:
        self.calls += 1
        reply = self.client.chat_json(_JUDGE_PROMPT.format(field=field, entry=entryname, a=a, b=b), expect=dict)
        verdict = reply.get("equivalent")
        if not isinstance(verdict, bool):
            raise ValueError(f"judge reply needs a boolean 'equivalent', got {reply!r}")  # noqa: TRY004 (a malformed reply)
        return verdict


@dataclass
class Agreement:
    """The outcome of comparing two parses.

    Attributes:
        agreed: same rows (by canonical name) and every cell exact or judged equivalent.
        exact: agreed without the judge.
        missing_a / missing_b: canonical names only in the other parse.
        differences: ``{"entryname", "field", "a", "b", "judged"}`` for cells that differ after
            normalisation (``judged``: the judge's verdict, ``None`` without a judge).
    """

    agreed: bool
    exact: bool
    missing_a: list[str] = field(default_factory=list)
    missing_b: list[str] = field(default_factory=list)
    differences: list[dict[str, Any]] = field(default_factory=list)


def _by_name(entries: Sequence[dict[str, Any]]) -> dict[str, tuple[dict[str, Any], NormalizedEntry]]:
    out: dict[str, tuple[dict[str, Any], NormalizedEntry]] = {}
    for entry in entries:
        norm = normalize_entry(entry)
        out.setdefault(norm.entryname, (entry, norm))
    return out


def compare_tables(a: Sequence[dict[str, Any]], b: Sequence[dict[str, Any]], *,
                   judge: EquivalenceJudge | None = None) -> Agreement:
    """Compare two parses after normalisation (see the module docstring).

    Two empty parses do not agree (nothing was read).
    """
    rows_a, rows_b = _by_name(a), _by_name(b)
    missing_a = sorted(set(rows_b) - set(rows_a))
    missing_b = sorted(set(rows_a) - set(rows_b))
    differences: list[dict[str, Any]] = []
    for name in rows_a.keys() & rows_b.keys():
        raw_a, norm_a = rows_a[name]
        raw_b, norm_b = rows_b[name]
        for index, field_name in enumerate(FIELDS[1:], start=1):
            if norm_a.key()[index] != norm_b.key()[index]:
                differences.append({"entryname": name, "field": field_name, "a": str(raw_a.get(field_name, "")),
                                    "b": str(raw_b.get(field_name, "")), "judged": None})
    if not rows_a or not rows_b or missing_a or missing_b:
        return Agreement(False, False, missing_a, missing_b, differences)
    if not differences:
        return Agreement(True, True)
    if judge is None:
        return Agreement(False, False, [], [], differences)
    for diff in differences:
        diff["judged"] = bool(judge(diff["field"], diff["a"], diff["b"], diff["entryname"]))
        if not diff["judged"]:
            return Agreement(False, False, [], [], differences)
    return Agreement(True, False, [], [], differences)


# ----------------------------------------------------------------------------------- consensus


@dataclass
class ConsensusResult:
    """One document through the dual-parse pipeline.

    Attributes:
        bucket: ``"easy"`` (agreed on the raw capture), ``"hard"`` (agreed only after geometry
            normalisation) or ``"rejected"``.
        entries: the agreed table (parser A's cells), ``[]`` when rejected.
        before / after: the agreement on the raw and on the normalised image (``after`` is
            ``None`` for easy documents).
        geometry: the normalisation steps (``[]`` for easy documents).
        image: the image the agreed parse came from (raw for easy, normalised for hard).
    """

    bucket: str
    entries: list[dict[str, str]]
    before: Agreement
    after: Agreement | None = None
    geometry: list[dict[str, Any]] = field(default_factory=list)
    image: Image.Image | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (without the image)."""
        return {"bucket": self.bucket, "entries": self.entries, "before": asdict(self.before),
                "after": None if self.after is None else asdict(self.after), "geometry": self.geometry}


def consensus(image: Image.Image, parser_a: TableParser, parser_b: TableParser, *,
              judge: EquivalenceJudge | None = None,
              normalizer: Callable[[Image.Image], NormalizedPage] = normalize_page) -> ConsensusResult:
    """Run both parsers before and, if needed, after geometry normalisation (module docstring)."""
    a, b = parser_a.parse(image), parser_b.parse(image)
    before = compare_tables(a, b, judge=judge)
    if before.agreed:
        return ConsensusResult("easy", a, before, image=image)
    page = normalizer(image)
    a2, b2 = parser_a.parse(page.image), parser_b.parse(page.image)
    after = compare_tables(a2, b2, judge=judge)
    bucket = "hard" if after.agreed else "rejected"
    return ConsensusResult(bucket, a2 if after.agreed else [], before, after, page.report(),
                           page.image if after.agreed else None)

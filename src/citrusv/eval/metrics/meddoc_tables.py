"""Lab-report tables: Markdown table -> rows, full-parse prediction parsing, column mapping.

``parse_markdown_table`` and ``map_entry_fields`` / ``rows_to_entries`` are also the parsers of
the document synthesis pipeline (four-column tables entry name / result / reference / unit); it
should call them with ``strict=True``. The default mode reproduces the MedDocBench reference
(``jdh-algo/JoyMed``: ``eval_utils/markdown_json_converter.py`` and
``data_configs/JDH_INSPECTION_full_parsing.py``), quirks included:

* a cell holding only dashes (``-``, ``--``) is dropped from its row, so a negative result
  written ``-`` disappears (strict keeps it);
* empty cells at the start or end of a row are removed before the cells are assigned to the
  headers, so ``| | 5.2 | g/L |`` shifts left (strict keeps cell positions);
* column mapping takes, per field, the first column whose header contains a synonym or is
  contained in one (case-insensitive). A leading ``序号`` / ``No`` column therefore becomes the
  entry name, a ``参考值`` column before ``结果`` is read as the result (``值`` is a result
  synonym), a ``Test`` header is also a result column (it is contained in ``test_result``) and an
  empty header matches every field. Strict maps each header to its most specific field, ignores
  row-number and empty headers and adds ``item`` / ``test`` / ``analyte`` / ``entry_name``;
* JSON ``null`` cells read as the text ``None`` (strict: empty).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from .meddoc_match import standardize_value

__all__ = [
    "ENTRY_FIELDS",
    "FIELD_SYNONYMS",
    "STRICT_FIELD_SYNONYMS",
    "map_entry_fields",
    "parse_full_gold",
    "parse_full_prediction",
    "parse_markdown_table",
    "rows_to_entries",
]

#: The four fields of a lab-report entry, in scoring order.
ENTRY_FIELDS = ("entryname", "result", "unit", "reference")

#: The reference's header synonyms per field (matched by containment either way, any order).
FIELD_SYNONYMS: dict[str, tuple[str, ...]] = {
    "entryname": ("检验项目", "检查项目", "项目", "项目名称", "entryname", "test_name", "代号", "no", "序号", "name",
                  "名称", "检测项目"),
    "result": ("结果", "检测结果", "result", "value", "test_result", "结果/单位", "值", "数值", "检验结果"),
    "unit": ("单位", "unit", "measurement_unit", "units"),
    "reference": ("参考范围", "参考值", "reference", "normal_range", "reference_range", "异常提示", "范围", "正常值",
                  "参考区间"),
}

#: Strict synonyms, most preferred first (a field takes its best-ranked non-empty column).
STRICT_FIELD_SYNONYMS: dict[str, tuple[str, ...]] = {
    "entryname": ("检验项目", "检查项目", "检测项目", "项目名称", "项目", "entryname", "entry_name", "test_name", "name",
                  "名称", "item", "test", "analyte", "代号"),
    "result": ("结果", "检测结果", "检验结果", "result", "test_result", "value", "结果/单位", "数值", "值"),
    "unit": ("单位", "unit", "units", "measurement_unit"),
    "reference": ("参考范围", "参考区间", "参考值", "reference", "reference_range", "normal_range", "正常值", "范围",
                  "异常提示"),
}

#: Row-number headers, never a field in strict mode.
_ROW_NUMBER_HEADERS = frozenset({"序号", "no", "no.", "#", "编号", "number", "num"})


def _unescape(text: str) -> str:
    return text.replace("\\n", "\n").replace("\\t", "\t").replace("\\r", "")


# --------------------------------------------------------------------------------------------
# Markdown tables
# --------------------------------------------------------------------------------------------

_FENCES = (re.compile(r"```markdown\s*(.*?)\s*```", re.DOTALL), re.compile(r"```\s*(.*?)\s*```", re.DOTALL))


def _only_dashes(cell: str) -> bool:
    return bool(cell) and set(cell) == {"-"}


def _is_separator(line: str) -> bool:
    """A ``|---|:--:|`` line: nothing but dashes, colons, pipes and whitespace (the reference's test)."""
    body = line.replace("|", "").strip()
    if set(body) <= set("-: \t"):
        return True
    cells = [cell.strip() for cell in line.split("|") if cell.strip()]
    if all(set(cell.replace(":", "").strip()) <= {"-"} for cell in cells):
        return True
    return bool(re.search(r"-{2,}", body)) and set(re.sub(r"[|\s:]+", "", line)) <= {"-"}


def _split_cells(line: str, strict: bool) -> list[str]:
    cells = [cell.strip() for cell in line.split("|")]
    if strict:  # drop only the boundary pieces outside the outer pipes
        if line.startswith("|"):
            cells = cells[1:]
        if line.endswith("|") and cells:
            cells = cells[:-1]
        return cells
    while cells and not cells[0]:
        cells.pop(0)
    while cells and not cells[-1]:
        cells.pop()
    return cells


def _table_rows(block: str, strict: bool) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []
    headers: list[str] | None = None
    for raw in _unescape(block).strip().split("\n"):
        line = raw.strip()
        if "|" not in line:
            continue
        cells = _split_cells(line, strict)
        if not any(cells):
            continue
        if headers is None:
            headers = cells
            continue
        if _is_separator(line) or all(not cell or _only_dashes(cell) for cell in cells):
            continue
        cells = (cells + [""] * len(headers))[: len(headers)]
        row: dict[str, str] = {}
        for header, cell in zip(headers, cells):
            if _only_dashes(cell) and not strict:
                continue
            row[header] = cell
        if any(value and not _only_dashes(value) for value in row.values()):
            rows.append(row)
    return rows


def parse_markdown_table(text: str, *, strict: bool = False) -> list[dict[str, str]]:
    """Rows of the Markdown table in ``text``, each a dict keyed by the header cells.

    The first fenced block (```` ```markdown ```` first, then any ```` ``` ````) that contains a
    ``|`` is parsed, else the whole text if it contains one. Literal ``\\n`` / ``\\t`` are
    un-escaped. The first line with a ``|`` is the header; separator lines and rows with no
    content are skipped; a short row is padded with ``""`` and a long one truncated to the header.
    Duplicate headers keep the last cell. Lines without ``|`` are ignored.

    Args:
        text: model output or gold text.
        strict: keep dash-only cells and the position of empty edge cells (see the module
            docstring for what the default reproduces).

    Returns:
        One dict per data row, cell text stripped; ``[]`` when there is no table.
    """
    if not isinstance(text, str) or not text:
        return []
    for fence in _FENCES:
        for block in fence.findall(text):
            if "|" in block:
                return _table_rows(block, strict)
    return _table_rows(text, strict) if "|" in text else []


# --------------------------------------------------------------------------------------------
# Full-parse prediction and gold
# --------------------------------------------------------------------------------------------

_FLAT_OBJECT = r"\{[^{}]*(?:\{[^{}]*\}[^{}]*)*\}"  # an object with at most one level of nesting
_JSON_ARRAY = re.compile(rf"\[\s*{_FLAT_OBJECT}(?:\s*,\s*{_FLAT_OBJECT})*\s*\]", re.DOTALL)
_JSON_FENCES = (re.compile(r"```json\s*(.*?)\s*```", re.DOTALL | re.IGNORECASE),
                re.compile(r"```JSON\s*(.*?)\s*```", re.DOTALL | re.IGNORECASE),
                re.compile(r"```\s*(.*?)\s*```", re.DOTALL | re.IGNORECASE))
_NAME_RESULT = re.compile(r"(项目名称|检验项目|项目|名称)[：:]\s*([^\s，,；;]+)\s*[，,；;]?\s*(结果|数值|值)[：:]\s*([^\s，,；;]+)",
                          re.IGNORECASE)


def _json_rows(text: str) -> list[Any] | None:
    """A JSON list as is, an object as a one-element list, anything else (or invalid) ``None``."""
    try:
        parsed = json.loads(text)
    except ValueError:
        return None
    if isinstance(parsed, list):
        return parsed
    if isinstance(parsed, dict):
        return [parsed]
    return None


def parse_full_prediction(text: str, *, strict: bool = False) -> list[Any]:
    """The rows of a full-parse answer (reference ``extract_json_from_markdown``); first success wins.

    1. Un-escape literal ``\\n`` / ``\\t`` / ``\\r``; a text wrapped in double quotes is unwrapped
       and its ``""``, ``\\"`` and ``\\\\`` un-escaped.
    2. The whole text as JSON (list, or object -> one row).
    3. The first JSON array of flat objects found by regex that parses as a list.
    4. The content of ```` ```json ```` then plain ```` ``` ```` fences, as JSON.
    5. A Markdown table (``parse_markdown_table``), if the text has a ``|``.
    6. ``项目名称：X 结果：Y``-style pairs -> ``{"entryname": X, "result": Y}``.

    Returns:
        The rows (usually dicts; a JSON list may hold other values, which scoring ignores);
        ``[]`` when nothing parses, a parse failure.
    """
    if not isinstance(text, str) or not text:
        return []
    text = _unescape(text.strip())
    if len(text) >= 2 and text.startswith('"') and text.endswith('"'):
        text = text[1:-1].replace('""', '"').replace('\\"', '"').replace("\\\\", "\\")
    rows = _json_rows(text)
    if rows is not None:
        return rows
    for match in _JSON_ARRAY.findall(text):
        rows = _json_rows(match)  # always a list here: the match starts with "["
        if rows is not None:
            return rows
    for fence in _JSON_FENCES:
        for block in fence.findall(text):
            rows = _json_rows(block)
            if rows is not None:
                return rows
    if "|" in text:
        rows = parse_markdown_table(text, strict=strict)
        if rows:
            return rows
    return [{"entryname": m[1].strip(), "result": m[3].strip()} for m in _NAME_RESULT.findall(text)]


def parse_full_gold(text: str, *, strict: bool = False) -> list[Any]:
    """The gold rows of a full-parse item given as text (the TSV ``answer``).

    Un-quote a ``"..."`` wrapper (``""`` -> ``"``), un-escape ``\\n`` / ``\\t`` / ``\\r``, then: JSON
    (list, or object -> one row); else a Markdown table if the text has a ``|``; else the
    prediction parser. A JSON scalar gives ``[]``.
    """
    if not isinstance(text, str):
        raise TypeError(f"full-parse gold must be a string or a list of dicts, got {type(text).__name__}")
    if len(text) >= 2 and text.startswith('"') and text.endswith('"'):
        text = text[1:-1].replace('""', '"')
    text = _unescape(text)
    try:
        parsed = json.loads(text)
    except ValueError:
        if "|" in text:
            return parse_markdown_table(text, strict=strict)
        return parse_full_prediction(text, strict=strict)
    if isinstance(parsed, list):
        return parsed
    return [parsed] if isinstance(parsed, dict) else []


# --------------------------------------------------------------------------------------------
# Column mapping
# --------------------------------------------------------------------------------------------


def _matches_loosely(key: str, synonyms: Sequence[str]) -> bool:
    key = key.lower()
    return any(word in key or key in word for word in synonyms)


def _squash(text: str) -> str:
    """Lower-case without spaces, ``_`` or ``-``: ``"Normal Range"`` and ``normal_range`` agree."""
    return re.sub(r"[\s_\-]+", "", text.lower())


def _strict_rank(key: str, field: str) -> tuple[int, int] | None:
    """(synonym rank, tier) of ``key`` for ``field``, or ``None`` when ``key`` belongs elsewhere.

    A header belongs to one field: an exact synonym first; else the longest synonym it contains;
    else the first field (in ``ENTRY_FIELDS`` order) with a synonym containing it.
    """
    k = _squash(key)
    if not k or k in _ROW_NUMBER_HEADERS:
        return None
    synonyms = [(f, i, _squash(s)) for f in ENTRY_FIELDS for i, s in enumerate(STRICT_FIELD_SYNONYMS[f])]
    tiers = (
        [(f, i, len(s)) for f, i, s in synonyms if s == k],
        [(f, i, len(s)) for f, i, s in synonyms if s in k],
        [(f, i, len(s)) for f, i, s in synonyms if k in s],
    )
    for tier, found in enumerate(tiers):
        if not found:
            continue
        if tier == 1:  # most specific: longest contained synonym, then field order
            best = max(found, key=lambda t: (t[2], -ENTRY_FIELDS.index(t[0]), -t[1]))
        else:
            best = min(found, key=lambda t: (ENTRY_FIELDS.index(t[0]), t[1]))
        owner_ranks = [i for f, i, _ in found if f == best[0]]
        return (min(owner_ranks), tier) if best[0] == field else None
    return None


def strict_columns(row: Mapping[str, Any], field: str) -> list[str]:
    """The headers of ``row`` that strict mode assigns to ``field``, best first."""
    ranked = [(rank, position, key) for position, key in enumerate(row)
              if (rank := _strict_rank(key, field)) is not None]
    return [key for _, _, key in sorted(ranked)]


def _cell_text(value: Any, strict: bool) -> str:
    return "" if value is None and strict else str(value)


def reference_column(row: Mapping[str, Any], field: str, *, skip_blank: bool = False) -> str | None:
    """Default mode: the first header matching ``field`` loosely (the blank-skipping variant is the
    reference's entry-name lookup: it moves on when the standardised value is empty)."""
    for key, value in row.items():
        if _matches_loosely(key, FIELD_SYNONYMS[field]) and (not skip_blank or standardize_value(str(value))):
            return key
    return None


def map_entry_fields(row: Mapping[str, Any], *, strict: bool = False) -> dict[str, str]:
    """The four entry fields of one parsed row, as raw cell text (``""`` when no column maps).

    Default (reference): per field, the first header (in row order) that contains a synonym of
    ``FIELD_SYNONYMS`` or is contained in one, case-insensitive; the entry name skips headers whose
    cell is blank after standardisation. Strict: each header goes to its most specific field
    (``STRICT_FIELD_SYNONYMS``), row-number and empty headers are ignored, and a field takes the
    best-ranked column whose cell is not blank.
    """
    out: dict[str, str] = {}
    for name in ENTRY_FIELDS:
        if strict:
            keys = strict_columns(row, name)
            key = next((k for k in keys if _cell_text(row[k], True).strip()), keys[0] if keys else None)
        else:
            key = reference_column(row, name, skip_blank=name == "entryname")
        out[name] = "" if key is None else _cell_text(row[key], strict)
    return out


def rows_to_entries(rows: Sequence[Mapping[str, Any]], *, strict: bool = True) -> list[dict[str, str]]:
    """``map_entry_fields`` over table rows, keeping rows with a non-blank entry name.

    Intended for pipelines (strict by default): ``rows_to_entries(parse_markdown_table(text,
    strict=True))`` gives ``[{"entryname", "result", "unit", "reference"}, ...]``. Non-dict rows are
    skipped.
    """
    entries = [map_entry_fields(row, strict=strict) for row in rows if isinstance(row, Mapping)]
    return [entry for entry in entries if entry["entryname"].strip()]

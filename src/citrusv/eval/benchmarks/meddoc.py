"""MedDocBench loaders (five splits, VLMEvalKit TSV or the Hugging Face Parquet files).

Each split folder holds one table with ``index``, ``question``, ``answer`` and the image as
base64 (``image``; a short value naming another row's ``index`` reuses that row's image, as in
VLMEvalKit) or as a path (``image_path``, relative to the split folder or to the MedDocBench
folder). The TSV ``question`` is the prompt; the system prompt is the row's ``system_prompt`` or
``你是医学文档解析专家``.

Gold answers:

* ``LTR_fullparsing`` → list of ``{entryname, result, unit, reference}`` (JSON, or a Markdown
  table with the 检验项目 / 结果 / 单位 / 参考范围 header);
* ``LTR_abnormalityQA`` → list of ``{entryname, result, reference, status}`` (may be empty);
* ``LTR_simpleQA`` → the gold string, ``extra["field"]`` (``result`` / ``reference``, default
  ``result`` as the scorer assumes), ``extra["entryname"]`` and ``extra["unit"]`` when the table
  has a ``unit`` column (the published generator writes none);
* ``GMD_*`` → the gold string, with ``doc_type`` / ``department`` in ``extra`` and ``tags``.

``extra["answer_raw"]`` keeps the answer cell as read, for scorers that re-parse it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from .. import prompts
from ..types import EvalItem
from ._io import LoadContext, RowError, as_row, decode_base64_image, is_missing, opt_str, req_str

__all__ = ["MEDDOC_SPLITS", "load_meddocbench", "parse_entries"]

#: registry suffix -> (split folder, family)
MEDDOC_SPLITS = {
    "ltr_full": ("LTR_fullparsing", "meddoc_full"),
    "ltr_simple": ("LTR_simpleQA", "meddoc_simple"),
    "ltr_abnormal": ("LTR_abnormalityQA", "meddoc_abnormal"),
    "gmd_simple": ("GMD_simpleQA", "meddoc_general"),
    "gmd_complex": ("GMD_complexQA", "meddoc_general"),
}
_FIELDS = {
    "meddoc_full": ("entryname", "result", "unit", "reference"),
    "meddoc_abnormal": ("entryname", "result", "reference", "status"),
}
_KEY_SYNONYMS = {
    "entryname": ("entryname", "entry_name", "name", "test_name", "检验项目", "检验项目名称", "项目", "项目名称", "名称"),
    "result": ("result", "value", "结果", "检测结果", "检验结果"),
    "unit": ("unit", "单位"),
    "reference": ("reference", "ref", "normal_range", "参考范围", "参考值", "参考区间"),
    "status": ("status", "异常状态", "状态"),
}
_KEY_TO_FIELD = {synonym.lower(): name for name, synonyms in _KEY_SYNONYMS.items() for synonym in synonyms}
_TABLE_RULE = re.compile(r"^\|?\s*:?-{2,}")
_PATTERNS = ("*.tsv", "*.bytes.parquet", "*.parquet")
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


def _split_file(ctx: LoadContext, split: str) -> Path:
    folder = ctx.folder / split
    for pattern in _PATTERNS:
        found = sorted(p for p in folder.glob(pattern) if p.is_file())
        if pattern == "*.parquet":
            found = [p for p in found if not p.name.endswith(".bytes.parquet")]
        if len(found) > 1:
            raise ValueError(f"{ctx.benchmark}: several {pattern} files in {folder} "
                             f"({', '.join(p.name for p in found)}); keep one")
        if found:
            return found[0]
    raise FileNotFoundError(f"{ctx.benchmark}: missing {folder / '*.tsv'} (or *.parquet)")


def _normalise_entry(entry: dict[str, Any], fields: tuple[str, ...]) -> dict[str, str]:
    out = {name: "" for name in fields}
    for key, value in entry.items():
        name = _KEY_TO_FIELD.get(str(key).strip().lower())
        if name in out and not out[name]:
            out[name] = "" if is_missing(value) else str(value)
    return out


def _markdown_rows(text: str) -> list[dict[str, str]]:
    lines = [line.strip() for line in text.splitlines() if line.strip().startswith("|")]
    if len(lines) < 2:
        return []
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    rows = []
    for line in lines[1:]:
        if _TABLE_RULE.match(line):
            continue
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if len(cells) != len(header):
            raise RowError(f"Markdown table row has {len(cells)} cells, the header {len(header)}: {line}")
        rows.append(dict(zip(header, cells, strict=True)))
    return rows


def parse_entries(text: str, fields: tuple[str, ...]) -> list[dict[str, str]]:
    """Gold entries from a JSON list / object or a Markdown table, keyed by ``fields``.

    Chinese keys and headers (检验项目, 结果, 单位, 参考范围, 异常状态, …) map to the English field
    names; missing fields become ``""``; values are strings.

    Raises:
        RowError: neither JSON nor a Markdown table, or entries without a recognisable key.
    """
    cleaned = text.strip().replace("\\n", "\n").replace("\\t", "\t").replace("\\r", "")
    try:
        parsed: Any = json.loads(cleaned)
    except json.JSONDecodeError:
        parsed = _markdown_rows(cleaned) if "|" in cleaned else None
        if not parsed:
            raise RowError("answer is neither JSON nor a Markdown table") from None
    if isinstance(parsed, dict):
        parsed = [parsed]
    if not isinstance(parsed, list) or not all(isinstance(entry, dict) for entry in parsed):
        raise RowError("answer must be a JSON list of objects")
    entries = [_normalise_entry(entry, fields) for entry in parsed]
    for entry, source in zip(entries, parsed, strict=True):
        if source and not any(entry.values()):
            raise RowError(f"answer entry has no known key: {', '.join(map(str, source))}")
    return entries


def _image_cells(value: Any) -> list[Any]:
    if isinstance(value, (list, tuple)):
        return list(value)
    if isinstance(value, str) and value.lstrip().startswith("["):
        try:
            cells = json.loads(value)
        except json.JSONDecodeError:
            return [value]
        return cells if isinstance(cells, list) else [value]
    return [value]


def _resolve_image(ctx: LoadContext, cell: Any, split_dir: Path, by_index: dict[str, list[str]]) -> list[str]:
    if isinstance(cell, str) and len(cell) <= 64 and cell.strip() in by_index:
        return by_index[cell.strip()]
    if isinstance(cell, str) and not cell.strip().lower().endswith(_IMAGE_SUFFIXES):  # base64 payload
        return [ctx.store_image(decode_base64_image(cell.strip()))]
    if (isinstance(cell, str) and ctx.image_root is None and not Path(cell.strip()).is_absolute()
            and not (split_dir / cell.strip()).is_file() and (ctx.folder / cell.strip()).is_file()):
        return [ctx.image_file(cell, ctx.folder)]
    return [ctx.image_file(cell, split_dir)]


def load_meddocbench(ctx: LoadContext, key: str) -> None:
    split, family = MEDDOC_SPLITS[key]
    path = _split_file(ctx, split)
    split_dir = ctx.folder / split
    by_index: dict[str, list[str]] = {}
    for _, _, number, obj in ctx.rows(path):
        with ctx.row(path, number):
            row = as_row(obj)
            question = req_str(row, "question")
            answer_raw = req_str(row, "answer", allow_empty=True)
            index = opt_str(row, "index") or str(number - 1)
            if not is_missing(row.get("image")) and row.get("image") != "":
                cells = _image_cells(row["image"])
            elif not is_missing(row.get("image_path")) and row.get("image_path") != "":
                cells = _image_cells(row["image_path"])
            else:
                raise RowError("missing field 'image' (or 'image_path')")
            images = [image for cell in cells for image in _resolve_image(ctx, cell, split_dir, by_index)]
            by_index[index] = images
            system_prompt = opt_str(row, "system_prompt") or prompts.MEDDOC_DEFAULT_SYSTEM_PROMPT
            extra: dict[str, Any] = {"answer_raw": answer_raw}
            tags: dict[str, str] = {}
            answer: Any
            if family in _FIELDS:
                answer = parse_entries(answer_raw, _FIELDS[family])
            else:
                if not answer_raw.strip():
                    raise RowError("empty field 'answer'")
                answer = answer_raw
                if family == "meddoc_simple":
                    extra["field"] = opt_str(row, "field_type") or "result"
                    extra["entryname"] = opt_str(row, "entryname") or ""
                    unit = opt_str(row, "unit")
                    if unit is not None:
                        extra["unit"] = unit
                    if extra["field"] not in ("result", "reference"):
                        raise RowError(f"field_type must be result or reference, got {extra['field']!r}")
                else:
                    for source, name in (("doc_type", "doc_type"), ("dept_name", "department")):
                        value = opt_str(row, source)
                        if value is not None:
                            extra[name] = tags[name] = value
            ctx.add(EvalItem(
                id=index, benchmark=ctx.benchmark, family=family, question=question, prompt=question,
                answer=answer, images=images, language="zh", system_prompt=system_prompt, tags=tags, extra=extra,
            ))

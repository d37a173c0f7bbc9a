"""QA derivation from agreed document parses, as rows of the sample schema.

Lab reports (from an agreed table):

* ``full_parse_sample``: the MedDocBench full-parse prompt -> the four-column Markdown table;
* ``simple_qa``: one question per sampled entry on a single field, from five templates per
  language (``SIMPLE_TEMPLATES``: result with unit, result, unit, reference interval, the entry
  name of row n);
* ``abnormality_qa``: the MedDocBench abnormality prompt -> a JSON list of the abnormal entries
  (偏高 / 偏低 / 阳性), and per-entry questions "high, low or normal?" answered in JSON
  (``{"entryname", "result", "reference", "status"}``), labels from ``normalize.abnormality``.

General documents: ``downsample_by_type`` caps over-represented document types;
``general_qa_consensus`` asks an LLM for simple and complex questions, answers each with two VLMs
and keeps the ones an LLM judge calls equivalent; ``template_general_qa`` builds questions from
known fields (tests, demos, and an oracle for the LLM path).

Every row: ``{"id", "messages", "images", "tags"}`` with ``<image>`` in the user text and tags
``source=synth_docs``, ``doc_task``, ``bucket`` (easy / hard) and ``language``.
"""

from __future__ import annotations

import json
import random
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

from ...eval.prompts import MEDDOC_ABNORMALITY_PROMPT, MEDDOC_FULLPARSE_PROMPT
from .consensus import entries_to_markdown
from .normalize import abnormality

__all__ = [
    "SIMPLE_TEMPLATES",
    "STATUS_ZH",
    "abnormal_items",
    "abnormality_qa",
    "downsample_by_type",
    "full_parse_sample",
    "general_qa_consensus",
    "simple_qa",
    "template_general_qa",
]

#: (field, template) per language; ``{name}`` is the entry name, ``{n}`` the 1-based row number.
SIMPLE_TEMPLATES: dict[str, tuple[tuple[str, str], ...]] = {
    "zh": (("result_unit", "图中显示{name}的测量结果是多少？如果有单位请同时包含单位"),
           ("result", "图中{name}的检测数值是多少？只回答数值。"),
           ("unit", "{name}的结果使用什么单位？"),
           ("reference", "图中显示{name}的参考区间是多少？"),
           ("entryname", "检验单表格中第{n}项的检验项目名称是什么？")),
    "en": (("result_unit", "What is the result of {name} in the image? Include the unit if there is one."),
           ("result", "What is the numeric value reported for {name}? Answer with the value only."),
           ("unit", "Which unit is {name} reported in?"),
           ("reference", "What is the reference interval of {name} in the image?"),
           ("entryname", "What is the name of test number {n} in the table?")),
}
#: abnormality status -> MedDocBench wording.
STATUS_ZH = {"high": "偏高", "low": "偏低", "abnormal": "阳性", "normal": "正常"}


def _sample(sample_id: str, image: str, question: str, answer: str, tags: dict[str, str]) -> dict[str, Any]:
    return {"id": sample_id, "images": [image],
            "messages": [{"role": "user", "content": f"<image>{question}"}, {"role": "assistant", "content": answer}],
            "tags": {"source": ["synth_docs"], **{k: [v] for k, v in tags.items()}}}


def full_parse_sample(doc_id: str, image: str, entries: Sequence[dict[str, Any]], *, bucket: str = "easy",
                      language: str = "zh") -> dict[str, Any]:
    """The full-parse sample: MedDocBench prompt -> four-column Markdown table."""
    return _sample(f"{doc_id}--full", image, MEDDOC_FULLPARSE_PROMPT, entries_to_markdown(entries),
                   {"doc_task": "full_parse", "bucket": bucket, "language": language})


def _answer(entry: dict[str, Any], field: str) -> str:
    if field == "result_unit":
        return f"{entry['result']} {entry['unit']}".strip()
    return str(entry[field])


def simple_qa(doc_id: str, image: str, entries: Sequence[dict[str, Any]], rng: random.Random, *, per_doc: int = 3,
              bucket: str = "easy", language: str = "zh") -> list[dict[str, Any]]:
    """Up to ``per_doc`` single-field questions (random entries and templates; a template whose
    answer would be empty, such as the unit of a qualitative test, is skipped)."""
    templates = SIMPLE_TEMPLATES["zh" if language == "zh" else "en"]
    out: list[dict[str, Any]] = []
    candidates = [(i, t) for i in range(len(entries)) for t in range(len(templates))]
    rng.shuffle(candidates)
    used: set[int] = set()
    for index, t in candidates:
        if len(out) >= per_doc:
            break
        field, template = templates[t]
        entry = entries[index]
        answer = _answer(entry, field)
        if index in used or not answer.strip():
            continue
        used.add(index)
        question = template.format(name=entry["entryname"], n=index + 1)
        row = _sample(f"{doc_id}--simple{len(out)}", image, question, answer,
                      {"doc_task": "simple_qa", "bucket": bucket, "language": language, "field": field})
        row["meta"] = {"entryname": entry["entryname"], "field": field, "unit": entry.get("unit", "")}
        out.append(row)
    return out


def abnormal_items(entries: Sequence[dict[str, Any]]) -> list[dict[str, str]]:
    """The abnormal entries in MedDocBench's abnormality format (status from the numbers).

    Raises:
        ValueError: an entry whose status cannot be decided (unreadable result or reference).
    """
    items = []
    for entry in entries:
        status = abnormality(entry["result"], entry["reference"])
        if status is None:
            raise ValueError(f"cannot decide the status of {entry['entryname']!r}: "
                             f"result {entry['result']!r}, reference {entry['reference']!r}")
        if status != "normal":
            items.append({"entryname": entry["entryname"], "result": f"{entry['result']} {entry['unit']}".strip(),
                          "reference": entry["reference"], "status": STATUS_ZH[status]})
    return items


_COMPARE = {"zh": "请比较图中{name}的结果与参考区间，判断偏高、偏低还是正常，以JSON输出，包含entryname、result、reference、status（high/low/normal）。",
            "en": "Compare the result of {name} with its reference interval: is it high, low or normal? Answer in JSON "
                  "with entryname, result, reference and status (high / low / normal)."}


def abnormality_qa(doc_id: str, image: str, entries: Sequence[dict[str, Any]], rng: random.Random, *,
                   per_doc: int = 2, bucket: str = "easy", language: str = "zh") -> list[dict[str, Any]]:
    """The whole-report abnormality question plus ``per_doc`` per-entry comparisons (numeric
    entries only; abnormal entries are preferred so both labels occur)."""
    tags = {"doc_task": "abnormality_qa", "bucket": bucket, "language": language}
    listing = abnormal_items(entries)
    rows = [_sample(f"{doc_id}--abnormal", image, MEDDOC_ABNORMALITY_PROMPT,
                    json.dumps(listing, ensure_ascii=False), tags)]
    rows[0]["meta"] = {"items": listing}
    numeric = [e for e in entries if abnormality(e["result"], e["reference"]) in ("high", "low", "normal")]
    rng.shuffle(numeric)
    numeric.sort(key=lambda e: abnormality(e["result"], e["reference"]) == "normal")
    for k, entry in enumerate(numeric[:per_doc]):
        status = abnormality(entry["result"], entry["reference"])
        answer = {"entryname": entry["entryname"], "result": entry["result"], "reference": entry["reference"],
                  "status": status}
        rows.append(_sample(f"{doc_id}--compare{k}", image, _COMPARE["zh" if language == "zh" else "en"].format(
            name=entry["entryname"]), json.dumps(answer, ensure_ascii=False), tags))
    return rows


# ----------------------------------------------------------------------------------- general documents


def downsample_by_type(items: Sequence[Any], doc_type: Callable[[Any], str], rng: random.Random, *,
                       max_share: float = 0.4) -> list[Any]:
    """Cap each document type at ``max_share`` of the result by downsampling the larger types.

    The cap is solved so that no type exceeds ``max_share`` of what is kept while rare types are
    kept whole; the kept order follows the input.

    Raises:
        ValueError: ``max_share`` outside (0, 1], or too small for the number of types.
    """
    groups: dict[str, list[int]] = defaultdict(list)
    for i, item in enumerate(items):
        groups[doc_type(item)].append(i)
    if not 0 < max_share <= 1 or max_share * len(groups) < 1 - 1e-9 and groups:
        raise ValueError(f"max_share must be in (1/{len(groups)}, 1] for {len(groups)} types, got {max_share}")
    sizes = sorted(len(v) for v in groups.values())
    cap = max(sizes, default=0)
    while cap > 1:
        total = sum(min(s, cap) for s in sizes)
        if cap <= max_share * total + 1e-9:
            break
        cap -= 1
    keep: set[int] = set()
    for indices in groups.values():
        keep.update(indices if len(indices) <= cap else rng.sample(indices, cap))
    return [items[i] for i in sorted(keep)]


def template_general_qa(doc: Any) -> list[dict[str, str]]:
    """Questions from a ``GeneralDocument``'s known fields: ``{"kind", "question", "answer"}``
    (simple: one field each; complex: two fields combined)."""
    zh = doc.language == "zh"
    items = [{"kind": "simple", "question": f"该文档中“{key}”是什么？" if zh else f"What is the {key.lower()} on this document?",
              "answer": value} for key, value in doc.fields.items()]
    keys = list(doc.fields)
    if len(keys) >= 2:
        a, b = keys[-2], keys[-1]
        items.append({"kind": "complex",
                      "question": f"请同时给出“{a}”和“{b}”。" if zh else f"Give both the {a.lower()} and the {b.lower()}.",
                      "answer": f"{doc.fields[a]}; {doc.fields[b]}"})
    return items


_QUESTION_PROMPT = ("This is a medical document of type {doc_type}. Write {n_simple} simple questions (one fact each, "
                    "answerable from the image) and {n_complex} complex questions (combining several facts or "
                    "clinically salient content). Answer with JSON: "
                    '{{"simple": ["..."], "complex": ["..."]}}. Write the questions in the document\'s language.')
_AGREE_PROMPT = ("Question: {q}\nAnswer A: {a}\nAnswer B: {b}\nDo the two answers agree in their main content? "
                 'Answer with JSON: {{"agree": true}} or {{"agree": false}}.')


def general_qa_consensus(image: Any, doc_type: str, question_llm: Any, answerers: Sequence[Any], judge_llm: Any, *,
                         n_simple: int = 3, n_complex: int = 2) -> list[dict[str, Any]]:
    """Generate questions with ``question_llm`` (a ``LLMClient`` that sees the image), answer each with
    the two ``answerers`` (VLM clients), keep the ones ``judge_llm`` says agree.

    Returns:
        ``{"kind", "question", "answer", "answer_b"}`` for the kept questions (answer: the first VLM's).

    Raises:
        ValueError: not exactly two answerers, or a malformed question / judge reply.
    """
    from ...llm import user_message

    if len(answerers) != 2:
        raise ValueError(f"need exactly two answering VLMs, got {len(answerers)}")
    reply = question_llm.chat_json([user_message(_QUESTION_PROMPT.format(doc_type=doc_type, n_simple=n_simple,
                                                                       n_complex=n_complex), [image])], expect=dict)
    kept = []
    for kind in ("simple", "complex"):
        questions = reply.get(kind, [])
        if not isinstance(questions, list) or not all(isinstance(q, str) for q in questions):
            raise ValueError(f"question reply needs a list of strings under {kind!r}, got {questions!r}")
        for question in questions:
            a, b = (client.chat([user_message(question, [image])]).text.strip() for client in answerers)
            verdict = judge_llm.chat_json(_AGREE_PROMPT.format(q=question, a=a, b=b), expect=dict).get("agree")
            if not isinstance(verdict, bool):
                raise ValueError(f"judge reply needs a boolean 'agree', got {verdict!r}")  # noqa: TRY004 (a malformed reply)
            if verdict and a:
                kept.append({"kind": kind, "question": question, "answer": a, "answer_b": b})
    return kept

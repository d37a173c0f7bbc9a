"""The scored result of one benchmark for one model: what tables, plots and ``OUT.json`` hold."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["BenchmarkScore", "load_scores"]


@dataclass
class BenchmarkScore:
    """Scores of one model on one benchmark, all on 0–100.

    Attributes:
        benchmark / title / capability / family: from the registry.
        model: the model name (a table row).
        score: the headline number (accuracy, Overall, ROUGE-L, mean Dice, Precision@0.5); ``None``
            when it cannot be computed (a judge-only benchmark scored without a judge).
        metric: what ``score`` is, e.g. ``"accuracy"``.
        metrics: every reported number by name; report generation has three table columns
            (``rouge_l``, ``cider``, ``ratescore``), the others repeat ``score`` and add details.
        count: rows scored; ``errors``: rows that could not be scored, with reasons.
        comparable: ``False`` when the number is not comparable with the paper's (open VQA
            scored without an LLM judge, say); ``notes`` say why.
        strict: whether the reference's documented bugs were fixed (``--strict``).
        by_tag: tag key → tag value → ``{"mean", "count"}`` of per-row scores.
        items: per-row ``{"id", "score", ...}``.
    """

    benchmark: str
    title: str
    capability: str
    family: str
    model: str
    score: float | None
    metric: str
    metrics: dict[str, float | None] = field(default_factory=dict)
    count: int = 0
    errors: list[str] = field(default_factory=list)
    comparable: bool = True
    strict: bool = False
    notes: list[str] = field(default_factory=list)
    by_tag: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    items: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def save(self, path: str | Path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps(self.to_dict(), ensure_ascii=False, indent=1, default=_json_default), encoding="utf-8")
        tmp.replace(path)

    @classmethod
    def load(cls, path: str | Path) -> BenchmarkScore:
        row = json.loads(Path(path).read_text(encoding="utf-8"))
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in row.items() if k in known})


def _json_default(value: Any) -> Any:
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, (set, tuple)):
        return list(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def load_scores(root: str | Path) -> list[BenchmarkScore]:
    """Every ``*.score.json`` under ``root`` (recursively), sorted by model then benchmark."""
    scores = [BenchmarkScore.load(p) for p in sorted(Path(root).rglob("*.score.json"))]
    return sorted(scores, key=lambda s: (s.model, s.benchmark))

"""Curation statistics from the manifest: counts per stage and reason, tag distributions as tables
(``report.json``, ``report.md``, ``tags.csv``) and PNG charts (``tags.png`` in the manner of the
paper's Figure 2, ``drops.png``), written next to the output."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from ..data.taxonomy import TAXONOMY

__all__ = ["summarize", "write_report"]


def summarize(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """Totals over manifest entries: rows in / kept / dropped, drops by stage and reason, tag
    counts per kind (taxonomy order, zeros included, plus other values), PHI spans by kind."""
    reasons: dict[str, Counter[str]] = {}
    tags: dict[str, Counter[str]] = {}
    phi: Counter[str] = Counter()
    for entry in entries:
        for stage, counts in entry.get("reasons", {}).items():
            reasons.setdefault(stage, Counter()).update(counts)
        for kind, counts in entry.get("tags", {}).items():
            tags.setdefault(kind, Counter()).update(counts)
        phi.update(entry.get("phi", {}))
    kept = sum(e["kept"] for e in entries)
    tag_table: dict[str, dict[str, int]] = {}
    for kind in list(TAXONOMY) + sorted(set(tags) - set(TAXONOMY)):
        counts = tags.get(kind, Counter())
        ordered = {v: counts.get(v, 0) for v in TAXONOMY.get(kind, ())}
        ordered.update({v: n for v, n in sorted(counts.items()) if v not in ordered})
        tag_table[kind] = ordered
    return {
        "shards": len(entries), "rows_in": sum(e["rows_in"] for e in entries), "kept": kept,
        "dropped": sum(e["dropped"] for e in entries), "dicom_files": sum(e.get("dicom_files", 0) for e in entries),
        "dropped_by_stage": {s: dict(sorted(c.items())) for s, c in sorted(reasons.items())},
        "tags": tag_table, "untagged": {k: kept - sum(tag_table[k].values()) for k in TAXONOMY},
        "phi_spans": dict(sorted(phi.items())), "llm_untagged": sum(e.get("llm_untagged", 0) for e in entries),
    }


def _markdown(summary: dict[str, Any]) -> str:
    lines = ["# Curation report", "", "| rows in | kept | dropped | shards | DICOM files |", "|---:|---:|---:|---:|---:|",
             f"| {summary['rows_in']} | {summary['kept']} | {summary['dropped']} | {summary['shards']} | {summary['dicom_files']} |",
             "", "## Dropped rows", "", "| stage | reason | rows |", "|---|---|---:|"]
    for stage, counts in summary["dropped_by_stage"].items():
        lines += [f"| {stage} | {reason} | {n} |" for reason, n in counts.items()]
    for kind, counts in summary["tags"].items():
        total = sum(counts.values()) or 1
        lines += ["", f"## {kind.capitalize()} tags", "", f"| {kind} | rows | share |", "|---|---:|---:|"]
        lines += [f"| {tag} | {n} | {100 * n / total:.1f}% |" for tag, n in counts.items()]
        if kind in summary["untagged"]:
            lines.append(f"| (untagged) | {summary['untagged'][kind]} | |")
    if summary["phi_spans"]:
        lines += ["", "## PHI spans scrubbed from text", "", "| kind | spans |", "|---|---:|"]
        lines += [f"| {k} | {n} |" for k, n in summary["phi_spans"].items()]
    return "\n".join(lines) + "\n"


def _charts(out: Path, summary: dict[str, Any]) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    kinds = list(TAXONOMY)
    fig, axes = plt.subplots(1, len(kinds), figsize=(6 * len(kinds), 5.5))
    for ax, kind in zip(axes, kinds):
        counts = summary["tags"][kind]
        labels, values = list(counts), list(counts.values())
        ax.barh(labels[::-1], values[::-1], color="#e8912d")
        ax.set_title(f"{kind} ({sum(values)} rows)")
        ax.set_xlabel("rows")
        for y, v in enumerate(values[::-1]):
            if v:
                ax.text(v, y, f" {v}", va="center", fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "tags.png", dpi=100)
    plt.close(fig)
    written.append("tags.png")
    bars = [(f"{stage}:{reason}", n) for stage, c in summary["dropped_by_stage"].items() for reason, n in c.items()]
    fig, ax = plt.subplots(figsize=(8, 0.4 * max(len(bars), 1) + 1.5))
    ax.barh([b[0] for b in bars][::-1] or ["(none)"], [b[1] for b in bars][::-1] or [0], color="#7a7a7a")
    ax.set_title(f"dropped rows by stage:reason ({summary['dropped']} of {summary['rows_in']})")
    fig.tight_layout()
    fig.savefig(out / "drops.png", dpi=100)
    plt.close(fig)
    written.append("drops.png")
    return written


def write_report(out_dir: str | Path, charts: bool = True) -> dict[str, Any]:
    """Write ``report.json``, ``report.md``, ``tags.csv`` and (``charts``) ``tags.png`` /
    ``drops.png`` into ``out_dir`` from its manifest; returns the summary."""
    from .pipeline import read_manifest

    out = Path(out_dir)
    summary = summarize(read_manifest(out))
    (out / "report.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False), encoding="utf-8")
    (out / "report.md").write_text(_markdown(summary), encoding="utf-8")
    rows = ["kind,tag,rows"] + [f"{kind},{tag},{n}" for kind, counts in summary["tags"].items() for tag, n in counts.items()]
    (out / "tags.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    if charts:
        summary["charts"] = _charts(out, summary)
    return summary

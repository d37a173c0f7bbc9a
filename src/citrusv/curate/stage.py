"""The stage interface: a stage takes a shard's rows and returns the rows it keeps and the rows it
drops, each dropped row with a reason (a short machine-readable code) and a detail (free text with
no patient data)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Drop", "RowStage", "Stage"]

Row = dict[str, Any]


@dataclass
class Drop:
    """One dropped row: the stage's ``name``, the ``reason`` code and a ``detail``."""

    row: Row
    stage: str
    reason: str
    detail: str = ""

    def record(self) -> dict[str, Any]:
        """The line written to ``dropped/<shard>.jsonl`` (identifiers only, never content)."""
        out = {"id": self.row.get("id"), "source": self.row.get("_source"), "stage": self.stage, "reason": self.reason}
        if self.detail:
            out["detail"] = self.detail
        return out


class Stage:
    """A pipeline stage. ``stateful`` stages (deduplication) run in the main process in shard order;
    the others run in workers and must be picklable or built from the config in the worker."""

    name = "stage"
    stateful = False

    def process(self, rows: list[Row]) -> tuple[list[Row], list[Drop]]:
        raise NotImplementedError


class RowStage(Stage):
    """A stage deciding each row alone: ``check(row)`` returns ``None`` to keep (it may modify the
    row in place) or ``(reason, detail)`` to drop."""

    def check(self, row: Row) -> tuple[str, str] | None:
        raise NotImplementedError

    def process(self, rows: list[Row]) -> tuple[list[Row], list[Drop]]:
        kept, dropped = [], []
        for row in rows:
            verdict = self.check(row)
            if verdict is None:
                kept.append(row)
            else:
                dropped.append(Drop(row, self.name, verdict[0], verdict[1]))
        return kept, dropped

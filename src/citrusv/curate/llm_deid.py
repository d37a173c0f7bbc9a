"""Optional curation stage: rewrite doctor–patient dialogues through an LLM without personal
information (``citrusv.enhance.deid.DialogueDeidentifier``: the prompt, the reply checks and the
drop reasons are shared with ``citrusv enhance deid``).

Runs before the rule-based scrubber (``TextDeidStage``), which then still scrubs whatever the
rewrite kept. Only rows with a user and an assistant message are sent, and by default only those
in which ``citrusv.curate.phi`` finds PHI: most rows carry none and cost no request. A rewrite that
fails a check drops the row with the enhancer's reason (``phi_remaining``, ``structure_changed``,
``medical_content_lost``, ``bad_reply``) so it is never kept half de-identified.
"""

from __future__ import annotations

from typing import Any

from .stage import Row, RowStage

__all__ = ["LLMDeidStage"]


class LLMDeidStage(RowStage):
    """Pipeline stage around a ``DialogueDeidentifier``; rewritten rows get ``_llm_deid = 1``.

    Args:
        deidentifier: ``citrusv.enhance.deid.DialogueDeidentifier``.
        only_with_phi: send only dialogues in which the rule-based finder sees PHI.
    """

    name = "llm_deid"

    def __init__(self, deidentifier: Any, only_with_phi: bool = True):
        self.deidentifier = deidentifier
        self.only_with_phi = only_with_phi

    def check(self, row: Row) -> tuple[str, str] | None:
        from ..data.schema import Sample
        from ..enhance.common import Unit
        from .phi import has_phi

        messages = row.get("messages") or []
        if not {"user", "assistant"} <= {m.get("role") for m in messages}:
            return None
        if self.only_with_phi and not any(has_phi(m.get("content", "")) for m in messages):
            return None
        sample = Sample(messages=[{"role": m["role"], "content": m.get("content", "")} for m in messages],
                        images=list(row.get("images") or []), id=str(row.get("id")))
        outcome = self.deidentifier(Unit(id=sample.id, tag="", source_ids=[sample.id], payload=sample))
        if outcome.row is None:
            return outcome.reason or "rewrite_failed", outcome.detail
        row["messages"] = outcome.row["messages"]
        row["_llm_deid"] = 1
        return None

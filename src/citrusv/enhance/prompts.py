"""Enhancement prompts: ``configs/prompts/enhance/<name>.v<N>.md`` (format: ``citrusv.llm.prompts``)."""

from __future__ import annotations

from pathlib import Path

from ..llm.prompts import PROMPTS_ROOT, PromptTemplate
from ..llm.prompts import load_prompt as _load_prompt

__all__ = ["PROMPT_DIR", "PromptTemplate", "load_prompt"]

#: ``configs/prompts/enhance`` of a source checkout.
PROMPT_DIR = PROMPTS_ROOT / "enhance"


def load_prompt(name: str, version: int | None = None, root: str | Path | None = None) -> PromptTemplate:
    """The enhancement prompt ``name`` at ``version`` (newest by default) from ``root``
    (default ``PROMPT_DIR``); see ``citrusv.llm.prompts.load_prompt``."""
    return _load_prompt(name, version, PROMPT_DIR if root is None else root)

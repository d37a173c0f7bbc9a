"""LLM judges on an OpenAI-compatible endpoint, with verdicts cached on disk.

The reference judges: GPT-4.1 at temperature 0.5 with up to 2048 tokens for VQA (JD Health's
MedEvalKit fork; upstream uses temperature 0), GPT-4o for MedDocBench. A judge is a plain
``JudgeFn`` (prompt → reply text), so metrics stay pure and tests pass scripted functions.
Cached replies make a re-score free and reproducible even at temperature 0.5; delete the cache
folder to ask again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .metrics.base import JudgeError, JudgeFn

__all__ = ["REFERENCE_JUDGE", "make_llm_judge"]

#: The reference's VQA judge settings (JD fork).
REFERENCE_JUDGE = {"model": "gpt-4.1", "temperature": 0.5, "max_tokens": 2048}


def make_llm_judge(base_url: str, model: str = REFERENCE_JUDGE["model"], *,
                   temperature: float = REFERENCE_JUDGE["temperature"],
                   max_tokens: int = REFERENCE_JUDGE["max_tokens"],
                   api_key: str | None = None, cache_dir: str | Path | None = None,
                   max_retries: int = 5, client: Any = None, **client_kwargs: Any) -> JudgeFn:
    """A judge that sends each prompt as one user message and returns the reply text.

    Failures that survive the client's retries raise ``JudgeError`` (the metrics count them as
    "incorrect", as the reference does after five failed calls). ``client`` reuses an existing
    ``LLMClient``; otherwise one is built from the other arguments.
    """
    from ..llm import LLMClient, LLMError

    llm = client or LLMClient(base_url, model, api_key=api_key, cache_dir=cache_dir, max_retries=max_retries,
                              **client_kwargs)

    def judge(prompt: str) -> str:
        try:
            return llm.chat([{"role": "user", "content": prompt}], temperature=temperature,
                            max_tokens=max_tokens).text or ""
        except LLMError as err:
            raise JudgeError(str(err)) from err

    def many(prompts: list[str]) -> list[str | JudgeError]:
        requests = [{"messages": [{"role": "user", "content": p}], "temperature": temperature,
                     "max_tokens": max_tokens} for p in prompts]
        results = llm.chat_many(requests, progress="judge") if requests else []
        return [JudgeError(str(r)) if isinstance(r, Exception) else (r.text or "") for r in results]

    judge.many = many  # type: ignore[attr-defined]  # concurrent requests (see metrics.base.judge_many)
    judge.client = llm  # type: ignore[attr-defined]  # usage / cost for the run summary
    return judge

"""Token and cost accounting: running totals per client and an optional JSONL log of calls."""

from __future__ import annotations

import json
import threading
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

__all__ = ["UsageMeter", "UsageSummary", "call_cost"]


def call_cost(prompt_tokens: int | None, completion_tokens: int | None,
              input_price_per_1m: float | None, output_price_per_1m: float | None) -> float | None:
    """The cost of one call in the prices' currency (USD by convention), or ``None`` when the
    prices or the token counts are unknown."""
    if input_price_per_1m is None or output_price_per_1m is None:
        return None
    if prompt_tokens is None or completion_tokens is None:
        return None
    return (prompt_tokens * input_price_per_1m + completion_tokens * output_price_per_1m) / 1e6


@dataclass(frozen=True)
class UsageSummary:
    """What a client has spent so far.

    Attributes:
        calls: requests answered by the endpoint (a request retried three times counts once).
        cache_hits: requests answered from the disk cache (no tokens, no cost).
        failures: requests that ended in an ``LLMError``.
        prompt_tokens, completion_tokens: summed over ``calls``, as the endpoint reported them.
        cost_usd: summed over ``calls``; ``None`` when the client has no prices.
        latency_s: summed wall time of ``calls`` and ``failures``, retries and backoff included.
    """

    calls: int = 0
    cache_hits: int = 0
    failures: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = None
    latency_s: float = 0.0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "total_tokens": self.total_tokens}

    def __str__(self) -> str:
        cost = "" if self.cost_usd is None else f", ${self.cost_usd:.4f}"
        return (f"{self.calls} calls, {self.cache_hits} cache hits, {self.failures} failures, "
                f"{self.prompt_tokens} prompt + {self.completion_tokens} completion tokens{cost}")


class UsageMeter:
    """Thread-safe running totals, and one JSONL row per request when ``log_path`` is set.

    Each row: ``time`` (UTC, ISO 8601), ``model`` (asked for), ``response_model`` (reported),
    ``prompt_tokens``, ``completion_tokens``, ``latency_s``, ``cached``, ``cost_usd`` (0 for a
    cache hit, ``null`` without prices), ``attempts``, ``finish_reason``, ``error`` (``null`` on
    success) and ``cache_key``. Cache hits get a row too (``cached: true``), so the log shows
    every answer a run used; their token counts are the stored ones and cost nothing.

    Args:
        log_path: the JSONL file (appended to; its folder is created), or ``None``.
        input_price_per_1m, output_price_per_1m: prices per million prompt / completion tokens;
            both or neither.

    Raises:
        ValueError: one price without the other, or a negative price.
    """

    def __init__(self, log_path: str | Path | None = None, input_price_per_1m: float | None = None,
                 output_price_per_1m: float | None = None):
        if (input_price_per_1m is None) != (output_price_per_1m is None):
            raise ValueError("give both input_price_per_1m and output_price_per_1m, or neither; got "
                             f"{input_price_per_1m!r} and {output_price_per_1m!r}")
        for name, price in (("input_price_per_1m", input_price_per_1m), ("output_price_per_1m", output_price_per_1m)):
            if price is not None and not price >= 0:
                raise ValueError(f"{name} must be >= 0, got {price!r}")
        self.log_path = None if log_path is None else Path(log_path)
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.input_price_per_1m, self.output_price_per_1m = input_price_per_1m, output_price_per_1m
        self._lock = threading.Lock()
        self._totals = UsageSummary(cost_usd=None if input_price_per_1m is None else 0.0)

    @property
    def summary(self) -> UsageSummary:
        with self._lock:
            return self._totals

    def record(self, *, model: str, response_model: str | None = None, prompt_tokens: int | None = None,
               completion_tokens: int | None = None, latency_s: float = 0.0, cached: bool = False,
               attempts: int = 0, finish_reason: str | None = None, error: str | None = None,
               cache_key: str | None = None) -> float | None:
        """Count one request and log its row; returns its cost."""
        cost = 0.0 if cached else call_cost(prompt_tokens, completion_tokens, self.input_price_per_1m,
                                            self.output_price_per_1m)
        if cached and self.input_price_per_1m is None:
            cost = None
        row = {
            "time": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
            "model": model, "response_model": response_model,
            "prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "latency_s": round(latency_s, 4), "cached": cached, "cost_usd": cost, "attempts": attempts,
            "finish_reason": finish_reason, "error": error, "cache_key": cache_key,
        }
        with self._lock:
            t = self._totals
            if error is not None:
                self._totals = UsageSummary(t.calls, t.cache_hits, t.failures + 1, t.prompt_tokens,
                                            t.completion_tokens, t.cost_usd, t.latency_s + latency_s)
            elif cached:
                self._totals = UsageSummary(t.calls, t.cache_hits + 1, t.failures, t.prompt_tokens,
                                            t.completion_tokens, t.cost_usd, t.latency_s)
            else:
                self._totals = UsageSummary(
                    t.calls + 1, t.cache_hits, t.failures, t.prompt_tokens + (prompt_tokens or 0),
                    t.completion_tokens + (completion_tokens or 0),
                    None if t.cost_usd is None else t.cost_usd + (cost or 0.0), t.latency_s + latency_s)
            if self.log_path is not None:
                # Opened per row: a crash loses at most the row being written, and several
                # processes can share one log (appends of one short line do not interleave).
                with open(self.log_path, "a", encoding="utf-8") as handle:
                    handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        return cost

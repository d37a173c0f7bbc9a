"""Logits processors that steer decoding: a forced token schedule (tests, benchmarks, answer
prefixes) and an additive bias on chosen tokens."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

__all__ = ["ForcedTokens", "TokenBias"]


class ForcedTokens:
    """Force the token at each generation step from a schedule.

    Args:
        schedule: token id per generated position; ``None`` leaves that step free.
        prompt_width: width of the (padded) prompt; when omitted, the width seen at the first call
            (so one instance serves one ``generate()`` call).
    """

    def __init__(self, schedule: Sequence[int | None], prompt_width: int | None = None):
        self.schedule = list(schedule)
        self.prompt_width = prompt_width

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self.prompt_width is None:
            self.prompt_width = input_ids.shape[1]
        step = input_ids.shape[1] - self.prompt_width
        if 0 <= step < len(self.schedule) and self.schedule[step] is not None:
            forced = torch.full_like(scores, float("-inf"))
            forced[:, self.schedule[step]] = 0.0
            return forced
        return scores


class TokenBias:
    """Add a constant to the logits of some tokens at every step (``{token_id: bias}``)."""

    def __init__(self, bias: Mapping[int, float]):
        self.ids = torch.tensor(list(bias), dtype=torch.long)
        self.values = torch.tensor(list(bias.values()), dtype=torch.float32)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        scores = scores.clone()
        scores[:, self.ids.to(scores.device)] += self.values.to(scores.device, scores.dtype)
        return scores

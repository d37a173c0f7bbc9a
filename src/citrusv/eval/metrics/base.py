"""Types shared by the metric modules."""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["JudgeError", "JudgeFn", "judge_many"]

#: A judge is any callable that sends one user prompt to a (language) model and returns the reply
#: text. Metrics take one so that they stay pure; ``citrusv.eval.judge`` builds one on an
#: OpenAI-compatible endpoint with a disk cache, and tests pass scripted functions.
JudgeFn = Callable[[str], str]


class JudgeError(RuntimeError):
    """The judge could not be reached or gave no usable reply (after its own retries)."""


def judge_many(judge: JudgeFn, prompts: list[str]) -> list[str | JudgeError]:
    """Replies for many prompts, in order; a failed prompt gives its ``JudgeError`` in place.

    A judge with a ``many`` attribute (``citrusv.eval.judge.make_llm_judge`` adds one that sends
    requests concurrently) answers all prompts at once; any other judge is called one by one.
    """
    many = getattr(judge, "many", None)
    if many is not None:
        return list(many(prompts))
    replies: list[str | JudgeError] = []
    for prompt in prompts:
        try:
            replies.append(judge(prompt))
        except JudgeError as err:
            replies.append(err)
    return replies

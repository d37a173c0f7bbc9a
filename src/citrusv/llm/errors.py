"""The errors of ``citrusv.llm``: one base class, so a batch can catch every endpoint failure.

``LLMError`` covers what can go wrong between asking an endpoint and holding a usable reply; bad
arguments (a non-http URL, a message without a role) stay ``ValueError`` / ``TypeError``, since
they are bugs in the caller, not endpoint failures.
"""

from __future__ import annotations

from typing import Any

__all__ = ["LLMAuthError", "LLMConnectionError", "LLMError", "LLMHTTPError", "LLMResponseError"]


def _clip(text: str, limit: int = 500) -> str:
    return text if len(text) <= limit else text[:limit] + f"... [{len(text) - limit} more characters]"


class LLMError(Exception):
    """Base class: the endpoint could not give a usable answer."""


class LLMHTTPError(LLMError):
    """The endpoint answered with an HTTP error status (after any retries).

    Attributes:
        status: the HTTP status code.
        message: the server's error message (``error.message`` of an OpenAI-style body, vLLM's
            ``message``, FastAPI's ``detail``, else the start of the body).
        body: the decoded JSON body, or the raw text when it is not JSON.
        attempts: how many requests were made, retries included.
    """

    def __init__(self, status: int, message: str, body: Any = None, attempts: int = 1):
        self.status, self.message, self.body, self.attempts = status, message, body, attempts
        tries = f" (after {attempts} attempts)" if attempts > 1 else ""
        super().__init__(f"HTTP {status}{tries}: {_clip(message) or '(no message)'}")


class LLMAuthError(LLMHTTPError):
    """401 / 403: the API key is missing, wrong or lacks access; never retried."""


class LLMConnectionError(LLMError):
    """No HTTP answer at all (connection refused, reset or timed out), after any retries.

    Attributes:
        attempts: how many requests were made, retries included.
    """

    def __init__(self, message: str, attempts: int = 1):
        self.attempts = attempts
        tries = f" (after {attempts} attempts)" if attempts > 1 else ""
        super().__init__(f"{message}{tries}")


class LLMResponseError(LLMError):
    """A reply arrived but cannot be used: not a chat completion, or no JSON where JSON was asked.

    Attributes:
        reason: what is wrong (``"no 'choices' in the response"``, ``"no JSON object found"``).
        text: the raw reply text (the assistant text, or the body when it was not JSON).
    """

    def __init__(self, reason: str, text: str | None = None):
        self.reason, self.text = reason, text
        super().__init__(reason if text is None else f"{reason}; reply was: {_clip(text)!r}")

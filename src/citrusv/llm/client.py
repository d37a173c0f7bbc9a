"""``LLMClient``: the one client for OpenAI-compatible chat endpoints (OpenAI, Azure-style proxies,
vLLM, SGLang, ``citrusv serve``).

One ``chat`` call is: build the request body, look it up in the disk cache, else take a
concurrency slot and a rate-limit token, POST ``/chat/completions``, retry what a retry can fix
(connection errors, timeouts, 408, 409, 429, 5xx) with exponential backoff and jitter or the
server's ``Retry-After``, check the reply is a chat completion, cache it, count its tokens and
cost. Other 4xx answers (a bad request, a wrong key) fail at once: repeating them cannot help.

``chat_many`` runs a list of requests on a thread pool of ``max_concurrency`` workers and returns
answers in input order, with the ``LLMError`` of a failed request in its slot so one bad request
does not sink a batch of thousands.
"""

from __future__ import annotations

import email.utils
import logging
import math
import os
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import httpx

from .cache import ResponseCache, request_key
from .errors import LLMAuthError, LLMConnectionError, LLMError, LLMHTTPError, LLMResponseError
from .jsonreply import extract_json
from .messages import Message, user_message
from .ratelimit import RateLimiter
from .usage import UsageMeter, UsageSummary

__all__ = ["RETRY_STATUSES", "ChatRequest", "ChatResult", "LLMClient", "parse_chat_completion"]

logger = logging.getLogger(__name__)

#: Statuses worth retrying: timeouts, conflicts, rate limits; every 5xx is retried as well.
RETRY_STATUSES = frozenset({408, 409, 429})
#: One item of ``chat_many``: a user text, a message list, or a mapping of ``chat`` arguments
#: (``{"messages": [...], "temperature": 0.5, ...}``).
ChatRequest = Union[str, Sequence[Message], Mapping[str, Any]]

_ROLES = frozenset({"system", "developer", "user", "assistant", "tool"})
_CHAT_ARGS = frozenset({"messages", "temperature", "max_tokens", "response_format", "seed", "stop", "extra_body"})
# Keys that ``extra_body`` may not set: they are arguments of ``chat`` (one place to set each)
# or, for ``stream``, a mode this client does not read.
_RESERVED = frozenset({"model", "messages", "temperature", "max_tokens", "response_format", "seed", "stop", "stream"})


@dataclass
class ChatResult:
    """One chat completion.

    Attributes:
        text: the first choice's assistant text (``""`` when the server sent ``null`` content).
        finish_reason: ``"stop"``, ``"length"`` (hit ``max_tokens``), ... as reported.
        prompt_tokens, completion_tokens: the server's ``usage`` counts; ``None`` if absent.
        model: the model name the server reported.
        cached: whether the answer came from the disk cache (no HTTP request was made).
        raw: the full response JSON.
        latency_s: wall time of the call, retries and backoff included (0 for a cache hit).
        attempts: HTTP requests made (0 for a cache hit).
        cache_key: the request's cache key, when the client has a cache.
    """

    text: str
    finish_reason: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    model: str | None
    cached: bool
    raw: dict[str, Any] = field(repr=False)
    latency_s: float = 0.0
    attempts: int = 0
    cache_key: str | None = field(default=None, repr=False)

    @property
    def texts(self) -> list[str]:
        """The text of every choice (more than one when the request set ``n``)."""
        return [_content_text(choice.get("message", {}).get("content")) for choice in self.raw["choices"]]

    @property
    def reasoning(self) -> str | None:
        """The separate reasoning text (``reasoning_content``) that vLLM's reasoning parsers
        and some providers return beside the answer, or ``None``."""
        message = self.raw["choices"][0].get("message", {})
        value = message.get("reasoning_content", message.get("reasoning"))
        return value if isinstance(value, str) else None


def _content_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    # Some servers return content as a list of parts, like the request format.
    return "".join(part.get("text", "") for part in content if isinstance(part, dict))


def parse_chat_completion(body: Any) -> tuple[str, str | None, int | None, int | None, str | None]:
    """Check a response body is a chat completion and read it.

    Returns:
        ``(text, finish_reason, prompt_tokens, completion_tokens, model)`` of the first choice.

    Raises:
        LLMResponseError: naming what is missing (``choices``, ``choices[0].message``, ...), or
            the error message when the body is an error object sent with status 200.
    """
    if not isinstance(body, dict):
        raise LLMResponseError(f"the response is a JSON {type(body).__name__}, not a chat completion object")
    if "choices" not in body:
        if "error" in body:
            raise LLMResponseError(f"the response has no 'choices' but an error: {_error_message(body)}")
        raise LLMResponseError(f"the response has no 'choices' (keys: {sorted(body)}); is this a chat "
                               "completions endpoint?")
    choices = body["choices"]
    if not isinstance(choices, list) or not choices:
        raise LLMResponseError(f"the response's 'choices' is empty or not a list: {choices!r}")
    first = choices[0]
    message = first.get("message") if isinstance(first, dict) else None
    if not isinstance(message, dict):
        raise LLMResponseError("the response has no 'choices[0].message' object")
    content = message.get("content")
    if not (content is None or isinstance(content, (str, list))):
        raise LLMResponseError(f"'choices[0].message.content' is {type(content).__name__}, not text")
    usage = body.get("usage") if isinstance(body.get("usage"), dict) else {}
    prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
    return (_content_text(content), first.get("finish_reason"),
            prompt if isinstance(prompt, int) else None, completion if isinstance(completion, int) else None,
            body.get("model") if isinstance(body.get("model"), str) else None)


def _error_message(body: Any) -> str:
    """The human part of an error body in the shapes OpenAI, vLLM and FastAPI use."""
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        if isinstance(error, str):
            return error
        for key in ("message", "detail"):
            if body.get(key):
                return str(body[key])
    return str(body)[:500]


def _retry_after_s(headers: httpx.Headers) -> float | None:
    """Seconds the server asks us to wait: OpenAI's ``retry-after-ms``, else ``Retry-After`` in
    seconds or as an HTTP date; ``None`` when absent or unreadable."""
    value = headers.get("retry-after-ms")
    if value is not None:
        try:
            return max(0.0, float(value) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class LLMClient:
    """A synchronous, thread-safe client for one model behind an OpenAI-compatible endpoint.

    Example::

        client = LLMClient("http://gpu-node:8000/v1", "Qwen2.5-VL-7B-Instruct", cache_dir="cache/llm")
        reply = client.chat([system_message("You are a radiologist."),
                             user_message("What organ is shown?", images=["ct.png"])])
        verdicts = client.chat_json_many(judge_prompts, expect=dict)

    Args:
        base_url: the API root, ``http(s)://host[:port]/v1`` (a trailing slash is ignored).
        model: the model name sent with every request (vLLM's ``--served-model-name``).
        api_key: sent as ``Authorization: Bearer``; ``None`` reads ``OPENAI_API_KEY`` (so set it
            to ``""`` to keep an OpenAI key away from a third-party host); ``""`` sends none.
        timeout: seconds per HTTP request (connect, read, write each), > 0.
        max_retries: retries after the first attempt, >= 0.
        backoff_base: first backoff in seconds, doubling per retry (with jitter: each wait is
            50-100 % of ``min(max_backoff, backoff_base * 2**retry)``), >= 0.
        max_backoff: cap on one wait, ``Retry-After`` included, > 0.
        requests_per_minute: HTTP requests per minute across all threads (retries count);
            ``None`` for no limit. Cache hits do not count.
        max_concurrency: requests in flight at once, across ``chat_many`` and any threads
            calling ``chat``, >= 1.
        cache_dir: folder of the disk cache (see ``citrusv.llm.cache``), or ``None`` for none.
        cache_namespace: mixed into cache keys; defaults to ``base_url``, so two servers that
            serve different checkpoints under one model name never share answers. Give two
            clients the same namespace to share a cache across endpoints of one model. When a
            URL starts serving another checkpoint under the same name, change the namespace.
        usage_log: JSONL file getting one row per request (see ``UsageMeter``), or ``None``.
        input_price_per_1m, output_price_per_1m: prices per million prompt / completion tokens,
            for ``usage.cost_usd``; both or neither.
        headers: extra HTTP headers (an ``api-key`` header for Azure, an organisation id).

    Raises:
        ValueError: an argument out of range, named in the message.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        timeout: float = 120.0,
        max_retries: int = 5,
        backoff_base: float = 1.0,
        max_backoff: float = 60.0,
        requests_per_minute: float | None = None,
        max_concurrency: int = 8,
        cache_dir: str | Path | None = None,
        cache_namespace: str | None = None,
        usage_log: str | Path | None = None,
        input_price_per_1m: float | None = None,
        output_price_per_1m: float | None = None,
        headers: Mapping[str, str] | None = None,
    ):
        if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must start with http:// or https://, got {base_url!r}")
        if not isinstance(model, str) or not model:
            raise ValueError(f"model must be a non-empty string, got {model!r}")
        if not (isinstance(timeout, (int, float)) and timeout > 0):
            raise ValueError(f"timeout must be > 0 seconds, got {timeout!r}")
        if not (isinstance(max_retries, int) and max_retries >= 0):
            raise ValueError(f"max_retries must be an integer >= 0, got {max_retries!r}")
        if not (isinstance(backoff_base, (int, float)) and backoff_base >= 0):
            raise ValueError(f"backoff_base must be >= 0 seconds, got {backoff_base!r}")
        if not (isinstance(max_backoff, (int, float)) and max_backoff > 0):
            raise ValueError(f"max_backoff must be > 0 seconds, got {max_backoff!r}")
        if requests_per_minute is not None and not (
                isinstance(requests_per_minute, (int, float)) and math.isfinite(requests_per_minute)
                and requests_per_minute > 0):
            raise ValueError(f"requests_per_minute must be > 0 or None, got {requests_per_minute!r}")
        if not (isinstance(max_concurrency, int) and max_concurrency >= 1):
            raise ValueError(f"max_concurrency must be an integer >= 1, got {max_concurrency!r}")

        self.base_url = base_url.rstrip("/")
        self.model = model
        self.timeout = float(timeout)
        self.max_retries = max_retries
        self.backoff_base = float(backoff_base)
        self.max_backoff = float(max_backoff)
        self.max_concurrency = max_concurrency
        self.cache_namespace = self.base_url if cache_namespace is None else cache_namespace
        self.cache = None if cache_dir is None else ResponseCache(cache_dir)
        self.rate_limiter = None if requests_per_minute is None else RateLimiter(requests_per_minute)
        self._meter = UsageMeter(usage_log, input_price_per_1m, output_price_per_1m)
        self._slots = threading.BoundedSemaphore(max_concurrency)
        self._random = random.Random()
        self._warned: set[str] = set()
        self._warn_lock = threading.Lock()

        api_key = os.environ.get("OPENAI_API_KEY", "") if api_key is None else api_key
        all_headers = {"User-Agent": "citrusv-llm", **(headers or {})}
        if api_key:
            all_headers["Authorization"] = f"Bearer {api_key}"
        self._http = httpx.Client(
            headers=all_headers,
            timeout=httpx.Timeout(self.timeout),
            limits=httpx.Limits(max_connections=max_concurrency, max_keepalive_connections=max_concurrency),
        )

    # ----------------------------------------------------------------------------- properties

    @property
    def usage(self) -> UsageSummary:
        """Calls, cache hits, failures, tokens and cost so far (thread-safe snapshot)."""
        return self._meter.summary

    @property
    def usage_log(self) -> Path | None:
        return self._meter.log_path

    def __repr__(self) -> str:  # never shows the API key
        return f"LLMClient(base_url={self.base_url!r}, model={self.model!r})"

    # ----------------------------------------------------------------------------- requests

    def build_request(
        self,
        messages: str | Sequence[Message],
        *,
        temperature: float | None = 0.0,
        max_tokens: int | None = None,
        response_format: Mapping[str, Any] | None = None,
        seed: int | None = None,
        stop: str | Sequence[str] | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The JSON body ``chat`` would send (also what the cache key is made of); see ``chat``.

        Raises:
            ValueError, TypeError: as ``chat``.
        """
        if isinstance(messages, str):
            messages = [user_message(messages)]
        if not isinstance(messages, Sequence) or not messages:
            raise ValueError(f"messages must be a non-empty list of message dicts, got {messages!r:.200}")
        for index, message in enumerate(messages):
            if not isinstance(message, Mapping):
                raise TypeError(f"messages[{index}] must be a dict, got {type(message).__name__}")
            if message.get("role") not in _ROLES:
                raise ValueError(f"messages[{index}] has role {message.get('role')!r}; expected one of {sorted(_ROLES)}")
            if "content" not in message:
                raise ValueError(f"messages[{index}] has no 'content'")
            content = message["content"]
            if not (content is None or isinstance(content, (str, list))):
                raise TypeError(f"messages[{index}]['content'] must be a string or a list of parts, "
                                f"got {type(content).__name__}")
        body: dict[str, Any] = {"model": self.model, "messages": [dict(m) for m in messages]}
        if temperature is not None:
            if isinstance(temperature, bool) or not (isinstance(temperature, (int, float)) and temperature >= 0):
                raise ValueError(f"temperature must be >= 0 or None, got {temperature!r}")
            body["temperature"] = float(temperature)
        if max_tokens is not None:
            if isinstance(max_tokens, bool) or not (isinstance(max_tokens, int) and max_tokens >= 1):
                raise ValueError(f"max_tokens must be an integer >= 1 or None, got {max_tokens!r}")
            body["max_tokens"] = max_tokens
        if response_format is not None:
            if not isinstance(response_format, Mapping) or "type" not in response_format:
                raise ValueError(f"response_format must be a dict with a 'type', got {response_format!r}")
            body["response_format"] = dict(response_format)
        if seed is not None:
            if isinstance(seed, bool) or not isinstance(seed, int):
                raise ValueError(f"seed must be an integer or None, got {seed!r}")
            body["seed"] = seed
        if stop is not None:
            stops = [stop] if isinstance(stop, str) else list(stop)
            if not stops or not all(isinstance(s, str) and s for s in stops):
                raise ValueError(f"stop must be a non-empty string or list of them, got {stop!r}")
            body["stop"] = stops
        if extra_body:
            clash = sorted(_RESERVED & set(extra_body))
            if clash:
                raise ValueError(f"extra_body may not set {clash}: pass them as arguments of chat "
                                 "(streaming is not supported)")
            body.update(extra_body)
        return body

    def chat(
        self,
        messages: str | Sequence[Message],
        *,
        temperature: float | None = 0.0,
        max_tokens: int | None = None,
        response_format: Mapping[str, Any] | None = None,
        seed: int | None = None,
        stop: str | Sequence[str] | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> ChatResult:
        """One chat completion, from the cache when it holds this exact request.

        Args:
            messages: OpenAI chat messages (build them with ``user_message``, ``system_message``);
                a string is one user message.
            temperature: sampling temperature, >= 0; ``None`` leaves it out (OpenAI's reasoning
                models reject it). A cached answer is returned whatever the temperature (see
                ``citrusv.llm.cache``).
            max_tokens: completion length cap (OpenAI's reasoning models want
                ``extra_body={"max_completion_tokens": n}`` instead).
            response_format: e.g. ``{"type": "json_object"}`` or a ``json_schema`` format.
            seed: sampling seed, for servers that honour it.
            stop: stop string(s).
            extra_body: further body fields (``top_p``, ``n``, vLLM's ``chat_template_kwargs``,
                ``mm_processor_kwargs``); they are part of the cache key.

        Raises:
            LLMHTTPError: an error status that was not retried or outlived the retries
                (``LLMAuthError`` for 401 / 403).
            LLMConnectionError: no answer after the retries.
            LLMResponseError: the answer is not a chat completion.
            ValueError, TypeError: malformed messages or arguments.
        """
        body = self.build_request(messages, temperature=temperature, max_tokens=max_tokens,
                                  response_format=response_format, seed=seed, stop=stop, extra_body=extra_body)
        return self._complete(body)

    def chat_json(
        self,
        messages: str | Sequence[Message],
        *,
        json_mode: bool = True,
        expect: type | None = None,
        **kwargs: Any,
    ) -> Any:
        """A chat answer parsed as JSON: the first object or array in the reply.

        Fences (```json), prose around the JSON and ``<think>`` blocks are tolerated (see
        ``extract_json``). A reply without JSON is removed from the cache before raising, so a
        rerun asks again instead of replaying the bad answer. For the ``ChatResult`` too (usage,
        ``cached``), call ``chat`` and ``extract_json(result.text)``.

        Args:
            messages: as ``chat``. OpenAI's JSON mode requires the word "JSON" in them.
            json_mode: send ``response_format={"type": "json_object"}`` unless a
                ``response_format`` is given; turn off for servers without JSON mode.
            expect: ``dict`` or ``list`` to accept only that kind; ``None`` accepts both.
            **kwargs: the other arguments of ``chat``.

        Raises:
            LLMResponseError: no JSON in the reply; ``.text`` holds the reply.
            LLMError, ValueError, TypeError: as ``chat``.
        """
        if json_mode and kwargs.get("response_format") is None:
            kwargs["response_format"] = {"type": "json_object"}
        result = self.chat(messages, **kwargs)
        return self._parse_json(result, expect)

    def chat_many(self, requests: Sequence[ChatRequest], *, progress: bool | str = True) -> list[ChatResult | LLMError]:
        """Many chats at once, ``max_concurrency`` in flight, answers in input order.

        Every request is checked before any is sent, so a malformed one fails the call before
        money is spent. A request that fails at the endpoint yields its ``LLMError`` in its slot;
        any other exception (a bug) cancels the rest and is raised.

        Args:
            requests: user texts, message lists or mappings of ``chat`` arguments.
            progress: a tqdm bar (shown only on a terminal); a string is its description.

        Raises:
            ValueError, TypeError: a malformed request, with its index.
        """
        bodies = self._bodies(requests)
        return self._run_many(self._complete, bodies, progress)

    def chat_json_many(self, requests: Sequence[ChatRequest], *, json_mode: bool = True, expect: type | None = None,
                       progress: bool | str = True) -> list[Any | LLMError]:
        """``chat_json`` over many requests, like ``chat_many``: parsed values in input order, an
        ``LLMError`` (``LLMResponseError`` for a reply without JSON) in the slot of a failure."""
        if expect not in (None, dict, list):
            raise ValueError(f"expect must be dict, list or None, got {expect!r}")
        bodies = self._bodies(requests, json_mode=json_mode)
        return self._run_many(lambda body: self._parse_json(self._complete(body), expect), bodies, progress)

    def list_models(self) -> list[str]:
        """The model ids the endpoint serves (``GET /models``), e.g. to find vLLM's served name.

        Raises:
            LLMError: as ``chat``; ``LLMResponseError`` when the body is not a model list.
        """
        body, _ = self._send("GET", "/models", None)
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, list):
            raise LLMResponseError("the /models response has no 'data' list")
        return [item["id"] for item in data if isinstance(item, dict) and "id" in item]

    def close(self) -> None:
        """Close the HTTP connections."""
        self._http.close()

    def __enter__(self) -> LLMClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----------------------------------------------------------------------------- internals

    def _bodies(self, requests: Sequence[ChatRequest], json_mode: bool = False) -> list[dict[str, Any]]:
        if isinstance(requests, (str, Mapping)) or not isinstance(requests, Sequence):
            raise TypeError(f"requests must be a list of requests, got {type(requests).__name__}")
        bodies = []
        for index, request in enumerate(requests):
            if isinstance(request, Mapping):
                unknown = sorted(set(request) - _CHAT_ARGS)
                if unknown or "messages" not in request:
                    raise ValueError(f"requests[{index}]: a mapping needs 'messages' and only chat arguments "
                                     f"{sorted(_CHAT_ARGS)}; unknown {unknown}")
                kwargs = dict(request)
            else:
                kwargs = {"messages": request}
            if json_mode and kwargs.get("response_format") is None:
                kwargs["response_format"] = {"type": "json_object"}
            try:
                bodies.append(self.build_request(**kwargs))
            except (ValueError, TypeError) as err:
                raise type(err)(f"requests[{index}]: {err}") from None
        return bodies

    def _run_many(self, fn: Callable[[dict[str, Any]], Any], bodies: list[dict[str, Any]],
                  progress: bool | str) -> list[Any]:
        results: list[Any] = [None] * len(bodies)
        if not bodies:
            return results
        from tqdm.auto import tqdm

        # disable=None lets tqdm hide the bar when stderr is not a terminal (logs, CI).
        bar = tqdm(total=len(bodies), desc=progress if isinstance(progress, str) else None,
                   disable=None if progress else True, unit="req")
        executor = ThreadPoolExecutor(max_workers=min(self.max_concurrency, len(bodies)),
                                      thread_name_prefix="citrusv-llm")
        try:
            futures: dict[Future, int] = {executor.submit(fn, body): i for i, body in enumerate(bodies)}
            pending = set(futures)
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    error = future.exception()
                    if error is not None and not isinstance(error, LLMError):
                        raise error
                    results[futures[future]] = error if error is not None else future.result()
                    bar.update(1)
        finally:
            # On a bug or Ctrl-C, drop the queued requests instead of sending them.
            executor.shutdown(wait=True, cancel_futures=True)
            bar.close()
        return results

    def _parse_json(self, result: ChatResult, expect: type | None) -> Any:
        try:
            return extract_json(result.text, expect)
        except LLMResponseError:
            if self.cache is not None and result.cache_key is not None:
                self.cache.delete(result.cache_key)
            raise

    def _complete(self, body: dict[str, Any]) -> ChatResult:
        key = None
        if self.cache is not None:
            key = request_key(self.cache_namespace, body)
            stored = self.cache.get(key)
            if stored is not None:
                try:
                    text, finish, prompt, completion, model = parse_chat_completion(stored)
                except LLMResponseError as err:  # only complete answers are stored; be safe anyway
                    logger.warning("cache entry %s is not a chat completion (%s); asking again", key, err)
                else:
                    self._meter.record(model=self.model, response_model=model, prompt_tokens=prompt,
                                       completion_tokens=completion, cached=True, finish_reason=finish,
                                       cache_key=key)
                    return ChatResult(text, finish, prompt, completion, model, True, stored, 0.0, 0, key)
        start = time.monotonic()
        attempts = 0
        try:
            response, attempts = self._send("POST", "/chat/completions", body)
            text, finish, prompt, completion, model = parse_chat_completion(response)
        except LLMError as err:
            self._meter.record(model=self.model, latency_s=time.monotonic() - start,
                               attempts=getattr(err, "attempts", attempts), error=str(err), cache_key=key)
            raise
        latency = time.monotonic() - start
        if key is not None:
            try:
                self.cache.put(key, response)
            except OSError as err:  # the answer is good and paid for; a full disk should not lose it
                self._warn_once("cache-write", "cannot write the LLM cache (%s); answers are not being cached", err)
        self._meter.record(model=self.model, response_model=model, prompt_tokens=prompt, completion_tokens=completion,
                           latency_s=latency, attempts=attempts, finish_reason=finish, cache_key=key)
        return ChatResult(text, finish, prompt, completion, model, False, response, latency, attempts, key)

    def _send(self, method: str, path: str, body: dict[str, Any] | None) -> tuple[Any, int]:
        """One logical request with retries; returns the decoded JSON body and the attempts."""
        url = self.base_url + path
        attempts = 0
        while True:
            attempts += 1
            retry_after = None
            with self._slots:
                if self.rate_limiter is not None:
                    self.rate_limiter.acquire()
                try:
                    response = self._http.request(method, url, json=body)
                except httpx.TransportError as err:  # connection refused / reset, timeouts
                    failure: LLMError = LLMConnectionError(
                        f"{type(err).__name__} on {method} {url}: {str(err) or 'no detail'}", attempts)
                    retryable = True
                else:
                    if response.is_success:
                        try:
                            return response.json(), attempts
                        except ValueError:
                            raise LLMResponseError(f"{method} {url} answered {response.status_code} with a "
                                                   "body that is not JSON", response.text) from None
                    failure = self._status_error(response, attempts)
                    status = response.status_code
                    retryable = status in RETRY_STATUSES or status >= 500
                    retry_after = _retry_after_s(response.headers)
            if not retryable or attempts > self.max_retries:
                raise failure
            delay = self._backoff(attempts, retry_after)
            self._warn_once(type(failure).__name__ + str(getattr(failure, "status", "")),
                            "%s; retrying in %.2f s (attempt %d of %d)", failure, delay, attempts + 1,
                            self.max_retries + 1)
            time.sleep(delay)

    @staticmethod
    def _status_error(response: httpx.Response, attempts: int) -> LLMHTTPError:
        try:
            body: Any = response.json()
        except ValueError:
            body = response.text
        message = _error_message(body) if body not in ("", None) else response.reason_phrase
        cls = LLMAuthError if response.status_code in (401, 403) else LLMHTTPError
        return cls(response.status_code, message, body, attempts)

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            # At least what the server asked for; a little jitter so threads told the same
            # Retry-After do not all come back in the same millisecond.
            return min(self.max_backoff, retry_after * (1.0 + 0.1 * self._random.random()))
        ceiling = min(self.max_backoff, self.backoff_base * 2.0 ** (attempt - 1))
        return ceiling * (0.5 + 0.5 * self._random.random())

    def _warn_once(self, reason: str, msg: str, *args: Any) -> None:
        with self._warn_lock:
            first = reason not in self._warned
            self._warned.add(reason)
        logger.log(logging.WARNING if first else logging.DEBUG, msg, *args)

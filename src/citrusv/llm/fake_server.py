"""A local OpenAI-compatible server for tests: real HTTP on 127.0.0.1, replies scripted in Python.

Tests of anything that talks to an LLM (judges, synthesis, enhancement) point an ``LLMClient`` at
it instead of a network service::

    from citrusv.llm import LLMClient
    from citrusv.llm.fake_server import FakeOpenAIServer, FakeReply, scripted

    with FakeOpenAIServer(scripted([FakeReply.error(429, retry_after=0.1), '{"score": 4}'])) as server:
        client = LLMClient(server.base_url, "judge", backoff_base=0.01)
        assert client.chat_json("Rate it, as JSON.") == {"score": 4}
        assert len(server.requests) == 2

The ``handler`` gets each ``POST /v1/chat/completions`` body (a dict) and returns:

* a ``str``: the assistant text; the server wraps it in a chat completion whose ``usage`` counts
  whitespace-separated words (prompt: the text of every message; images count nothing);
* a ``dict``: the whole response body, sent as is with status 200 (to test malformed replies);
* a ``FakeReply``: status, body, headers and a delay, to script errors and slow answers.

A handler that raises produces a 500, and the exception is kept in ``handler_errors``; leaving
the ``with`` block then raises it (``raise_handler_errors``), so a bug in a test's handler does
not hide behind the client's retries. ``scripted`` (replies in order) and ``routed`` (replies by
a substring of the last user message) build handlers; ``last_user_text``, ``image_urls`` and
``decode_data_url`` help write them.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Union

__all__ = [
    "FakeOpenAIServer",
    "FakeReply",
    "RecordedRequest",
    "decode_data_url",
    "echo",
    "image_urls",
    "last_user_text",
    "routed",
    "scripted",
]

logger = logging.getLogger(__name__)


@dataclass
class FakeReply:
    """A scripted reply.

    Attributes:
        text: assistant text, wrapped in a chat completion (with ``usage``) like a ``str`` reply.
        status: HTTP status.
        body: the body instead of ``text``: a dict or list (sent as JSON) or a str (sent raw, to
            test non-JSON answers). With neither ``text`` nor ``body``, an error status gets an
            OpenAI-style error body and 200 gets an empty completion.
        headers: extra response headers (``{"Retry-After": "1"}``).
        delay: seconds to wait before answering (to test timeouts and concurrency).
        finish_reason: of the wrapped completion.
    """

    text: str | None = None
    status: int = 200
    body: dict[str, Any] | list[Any] | str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0
    finish_reason: str = "stop"

    @classmethod
    def error(cls, status: int, message: str | None = None, *, retry_after: float | None = None,
              delay: float = 0.0) -> FakeReply:
        """An error in OpenAI's shape, ``{"error": {"message": ..., "type": ..., "code": status}}``,
        with a ``Retry-After`` header when ``retry_after`` is given."""
        message = message or f"fake error {status}"
        headers = {} if retry_after is None else {"Retry-After": f"{retry_after:g}"}
        body = {"error": {"message": message, "type": "fake_error", "param": None, "code": status}}
        return cls(status=status, body=body, headers=headers, delay=delay)


Reply = Union[str, dict, FakeReply]
Handler = Callable[[dict[str, Any]], Reply]


@dataclass(frozen=True)
class RecordedRequest:
    """One HTTP request the server received.

    Attributes:
        method, path: ``"POST"``, ``"/v1/chat/completions"``.
        headers: request headers, names lower-cased.
        json: the decoded body (``None`` without one, the raw text when it is not JSON).
        time: ``time.monotonic()`` at arrival.
    """

    method: str
    path: str
    headers: dict[str, str]
    json: Any
    time: float


# ----------------------------------------------------------------------------- handler helpers


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


def last_user_text(request: Mapping[str, Any]) -> str:
    """The text of the last user message of a chat request (text parts joined by newlines)."""
    for message in reversed(request.get("messages") or []):
        if isinstance(message, dict) and message.get("role") == "user":
            return _text_of(message.get("content"))
    return ""


def image_urls(request: Mapping[str, Any]) -> list[str]:
    """Every ``image_url`` URL in a chat request, in message order."""
    urls = []
    for message in request.get("messages") or []:
        content = message.get("content") if isinstance(message, dict) else None
        for part in content if isinstance(content, list) else []:
            if isinstance(part, dict) and part.get("type") == "image_url":
                image_url = part.get("image_url")
                urls.append(image_url.get("url") if isinstance(image_url, dict) else image_url)
    return urls


def decode_data_url(url: str) -> tuple[str, bytes]:
    """``(mime, data)`` of a base64 ``data:`` URL.

    Raises:
        ValueError: not a base64 data URL.
    """
    if not isinstance(url, str) or not url.startswith("data:") or ";base64," not in url:
        raise ValueError(f"not a base64 data URL: {str(url)[:60]!r}")
    header, payload = url[5:].split(";base64,", 1)
    try:
        return header, base64.b64decode(payload, validate=True)
    except binascii.Error as err:
        raise ValueError(f"bad base64 in data URL: {err}") from None


def echo(request: Mapping[str, Any]) -> str:
    """The default handler: answers with the last user text."""
    return last_user_text(request)


def scripted(replies: Iterable[Reply]) -> Handler:
    """A handler giving ``replies`` in order, one per request (retries included).

    Once they run out, a request makes the handler raise ``IndexError`` (a 500, and an error
    when the server's ``with`` block exits).
    """
    queue = list(replies)
    lock = threading.Lock()
    counter = itertools.count()

    def handler(request: dict[str, Any]) -> Reply:
        with lock:
            index = next(counter)
        if index >= len(queue):
            raise IndexError(f"scripted handler: request {index + 1} but only {len(queue)} replies were scripted")
        return queue[index]

    return handler


def routed(routes: Mapping[str, Reply | Handler], default: Reply | Handler | None = None) -> Handler:
    """A handler choosing its reply by a substring of the last user message.

    Args:
        routes: substring -> reply (str, dict, ``FakeReply``) or handler; the first key (in
            insertion order) found in the last user text wins.
        default: the reply or handler when no key matches; ``None`` makes the handler raise
            ``LookupError`` (a 500, and an error when the server's ``with`` block exits).
    """
    table = dict(routes)

    def answer(choice: Reply | Handler, request: dict[str, Any]) -> Reply:
        return choice(request) if callable(choice) else choice

    def handler(request: dict[str, Any]) -> Reply:
        text = last_user_text(request)
        for needle, choice in table.items():
            if needle in text:
                return answer(choice, request)
        if default is None:
            raise LookupError(f"routed handler: no route matches the user text {text[:200]!r}")
        return answer(default, request)

    return handler


# ----------------------------------------------------------------------------- the server


def _count_words(request: Mapping[str, Any]) -> int:
    return sum(len(_text_of(m.get("content")).split()) for m in request.get("messages") or [] if isinstance(m, dict))


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True  # a request still sleeping in its delay does not hold up stop()
    fake: FakeOpenAIServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that timed out and hung up makes the reply fail with a broken pipe; that is
        # the expected end of a timeout test, not something to print. (socketserver calls this
        # inside its except block, so exc_info is there.)
        logger.debug("fake server: error answering %s", client_address, exc_info=True)  # noqa: LOG014


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like real servers
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("fake server: " + format, *args)

    def do_GET(self) -> None:
        self.server.fake._serve(self, "GET")

    def do_POST(self) -> None:
        self.server.fake._serve(self, "POST")


class FakeOpenAIServer:
    """An OpenAI-compatible server on ``127.0.0.1`` (an ephemeral port) in a background thread.

    Serves ``POST /v1/chat/completions`` (via ``handler``) and ``GET /v1/models``. Use it as a
    context manager, or call ``start`` and ``stop``.

    Args:
        handler: request dict -> reply (see the module docstring); a non-callable reply is given
            to every request; ``None`` echoes the last user text.
        api_key: when set, requests without ``Authorization: Bearer <api_key>`` get 401.
        models: the ids ``GET /v1/models`` lists.
        raise_handler_errors: leaving the ``with`` block re-raises the first exception the
            handler raised (as ``RuntimeError``), unless the block itself raised.

    Attributes:
        base_url: ``http://127.0.0.1:<port>/v1`` once started.
    """

    def __init__(self, handler: Handler | Reply | None = None, *, api_key: str | None = None,
                 models: Iterable[str] = ("fake-model",), raise_handler_errors: bool = True):
        if handler is None:
            handler = echo
        elif not callable(handler):
            constant = handler
            handler = lambda request: constant  # one reply for every request
        self.handler: Handler = handler
        self.api_key = api_key
        self.models = list(models)
        self.raise_handler_errors = raise_handler_errors
        self._lock = threading.Lock()
        self._calls: list[RecordedRequest] = []
        self._handler_errors: list[BaseException] = []
        self._ids = itertools.count(1)
        self._stopping = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ----------------------------------------------------------------------------- lifecycle

    def start(self) -> FakeOpenAIServer:
        """Bind a free port and serve in a daemon thread; returns ``self``.

        Raises:
            RuntimeError: already started.
        """
        if self._httpd is not None:
            raise RuntimeError("FakeOpenAIServer is already running")
        self._stopping.clear()
        self._httpd = _HTTPServer(("127.0.0.1", 0), _RequestHandler)
        self._httpd.fake = self
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fake-openai-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and free the port (requests still in their ``delay`` end early)."""
        if self._httpd is None:
            return
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd, self._thread = None, None

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self.stop()
        errors = self.handler_errors
        if exc_type is None and errors and self.raise_handler_errors:
            raise RuntimeError(f"the fake server's handler raised {len(errors)} time(s); first: "
                               f"{type(errors[0]).__name__}: {errors[0]}") from errors[0]

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("FakeOpenAIServer is not running; use it in a with block or call start()")
        return self._httpd.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    # ----------------------------------------------------------------------------- records

    @property
    def calls(self) -> list[RecordedRequest]:
        """Every HTTP request received, in arrival order (a copy)."""
        with self._lock:
            return list(self._calls)

    @property
    def requests(self) -> list[Any]:
        """The body of every ``POST /v1/chat/completions``, in arrival order, whatever the reply
        (401s and scripted errors included) (a copy)."""
        return [c.json for c in self.calls if c.method == "POST" and c.path == "/v1/chat/completions"]

    @property
    def request_times(self) -> list[float]:
        """``time.monotonic()`` at the arrival of each chat request, matching ``requests``."""
        return [c.time for c in self.calls if c.method == "POST" and c.path == "/v1/chat/completions"]

    @property
    def handler_errors(self) -> list[BaseException]:
        """Exceptions the handler raised (each answered with a 500) (a copy)."""
        with self._lock:
            return list(self._handler_errors)

    def clear(self) -> None:
        """Forget the recorded requests and handler errors."""
        with self._lock:
            self._calls.clear()
            self._handler_errors.clear()

    # ----------------------------------------------------------------------------- serving

    def _serve(self, http: _RequestHandler, method: str) -> None:
        length = int(http.headers.get("Content-Length") or 0)
        raw = http.rfile.read(length) if length else b""
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        path = http.path.split("?", 1)[0].rstrip("/")
        headers = {k.lower(): v for k, v in http.headers.items()}
        with self._lock:
            self._calls.append(RecordedRequest(method, path, headers, body, time.monotonic()))

        if self.api_key is not None and headers.get("authorization") != f"Bearer {self.api_key}":
            self._send(http, FakeReply(status=401, body={"error": {
                "message": "Incorrect API key provided", "type": "invalid_request_error", "param": None,
                "code": "invalid_api_key"}}))
        elif method == "GET" and path == "/v1/models":
            data = [{"id": m, "object": "model", "created": 0, "owned_by": "fake"} for m in self.models]
            self._send(http, FakeReply(body={"object": "list", "data": data}))
        elif method == "POST" and path == "/v1/chat/completions":
            self._send(http, self._answer(body), body)
        else:
            self._send(http, FakeReply.error(404, f"no route {method} {path} on the fake server"))

    def _answer(self, request: Any) -> FakeReply:
        if not isinstance(request, dict) or not isinstance(request.get("messages"), list):
            return FakeReply.error(400, "the body must be a JSON object with a 'messages' list")
        if request.get("stream"):
            return FakeReply.error(400, "FakeOpenAIServer does not stream")
        try:
            reply = self.handler(request)
        except Exception as err:  # noqa: BLE001 - answered as a 500 and re-raised by __exit__
            with self._lock:
                self._handler_errors.append(err)
            return FakeReply.error(500, f"fake server handler raised {type(err).__name__}: {err}")
        if isinstance(reply, str):
            return FakeReply(text=reply)
        if isinstance(reply, dict):
            return FakeReply(body=reply)
        if isinstance(reply, FakeReply):
            return reply
        err = TypeError(f"the handler returned {type(reply).__name__}; expected str, dict or FakeReply")
        with self._lock:
            self._handler_errors.append(err)
        return FakeReply.error(500, str(err))

    def _completion(self, reply: FakeReply, request: dict[str, Any]) -> dict[str, Any]:
        text = reply.text or ""
        prompt, completion = _count_words(request), len(text.split())
        return {
            "id": f"chatcmpl-fake-{next(self._ids)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": request.get("model", "fake-model"),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                         "finish_reason": reply.finish_reason, "logprobs": None}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                      "total_tokens": prompt + completion},
        }

    def _send(self, http: _RequestHandler, reply: FakeReply, request: Any = None) -> None:
        if reply.delay > 0 and self._stopping.wait(reply.delay):
            http.close_connection = True  # stopping: drop the connection rather than keep a test waiting
            return
        if reply.body is not None:
            payload = reply.body
        elif reply.status < 400 and isinstance(request, dict):
            payload = self._completion(reply, request)
        else:
            payload = FakeReply.error(reply.status).body
        if isinstance(payload, str):
            data, content_type = payload.encode("utf-8"), "text/plain; charset=utf-8"
        else:
            data, content_type = json.dumps(payload).encode("utf-8"), "application/json"
        try:
            http.send_response(reply.status)
            http.send_header("Content-Type", content_type)
            http.send_header("Content-Length", str(len(data)))
            for name, value in reply.headers.items():
                http.send_header(name, value)
            http.end_headers()
            http.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            logger.debug("fake server: the client hung up before the reply")

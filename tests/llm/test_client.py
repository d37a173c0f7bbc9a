"""LLMClient against the local fake server: round trips, retries, cache, concurrency, accounting."""

from __future__ import annotations

import io
import itertools
import json
import socket
import threading
import time

import pytest
from PIL import Image

from citrusv.llm import (
    LLMAuthError,
    LLMClient,
    LLMConnectionError,
    LLMError,
    LLMHTTPError,
    LLMResponseError,
    system_message,
    user_message,
)
from citrusv.llm.fake_server import FakeOpenAIServer, FakeReply, decode_data_url, image_urls, routed, scripted

FAST = {"backoff_base": 0.01, "max_backoff": 1.0}  # retries in milliseconds
_OPEN: list[LLMClient] = []


@pytest.fixture(autouse=True)
def _close_clients():
    """Close every client a test made, so no keep-alive socket outlives its test."""
    yield
    while _OPEN:
        _OPEN.pop().close()


def make(base_url: str, model: str = "test-model", **kwargs) -> LLMClient:
    client = LLMClient(base_url, model, **kwargs)
    _OPEN.append(client)
    return client


def client_for(server: FakeOpenAIServer, **kwargs) -> LLMClient:
    return make(server.base_url, **{"api_key": "", **FAST, **kwargs})


# ----------------------------------------------------------------------------- round trip


def test_chat_round_trip():
    with FakeOpenAIServer(lambda request: "four words of reply") as server:
        client = client_for(server)
        result = client.chat([system_message("be brief"), user_message("two plus two")], max_tokens=5, seed=3,
                             stop="\n", extra_body={"top_p": 0.9})
    assert result.text == "four words of reply" and result.finish_reason == "stop" and not result.cached
    assert (result.prompt_tokens, result.completion_tokens, result.model) == (5, 4, "test-model")
    assert result.attempts == 1 and result.raw["object"] == "chat.completion"
    (request,) = server.requests
    assert request == {"model": "test-model", "temperature": 0.0, "max_tokens": 5, "seed": 3, "stop": ["\n"],
                       "top_p": 0.9, "messages": [{"role": "system", "content": "be brief"},
                                                  {"role": "user", "content": "two plus two"}]}


def test_api_key_sent_and_enforced(monkeypatch):
    with FakeOpenAIServer(api_key="sk-right") as server:
        assert make(server.base_url, "m", api_key="sk-right").chat("hi").text == "hi"
        monkeypatch.setenv("OPENAI_API_KEY", "sk-right")
        assert make(server.base_url, "m").chat("env key").text == "env key"
        wrong = make(server.base_url, "m", api_key="sk-wrong", **FAST)
        with pytest.raises(LLMAuthError, match="401.*Incorrect API key") as info:
            wrong.chat("hi")
        assert info.value.status == 401 and info.value.attempts == 1
        assert len(server.requests) == 3  # the 401 was not retried
    assert "sk-" not in repr(wrong)


def test_images_arrive_as_data_urls():
    image = Image.new("RGB", (13, 7), (200, 10, 10))
    raw = io.BytesIO()
    Image.new("L", (4, 9), 50).save(raw, format="PNG")

    def handler(request):
        sizes = []
        for url in image_urls(request):
            mime, data = decode_data_url(url)
            sizes.append(f"{mime}:{Image.open(io.BytesIO(data)).size}")
        return " ".join(sizes)

    with FakeOpenAIServer(handler) as server:
        reply = client_for(server).chat([user_message("sizes?", images=[image, raw.getvalue()])])
    assert reply.text == "image/png:(13, 7) image/png:(4, 9)"
    assert decode_data_url(image_urls(server.requests[0])[1])[1] == raw.getvalue()


def test_temperature_none_is_left_out():
    with FakeOpenAIServer() as server:
        client_for(server).chat("hi", temperature=None)
    assert "temperature" not in server.requests[0]


def test_list_models():
    with FakeOpenAIServer(models=["a", "b"]) as server:
        assert client_for(server).list_models() == ["a", "b"]


# ----------------------------------------------------------------------------- retries


def test_retry_after_429_is_honoured():
    with FakeOpenAIServer(scripted([FakeReply.error(429, "slow down", retry_after=0.3), "ok"])) as server:
        result = client_for(server).chat("hi")
    assert result.text == "ok" and result.attempts == 2
    first, second = server.request_times
    assert second - first >= 0.28  # backoff_base alone would have waited ~10 ms


def test_retry_on_500_then_success():
    replies = [FakeReply.error(500), FakeReply(status=502, body="<html>bad gateway</html>"), "fine"]
    with FakeOpenAIServer(scripted(replies)) as server:
        result = client_for(server).chat("hi")
    assert result.text == "fine" and result.attempts == 3 and len(server.requests) == 3


@pytest.mark.parametrize("status", [408, 409, 503])
def test_other_retryable_statuses(status):
    with FakeOpenAIServer(scripted([FakeReply.error(status), "ok"])) as server:
        assert client_for(server).chat("hi").text == "ok"
    assert len(server.requests) == 2


@pytest.mark.parametrize("status, cls", [(400, LLMHTTPError), (404, LLMHTTPError), (422, LLMHTTPError),
                                         (403, LLMAuthError)])
def test_no_retry_on_other_4xx(status, cls):
    with FakeOpenAIServer(FakeReply.error(status, "context length exceeded: 9000 > 8192")) as server:
        with pytest.raises(cls, match=f"HTTP {status}: context length exceeded") as info:
            client_for(server).chat("hi")
    assert info.value.status == status and info.value.body["error"]["code"] == status
    assert len(server.requests) == 1


@pytest.mark.parametrize("body, message", [
    ({"object": "error", "message": "vllm says no", "type": "BadRequestError", "code": 400}, "vllm says no"),
    ({"detail": "fastapi says no"}, "fastapi says no"),
    ("plain text error", "plain text error"),
])
def test_error_message_shapes(body, message):
    with FakeOpenAIServer(FakeReply(status=400, body=body)) as server, pytest.raises(LLMHTTPError, match=message):
        client_for(server).chat("hi")


def test_gives_up_after_max_retries():
    with FakeOpenAIServer(FakeReply.error(503, "overloaded")) as server:
        with pytest.raises(LLMHTTPError, match="HTTP 503 \\(after 4 attempts\\): overloaded") as info:
            client_for(server, max_retries=3).chat("hi")
    assert info.value.attempts == 4 and len(server.requests) == 4


def test_connection_refused_and_timeout_are_retried():
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(LLMConnectionError, match="after 2 attempts"):
        make(f"http://127.0.0.1:{port}/v1", "m", max_retries=1, **FAST).chat("hi")

    with FakeOpenAIServer(scripted([FakeReply(text="late", delay=3.0), "on time"])) as server:
        result = client_for(server, timeout=0.5).chat("hi")
    assert result.text == "on time" and len(server.requests) == 2


@pytest.mark.parametrize("body, match", [
    ({"id": "x", "object": "list"}, "no 'choices'"),
    ({"choices": []}, "'choices' is empty"),
    ({"choices": [{"index": 0}]}, "choices\\[0\\].message"),
    ({"error": {"message": "quota exhausted"}}, "quota exhausted"),
    ("this is not json", "not JSON"),
])
def test_reply_that_is_not_a_chat_completion(tmp_path, body, match):
    with FakeOpenAIServer(FakeReply(body=body)) as server:
        client = client_for(server, cache_dir=tmp_path)
        with pytest.raises(LLMResponseError, match=match):
            client.chat("hi")
        assert len(server.requests) == 1  # not retried
    assert len(client.cache) == 0  # not cached


# ----------------------------------------------------------------------------- cache


def test_cache_hit_skips_http_and_survives_a_new_client(tmp_path):
    with FakeOpenAIServer(scripted(["first", "second", "third"])) as server:
        client = client_for(server, cache_dir=tmp_path)
        a = client.chat("hi", temperature=0.5)
        b = client.chat("hi", temperature=0.5)  # a cached answer even at temperature > 0
        assert len(server.requests) == 1
        assert (a.text, a.cached, b.text, b.cached, b.attempts) == ("first", False, "first", True, 0)
        assert b.prompt_tokens == a.prompt_tokens and b.raw == a.raw

        again = client_for(server, cache_dir=tmp_path).chat("hi", temperature=0.5)
        assert again.cached and again.text == "first" and len(server.requests) == 1

        other = client.chat("hi", temperature=0.7)  # other params, other key
        assert not other.cached and other.text == "second" and len(server.requests) == 2
        assert client.usage.cache_hits == 1 and client.usage.calls == 2


def test_corrupt_cache_entry_is_a_miss_and_is_overwritten(tmp_path):
    with FakeOpenAIServer(scripted(["one", "two"])) as server:
        client = client_for(server, cache_dir=tmp_path)
        key = client.chat("hi").cache_key
        client.cache.path_for(key).write_text('{"key": "' + key + '", "respo')  # a torn write
        result = client.chat("hi")
        assert not result.cached and result.text == "two"
        assert client.chat("hi").text == "two" and len(server.requests) == 2


def test_errors_are_not_cached(tmp_path):
    with FakeOpenAIServer(scripted([FakeReply.error(400), "ok"])) as server:
        client = client_for(server, cache_dir=tmp_path)
        with pytest.raises(LLMHTTPError):
            client.chat("hi")
        assert client.chat("hi").text == "ok" and len(server.requests) == 2


def test_cache_namespace(tmp_path):
    with FakeOpenAIServer("from a") as a, FakeOpenAIServer("from b") as b:
        assert client_for(a, cache_dir=tmp_path).chat("q").text == "from a"
        # another URL is another namespace by default: never an answer from another server
        assert client_for(b, cache_dir=tmp_path).chat("q").text == "from b"
        shared = client_for(b, cache_dir=tmp_path, cache_namespace=a.base_url).chat("q")
        assert shared.cached and shared.text == "from a"


# ----------------------------------------------------------------------------- JSON


def test_chat_json_fenced_and_json_mode(tmp_path):
    with FakeOpenAIServer('Here you go:\n```json\n{"answer": "B", "confidence": 0.9}\n```') as server:
        client = client_for(server, cache_dir=tmp_path)
        assert client.chat_json("Answer as JSON.", expect=dict) == {"answer": "B", "confidence": 0.9}
        assert client.chat_json("no mode", json_mode=False) == {"answer": "B", "confidence": 0.9}
    first, second = server.requests
    assert first["response_format"] == {"type": "json_object"} and "response_format" not in second


def test_chat_json_garbage_raises_and_is_dropped_from_cache(tmp_path):
    with FakeOpenAIServer(scripted(["I cannot answer that.", '{"ok": true}'])) as server:
        client = client_for(server, cache_dir=tmp_path)
        with pytest.raises(LLMResponseError, match="no JSON") as info:
            client.chat_json("JSON please")
        assert info.value.text == "I cannot answer that."
        assert client.chat_json("JSON please") == {"ok": True}  # asked again, not replayed
        assert len(server.requests) == 2


# ----------------------------------------------------------------------------- batches


def test_chat_many_is_concurrent_and_keeps_order():
    def handler(request):
        text = request["messages"][-1]["content"]
        return FakeReply(text=f"answer {text}", delay=0.3)

    with FakeOpenAIServer(handler) as server:
        client = client_for(server, max_concurrency=8)
        start = time.monotonic()
        results = client.chat_many([f"q{i}" for i in range(8)], progress=False)
        elapsed = time.monotonic() - start
    assert [r.text for r in results] == [f"answer q{i}" for i in range(8)]
    assert elapsed < 1.5, elapsed  # sequential would take 2.4 s


def test_chat_many_respects_max_concurrency():
    lock, state = threading.Lock(), {"now": 0, "peak": 0}

    def handler(request):
        with lock:
            state["now"] += 1
            state["peak"] = max(state["peak"], state["now"])
        time.sleep(0.05)
        with lock:
            state["now"] -= 1
        return "ok"

    with FakeOpenAIServer(handler) as server:
        results = client_for(server, max_concurrency=2).chat_many(["x"] * 8, progress="judging")
    assert all(r.text == "ok" for r in results) and state["peak"] == 2


def test_chat_many_failure_stays_in_its_slot():
    handler = routed({"bad": FakeReply.error(400, "bad request here"), "flaky": FakeReply.error(500)}, default="ok")
    with FakeOpenAIServer(handler) as server:
        client = client_for(server, max_retries=1)
        results = client.chat_many(["a", "bad", {"messages": "b", "temperature": 0.2}, "flaky"], progress=False)
    assert results[0].text == "ok" and results[2].text == "ok"
    assert isinstance(results[1], LLMHTTPError) and "bad request here" in str(results[1])
    assert isinstance(results[3], LLMError) and results[3].attempts == 2
    assert client.usage.failures == 2 and client.usage.calls == 2


def test_chat_many_checks_every_request_first():
    with FakeOpenAIServer() as server:
        client = client_for(server)
        with pytest.raises(ValueError, match=r"requests\[1\].*role"):
            client.chat_many(["fine", [{"role": "wizard", "content": "x"}]], progress=False)
        with pytest.raises(ValueError, match=r"requests\[0\].*unknown \['temprature'\]"):
            client.chat_many([{"messages": "x", "temprature": 1}], progress=False)
        assert server.requests == []  # nothing was sent


def test_chat_json_many():
    handler = routed({"one": '{"n": 1}', "two": "```json\n{\"n\": 2}\n```"}, default="no idea")
    with FakeOpenAIServer(handler) as server:
        results = client_for(server).chat_json_many(["one", "two", "three"], progress=False)
    assert results[:2] == [{"n": 1}, {"n": 2}] and isinstance(results[2], LLMResponseError)
    assert all(r["response_format"] == {"type": "json_object"} for r in server.requests)


def test_rate_limit_spaces_requests():
    with FakeOpenAIServer("ok") as server:
        client = client_for(server, requests_per_minute=300, max_concurrency=4)  # one per 0.2 s
        client.chat_many(["x"] * 4, progress=False)
    times = sorted(server.request_times)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert min(gaps) >= 0.1, gaps  # without the limiter all four arrive within milliseconds
    assert times[-1] - times[0] >= 0.5


# ----------------------------------------------------------------------------- accounting


def test_usage_log_and_cost(tmp_path):
    log = tmp_path / "logs" / "usage.jsonl"
    with FakeOpenAIServer(routed({"fail": FakeReply.error(400)}, default="three word reply")) as server:
        client = client_for(server, cache_dir=tmp_path / "cache", usage_log=log,
                            input_price_per_1m=2.0, output_price_per_1m=10.0)
        client.chat("one two")  # 2 prompt + 3 completion tokens
        client.chat("one two")  # cache hit
        client.chat("four five six seven")  # 4 + 3
        with pytest.raises(LLMHTTPError):
            client.chat("fail")
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["cached"] for r in rows] == [False, True, False, False]
    assert [r["error"] is None for r in rows] == [True, True, True, False]
    assert rows[0]["prompt_tokens"] == 2 and rows[0]["completion_tokens"] == 3
    assert rows[0]["cost_usd"] == pytest.approx((2 * 2.0 + 3 * 10.0) / 1e6)
    assert rows[1]["cost_usd"] == 0.0 and rows[0]["model"] == "test-model" and rows[0]["latency_s"] > 0
    assert {"time", "attempts", "finish_reason", "response_model"} <= set(rows[0])
    usage = client.usage
    assert (usage.calls, usage.cache_hits, usage.failures) == (2, 1, 1)
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (6, 6, 12)
    assert usage.cost_usd == pytest.approx((6 * 2.0 + 6 * 10.0) / 1e6)
    assert "2 calls, 1 cache hits" in str(usage)


def test_no_prices_no_cost():
    with FakeOpenAIServer() as server:
        client = client_for(server)
        client.chat("hi")
    assert client.usage.cost_usd is None and client.usage.prompt_tokens == 1


# ----------------------------------------------------------------------------- validation


@pytest.mark.parametrize("kwargs, name", [
    ({"base_url": "ftp://host/v1"}, "base_url"),
    ({"base_url": "localhost:8000/v1"}, "base_url"),
    ({"model": ""}, "model"),
    ({"timeout": 0}, "timeout"),
    ({"max_retries": -1}, "max_retries"),
    ({"backoff_base": -0.1}, "backoff_base"),
    ({"max_backoff": 0}, "max_backoff"),
    ({"requests_per_minute": -5}, "requests_per_minute"),
    ({"requests_per_minute": 0}, "requests_per_minute"),
    ({"max_concurrency": 0}, "max_concurrency"),
    ({"input_price_per_1m": 1.0}, "output_price_per_1m"),
    ({"input_price_per_1m": -1.0, "output_price_per_1m": 1.0}, "input_price_per_1m"),
])
def test_constructor_rejects(kwargs, name):
    args = {"base_url": "http://localhost:8000/v1", "model": "m", **kwargs}
    with pytest.raises(ValueError, match=name):
        LLMClient(**args)


@pytest.mark.parametrize("messages, kwargs, error, match", [
    ([], {}, ValueError, "non-empty"),
    (["hi"], {}, TypeError, r"messages\[0\] must be a dict"),
    ([{"role": "user"}], {}, ValueError, "no 'content'"),
    ([{"role": "bot", "content": "x"}], {}, ValueError, "role 'bot'"),
    ([{"role": "user", "content": 3}], {}, TypeError, "content"),
    ("hi", {"temperature": -1}, ValueError, "temperature"),
    ("hi", {"temperature": True}, ValueError, "temperature"),
    ("hi", {"max_tokens": 0}, ValueError, "max_tokens"),
    ("hi", {"response_format": "json"}, ValueError, "response_format"),
    ("hi", {"seed": 1.5}, ValueError, "seed"),
    ("hi", {"stop": [""]}, ValueError, "stop"),
    ("hi", {"extra_body": {"stream": True}}, ValueError, "stream"),
    ("hi", {"extra_body": {"temperature": 1}}, ValueError, "temperature"),
])
def test_bad_requests(messages, kwargs, error, match):
    client = make("http://127.0.0.1:9/v1", "m", api_key="")
    with pytest.raises(error, match=match):
        client.chat(messages, **kwargs)


def test_handler_bug_surfaces_when_the_server_closes():
    with pytest.raises(RuntimeError, match="handler raised 1 time.*IndexError"), \
            FakeOpenAIServer(scripted([])) as server, pytest.raises(LLMHTTPError, match="500"):
        client_for(server, max_retries=0).chat("hi")

"""The disk cache: stable keys, atomic entries, unreadable entries as misses."""

from __future__ import annotations

import json

import pytest

from citrusv.llm import RateLimiter, ResponseCache, request_key

BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "temperature": 0.0}


def test_key_is_stable_and_canonical():
    reordered = {"temperature": 0, "messages": [{"content": "hi", "role": "user"}], "model": "m"}
    assert request_key("ns", BODY) == request_key("ns", reordered)
    assert len(request_key("ns", BODY)) == 64


@pytest.mark.parametrize("change", [
    {"temperature": 0.5},
    {"model": "other"},
    {"seed": 1},
    {"max_tokens": 10},
    {"messages": [{"role": "user", "content": "hi!"}]},
    {"response_format": {"type": "json_object"}},
])
def test_any_param_changes_the_key(change):
    assert request_key("ns", BODY) != request_key("ns", {**BODY, **change})


def test_namespace_changes_the_key():
    assert request_key("http://a/v1", BODY) != request_key("http://b/v1", BODY)


def test_roundtrip_fanout_and_no_temp_files(tmp_path):
    cache = ResponseCache(tmp_path)
    key = request_key("ns", BODY)
    assert cache.get(key) is None
    cache.put(key, {"choices": [1]})
    assert cache.get(key) == {"choices": [1]}
    assert cache.path_for(key) == tmp_path / key[:2] / key[2:4] / f"{key}.json"
    assert key in cache and len(cache) == 1
    assert [p.name for p in cache.path_for(key).parent.iterdir()] == [f"{key}.json"]
    assert cache.delete(key) and not cache.delete(key)


@pytest.mark.parametrize("content", ['{"key": "trunc', "", '{"key": "someone-else", "response": {}}', "[]",
                                     b"\xff\xfe"])
def test_unreadable_entry_is_a_miss_then_overwritten(tmp_path, content):
    cache = ResponseCache(tmp_path)
    key = request_key("ns", BODY)
    path = cache.path_for(key)
    path.parent.mkdir(parents=True)
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    assert cache.get(key) is None
    cache.put(key, {"ok": 1})
    assert cache.get(key) == {"ok": 1}
    assert json.loads(path.read_text())["key"] == key


def test_bad_key_rejected(tmp_path):
    with pytest.raises(ValueError, match="64 lowercase hex"):
        ResponseCache(tmp_path).path_for("../../etc/passwd")


def test_rate_limiter_reserves_evenly_spaced_slots():
    now = [0.0]
    limiter = RateLimiter(60, clock=lambda: now[0], sleep=lambda s: None)  # one per second
    assert [limiter.reserve() for _ in range(3)] == [0.0, 1.0, 2.0]
    now[0] = 10.0  # idle long enough to refill, but never above the burst of one
    assert [limiter.reserve() for _ in range(2)] == [0.0, 1.0]


def test_rate_limiter_burst():
    limiter = RateLimiter(120, burst=3, clock=lambda: 0.0, sleep=lambda s: None)
    assert [limiter.reserve() for _ in range(4)] == [0.0, 0.0, 0.0, 0.5]


@pytest.mark.parametrize("kwargs, name", [({"requests_per_minute": 0}, "requests_per_minute"),
                                          ({"requests_per_minute": 5, "burst": 0}, "burst")])
def test_rate_limiter_rejects(kwargs, name):
    with pytest.raises(ValueError, match=name):
        RateLimiter(**kwargs)

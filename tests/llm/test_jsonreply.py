"""extract_json: the first JSON value in a model reply, whatever wraps it."""

from __future__ import annotations

import pytest

from citrusv.llm import LLMResponseError, extract_json


@pytest.mark.parametrize("text, expect, value", [
    ('{"a": 1}', None, {"a": 1}),
    ('```json\n{"a": [1, 2]}\n```', None, {"a": [1, 2]}),
    ('Sure! Here it is:\n```\n{"a": 2}\n```\nAnything else?', None, {"a": 2}),
    ('The answer is {"label": "yes", "why": "a {brace} in text"} as requested.', None,
     {"label": "yes", "why": "a {brace} in text"}),
    ('<think>maybe {not json} or {"x": 0}</think>{"x": 1}', None, {"x": 1}),
    ("reasoning without an opening tag {x}</think> [1, 2]", None, [1, 2]),
    ('See [1] for details: {"score": 3}', dict, {"score": 3}),
    ('See [1] for details: {"score": 3}', None, [1]),
    ('{"broken": } then {"ok": true}', None, {"ok": True}),
])
def test_extracts(text, expect, value):
    assert extract_json(text, expect) == value


@pytest.mark.parametrize("text, expect", [
    ("no json here", None),
    ('"just a string"', None),
    ("{unquoted: keys}", None),
    ("[1, 2]", dict),
    ("", None),
])
def test_no_json_raises_with_the_text(text, expect):
    with pytest.raises(LLMResponseError, match="no JSON") as info:
        extract_json(text, expect)
    assert info.value.text == text


def test_bad_expect():
    with pytest.raises(ValueError, match="expect"):
        extract_json("{}", str)

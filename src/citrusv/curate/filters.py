"""Quality filters: image size, text length in model tokens, configurable regex rules."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .dedup import row_text
from .stage import Row, RowStage

__all__ = ["ImageSizeFilter", "RegexFilter", "RegexRule", "TextLengthFilter", "load_token_counter", "simple_token_count"]

_SIMPLE_TOKEN = re.compile(r"\w+|[^\w\s]", re.UNICODE)


def simple_token_count(text: str) -> int:
    """Words and punctuation marks: a tokenizer-free stand-in (roughly a lower bound of BPE tokens)."""
    return len(_SIMPLE_TOKEN.findall(text))


def load_token_counter(tokenizer: Any) -> Callable[[str], int]:
    """A ``text -> token count`` function.

    Args:
        tokenizer: ``None`` (``simple_token_count``), a folder or hub name for
            ``transformers.AutoTokenizer``, an object with ``encode`` or a callable returning a count.
    """
    if tokenizer is None:
        return simple_token_count
    if isinstance(tokenizer, str):
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(tokenizer)
    if hasattr(tokenizer, "encode"):
        encode = tokenizer.encode
        return lambda text: len(encode(text, add_special_tokens=False))
    if callable(tokenizer):
        return tokenizer
    raise TypeError(f"tokenizer must be None, a path, a tokenizer or a callable, got {type(tokenizer).__name__}")


class ImageSizeFilter(RowStage):
    """Drops rows with an image of fewer than ``min_pixels`` pixels (width × height), or an image
    that cannot be opened. Reads only image headers; records sizes in ``row["_image_sizes"]``."""

    name = "image_size"

    def __init__(self, min_pixels: int = 4096):
        self.min_pixels = min_pixels

    def check(self, row: Row) -> tuple[str, str] | None:
        from PIL import Image

        sizes = []
        for i, path in enumerate(row.get("images", [])):
            try:
                with Image.open(path) as image:
                    sizes.append(image.size)
            except (OSError, ValueError) as err:
                return "image_unreadable", f"images[{i}]: {type(err).__name__}"
            width, height = image.size
            if width * height < self.min_pixels:
                return "image_too_small", f"images[{i}] is {width}x{height} < {self.min_pixels} pixels"
        row["_image_sizes"] = sizes
        return None


class TextLengthFilter(RowStage):
    """Drops rows whose instruction–response text has fewer than ``min_tokens`` or more than
    ``max_tokens`` tokens. Rows without text (image-only sources) pass."""

    name = "text_length"

    def __init__(self, min_tokens: int = 10, max_tokens: int = 1024, count_tokens: Callable[[str], int] = simple_token_count):
        if min_tokens > max_tokens:
            raise ValueError(f"min_tokens ({min_tokens}) > max_tokens ({max_tokens})")
        self.min_tokens, self.max_tokens, self.count_tokens = min_tokens, max_tokens, count_tokens

    def check(self, row: Row) -> tuple[str, str] | None:
        text = row_text(row)
        if not text:
            return None
        n = self.count_tokens(text)
        if n < self.min_tokens:
            return "text_too_short", f"{n} tokens < {self.min_tokens}"
        if n > self.max_tokens:
            return "text_too_long", f"{n} tokens > {self.max_tokens}"
        return None


@dataclass
class RegexRule:
    """Drop a row when ``pattern`` matches (``drop_if="match"``) or does not match (``"no_match"``)
    the text of messages with a role in ``roles``."""

    name: str
    pattern: str
    roles: list[str] = field(default_factory=lambda: ["user", "assistant"])
    drop_if: str = "match"
    ignore_case: bool = True

    def __post_init__(self) -> None:
        if self.drop_if not in ("match", "no_match"):
            raise ValueError(f"regex rule {self.name!r}: drop_if must be 'match' or 'no_match', got {self.drop_if!r}")
        try:
            self._regex = re.compile(self.pattern, re.IGNORECASE if self.ignore_case else 0)
        except re.error as err:
            raise ValueError(f"regex rule {self.name!r}: bad pattern {self.pattern!r}: {err}") from None


class RegexFilter(RowStage):
    """Applies ``RegexRule``s in order; the first rule that fires drops the row (``regex:<name>``)."""

    name = "regex"

    def __init__(self, rules: list[RegexRule]):
        self.rules = rules

    def check(self, row: Row) -> tuple[str, str] | None:
        for rule in self.rules:
            text = "\n".join(m.get("content", "") for m in row.get("messages", []) if m.get("role") in rule.roles)
            found = rule._regex.search(text) is not None
            if found == (rule.drop_if == "match"):
                return f"regex:{rule.name}", f"pattern {'matched' if found else 'did not match'}"
        return None

"""Special tokens: the chat/vision tokens of Qwen and the three Citrus-V adds.

Ids are always looked up from the tokenizer, never assumed: with the real Qwen2.5 vocabulary
``[SEG]``, ``<bbox>``, ``</bbox>`` become 151665-151667 (the released ids), with another tokenizer
they are whatever the tokenizer assigns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = [
    "BBOX_END",
    "BBOX_START",
    "CHAT_CONTROL_TOKENS",
    "CITRUS_TOKENS",
    "CitrusTokenIds",
    "IMAGE_PAD",
    "IM_END",
    "IM_START",
    "SEG",
    "VISION_END",
    "VISION_START",
    "add_citrus_tokens",
    "citrus_token_ids",
]

SEG = "[SEG]"
BBOX_START = "<bbox>"
BBOX_END = "</bbox>"
CITRUS_TOKENS = (SEG, BBOX_START, BBOX_END)

IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
ENDOFTEXT = "<|endoftext|>"
VISION_START = "<|vision_start|>"
VISION_END = "<|vision_end|>"
IMAGE_PAD = "<|image_pad|>"
VIDEO_PAD = "<|video_pad|>"

#: Tokens that structure the conversation; text from users may not contain them (it could forge
#: turns or image slots), nor ``[SEG]``, whose hidden state would be turned into a mask.
CHAT_CONTROL_TOKENS = (IM_START, IM_END, ENDOFTEXT, VISION_START, VISION_END, IMAGE_PAD, VIDEO_PAD, "<|vision_pad|>")


@dataclass(frozen=True)
class CitrusTokenIds:
    """Token ids the model and processor need, read from one tokenizer."""

    seg: int
    bbox_start: int
    bbox_end: int
    im_start: int
    im_end: int
    endoftext: int
    vision_start: int
    vision_end: int
    image_pad: int
    pad: int


def add_citrus_tokens(tokenizer: Any) -> int:
    """Add ``[SEG]``, ``<bbox>``, ``</bbox>`` as special tokens when absent; returns how many were added."""
    from tokenizers import AddedToken

    vocab = tokenizer.get_vocab()
    missing = [t for t in CITRUS_TOKENS if t not in vocab]
    if not missing:
        return 0
    return tokenizer.add_tokens([AddedToken(t, special=True, normalized=False) for t in missing], special_tokens=True)


def citrus_token_ids(tokenizer: Any) -> CitrusTokenIds:
    """Look up every id the model needs.

    Raises:
        ValueError: a required token is missing from the tokenizer (the message names it).
    """
    vocab = tokenizer.get_vocab()
    needed = {
        "seg": SEG, "bbox_start": BBOX_START, "bbox_end": BBOX_END, "im_start": IM_START, "im_end": IM_END,
        "endoftext": ENDOFTEXT, "vision_start": VISION_START, "vision_end": VISION_END, "image_pad": IMAGE_PAD,
    }
    absent = [tok for tok in needed.values() if tok not in vocab]
    if absent:
        hint = " (call add_citrus_tokens first)" if set(absent) & set(CITRUS_TOKENS) else ""
        raise ValueError(f"tokenizer lacks required token(s) {absent}{hint}")
    ids = {name: vocab[tok] for name, tok in needed.items()}
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else ids["endoftext"]
    return CitrusTokenIds(pad=pad, **ids)

"""Request validation for ``/v1/chat/completions`` (pydantic, strict types) and response shapes.

Validation errors become a 400 whose message names the field (``messages.0.content``) and whose
``param`` is that path; request values are never echoed back (they may hold patient data).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
)

from .errors import APIError

__all__ = ["ChatCompletionRequest", "CitrusVOptions", "parse_chat_request"]

class _Strict(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)  # strict: no "1" -> 1, no 1 -> True; ints pass as floats


class ImageURL(_Strict):
    url: StrictStr = Field(min_length=1)
    detail: StrictStr | None = None


class TextPart(_Strict):
    type: Literal["text"]
    text: StrictStr


class ImagePart(_Strict):
    type: Literal["image_url"]
    image_url: ImageURL


ContentPart = Annotated[TextPart | ImagePart, Field(discriminator="type")]


class Message(_Strict):
    role: Literal["system", "user", "assistant"]
    content: StrictStr | list[ContentPart]
    name: StrictStr | None = None


class CitrusVOptions(_Strict):
    """The request-side ``citrusv`` extension (``extra_body={"citrusv": {...}}`` in the openai client).

    Attributes:
        mask_png: also return each mask as a base64 PNG (0 / 255, original size).
    """

    mask_png: StrictBool = False


class StreamOptions(_Strict):
    include_usage: StrictBool = False


class ChatCompletionRequest(_Strict):
    """The supported subset of OpenAI's chat-completions request; other fields are ignored, except
    those whose meaning we cannot honour (``n`` > 1, ``stop``, ``tools``, ``logprobs``), which
    are refused."""

    model: StrictStr
    messages: list[Message] = Field(min_length=1)
    max_tokens: StrictInt | None = Field(default=None, ge=1)
    max_completion_tokens: StrictInt | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    seed: StrictInt | None = None
    n: StrictInt | None = None
    stream: StrictBool = False
    stream_options: StreamOptions | None = None
    stop: Any = None
    tools: Any = None
    logprobs: StrictBool | None = None
    user: StrictStr | None = None
    citrusv: CitrusVOptions | None = None


def _location(loc: tuple[Any, ...]) -> str:
    # drop pydantic's union/discriminator tags ("str", "list[...]", "text", "image_url" as tags)
    # and the discriminator tag that precedes a field of the same name ("content.0.text.text")
    parts = [str(p) for p in loc if not (isinstance(p, str) and ("[" in p or p in ("str", "int", "float")))]
    return ".".join(p for k, p in enumerate(parts) if k + 1 == len(parts) or parts[k + 1] != p)


def parse_chat_request(payload: Any) -> ChatCompletionRequest:
    """Validate a decoded JSON body.

    Raises:
        APIError: 400 naming the first invalid field, or an unsupported option.
    """
    if not isinstance(payload, dict):
        raise APIError(400, f"the request body must be a JSON object, got {type(payload).__name__}")
    try:
        request = ChatCompletionRequest.model_validate(payload)
    except ValidationError as err:
        # the most specific error: for a list content, the part's error rather than "not a string"
        errors = err.errors(include_url=False, include_input=False)
        first = max(errors, key=lambda e: len(e["loc"]))
        where = _location(first["loc"]) or "body"
        count = err.error_count()
        more = f" (and {count - 1} more error(s))" if count > 1 else ""
        raise APIError(400, f"invalid field {where}: {first['msg']}{more}", param=where) from None
    if request.n not in (None, 1):
        raise APIError(400, "only n=1 is supported", param="n")
    if request.stop not in (None, [], ""):
        raise APIError(400, "stop sequences are not supported", param="stop")
    if request.tools not in (None, []):
        raise APIError(400, "tools are not supported", param="tools")
    if request.logprobs:
        raise APIError(400, "logprobs are not supported", param="logprobs")
    if request.messages[-1].role == "assistant":
        raise APIError(400, "the last message must not be an assistant message (continuations are not supported)",
                       param="messages")
    return request

"""The FastAPI application: OpenAI-compatible chat completions with Citrus-V's boxes and masks.

``create_app(pipeline_or_engine, settings)`` builds the app; ``citrusv serve`` runs it with uvicorn.
Endpoints: ``POST /v1/chat/completions`` (JSON or SSE streaming), ``GET /v1/models``,
``GET /v1/models/{id}``, ``GET /health``. The response format and the ``citrusv`` extension are
documented in ``docs/serving.md``.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import io
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import numpy as np

try:
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse, StreamingResponse
    from starlette.concurrency import run_in_threadpool
    from starlette.exceptions import HTTPException as StarletteHTTPException
except ImportError as _err:  # pragma: no cover - depends on the environment
    raise ImportError("citrusv.serve needs FastAPI and uvicorn: pip install 'citrusv[serve]'") from _err

from ..inference.pipeline import CitrusVResult, GenerationSettings
from ..processing.boxes import boxes_orig_px_to_norm1000
from ..processing.processor import IMAGE_PLACEHOLDER
from .engine import BatchingEngine, EngineOutput, QueueFullError
from .errors import APIError, error_body
from .images import decode_image_reference
from .schema import ChatCompletionRequest, parse_chat_request
from .settings import ServeSettings

logger = logging.getLogger(__name__)
access_logger = logging.getLogger("citrusv.serve.access")

__all__ = ["citrusv_extension", "create_app"]

_LENGTH_WARNING = "generation stopped at max_new_tokens"


# ----------------------------------------------------------------------------- response pieces
def _mask_png_base64(mask: np.ndarray) -> str:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.asarray(mask, dtype=np.uint8) * 255, mode="L").save(buffer, format="PNG", optimize=True)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def citrusv_extension(result: CitrusVResult, *, mask_png: bool = False) -> dict[str, Any]:
    """The ``citrusv`` field of a response: reasoning split, boxes and masks (see ``docs/serving.md``).

    Boxes come in original-image pixels and on the 0–1000 grid of the original image; masks as
    COCO compressed RLE at the original image size (and a 0/255 PNG when ``mask_png``).
    """
    orig_hw = result.image_size.orig_hw if result.image_size is not None else None
    boxes = []
    for box in result.boxes:
        xyxy = [round(float(v), 2) for v in box.xyxy_orig_px]
        norm = boxes_orig_px_to_norm1000(np.asarray([xyxy]), orig_hw)[0] if orig_hw else None
        boxes.append({"label": box.label, "bbox_xyxy_orig_px": xyxy,
                      "bbox_xyxy_norm1000": [round(float(v), 1) for v in norm] if norm is not None else None,
                      "source_format": box.source_format})
    masks = []
    for mask in result.masks:
        item = {"index": mask.index, "found": mask.found, "score": round(mask.score, 4),
                "object_score": round(mask.object_score, 4), "area_px": mask.area_px,
                "bbox_xyxy_orig_px": list(mask.bbox_xyxy_orig_px) if mask.bbox_xyxy_orig_px else None,
                "rle": {"size": list(mask.rle["size"]), "counts": mask.rle["counts"]}}
        if mask_png:
            item["png_base64"] = _mask_png_base64(mask.mask)
        masks.append(item)
    return {
        "think": result.think, "answer": result.answer,
        "image_size": {"height": orig_hw[0], "width": orig_hw[1]} if orig_hw else None,
        "boxes": boxes, "masks": masks, "warnings": list(result.warnings),
    }


def _finish_reason(result: CitrusVResult) -> str:
    return "length" if any(w.startswith(_LENGTH_WARNING) for w in result.warnings) else "stop"


def _usage(output: EngineOutput) -> dict[str, int]:
    completion = output.result.num_generated_tokens
    return {"prompt_tokens": output.prompt_tokens, "completion_tokens": completion,
            "total_tokens": output.prompt_tokens + completion}


# ----------------------------------------------------------------------------- request pieces
async def _read_body(request: Any, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise APIError(400, "invalid Content-Length header") from None
        if size > limit:
            raise APIError(413, f"request body is {size} bytes, over the limit of {limit}", code="body_too_large")
    chunks, total = [], 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise APIError(413, f"request body is over the limit of {limit} bytes", code="body_too_large")
        chunks.append(chunk)
    return b"".join(chunks)


def _parse_json(body: bytes) -> Any:
    if not body:
        raise APIError(400, "the request body is empty; send a JSON object")
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError) as err:
        where = f" at position {err.pos}" if isinstance(err, json.JSONDecodeError) else ""
        raise APIError(400, f"the request body is not valid JSON{where}", code="invalid_json") from None


def _conversation(request: ChatCompletionRequest, settings: ServeSettings) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    """Messages for the processor (``{"type": "image"}`` slots) and the image references in order."""
    if len(request.messages) > settings.max_messages:
        raise APIError(400, f"{len(request.messages)} messages, over the limit of {settings.max_messages}",
                       param="messages")
    conversation, references = [], []
    for m, message in enumerate(request.messages):
        if isinstance(message.content, str):
            conversation.append({"role": message.role, "content": message.content})
            continue
        parts = []
        for p, part in enumerate(message.content):
            if part.type == "text":
                parts.append({"type": "text", "text": part.text})
            else:
                parts.append({"type": "image"})
                references.append((part.image_url.url, f"messages.{m}.content.{p}.image_url"))
        conversation.append({"role": message.role, "content": parts})
    if len(references) > settings.max_images_per_request:
        raise APIError(400, f"{len(references)} images, over the limit of {settings.max_images_per_request}",
                       param="messages")
    return conversation, references


def _check_messages(processor: Any, conversation: list[dict[str, Any]], num_images: int) -> None:
    """The processor's message checks (roles, reserved tokens, placeholders) before queueing, so a
    streamed request gets its 400 as a status, not as an event after a 200."""
    try:
        turns, _ = processor.normalize_messages(conversation)
    except ValueError as err:
        raise APIError(400, str(err), param="messages") from None
    placeholders = sum(text.count(IMAGE_PLACEHOLDER) for _, text in turns)
    if placeholders > num_images:
        raise APIError(400, f"the conversation has {placeholders} {IMAGE_PLACEHOLDER} placeholders but {num_images} "
                            "images", param="messages")


def _generation(request: ChatCompletionRequest, defaults: GenerationSettings, settings: ServeSettings) -> GenerationSettings:
    given = [v for v in (request.max_completion_tokens, request.max_tokens) if v is not None]
    max_tokens = given[0] if given else settings.default_max_tokens
    if max_tokens > settings.max_new_tokens_limit:
        raise APIError(400, f"max_tokens={max_tokens} is over the limit of {settings.max_new_tokens_limit}",
                       param="max_tokens")
    sample = bool(request.temperature)  # absent or 0: greedy decoding
    values = {**vars(defaults), "max_new_tokens": max_tokens, "do_sample": sample, "seed": request.seed}
    if sample:
        values.update(temperature=float(request.temperature), top_p=float(request.top_p or 1.0))
    try:
        return GenerationSettings(**values)
    except ValueError as err:
        raise APIError(400, str(err)) from None


# ----------------------------------------------------------------------------- the app
def create_app(pipeline_or_engine: Any, settings: ServeSettings | None = None) -> FastAPI:
    """Build the FastAPI app around a ``CitrusVPipeline`` or a ``BatchingEngine``.

    A pipeline is wrapped in a ``BatchingEngine`` configured from ``settings``; the engine starts
    with the app and stops with it when the app created it.
    """
    settings = settings or ServeSettings()
    owns_engine = not isinstance(pipeline_or_engine, BatchingEngine)
    engine = (BatchingEngine(pipeline_or_engine, max_batch_size=settings.max_batch_size,
                             max_wait_ms=settings.max_wait_ms, max_pending=settings.max_pending,
                             max_prompt_tokens=settings.max_prompt_tokens)
              if owns_engine else pipeline_or_engine)
    created = int(time.time())

    @asynccontextmanager
    async def lifespan(_app):
        engine.start()
        try:
            yield
        finally:
            if owns_engine:
                await run_in_threadpool(engine.stop)

    app = FastAPI(title="citrusv", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.engine = engine
    app.state.settings = settings

    def error_response(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> JSONResponse:
        return JSONResponse(body, status_code=status, headers=headers)

    @app.exception_handler(APIError)
    async def _api_error(_request: Request, err: APIError):
        return error_response(err.status, err.body(), err.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, err: StarletteHTTPException):
        return error_response(err.status_code, error_body(err.status_code, str(err.detail)), getattr(err, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, err: RequestValidationError):
        return error_response(400, error_body(400, "invalid request"))

    @app.exception_handler(Exception)
    async def _internal_error(_request: Request, err: Exception):
        logger.error("internal error: %s", type(err).__name__, exc_info=err)
        return error_response(500, error_body(500, "internal server error", code="internal_error"))

    @app.middleware("http")
    async def access_log(request: Request, call_next):
        request_id = uuid.uuid4().hex[:16]
        request.state.request_id = request_id
        started = time.perf_counter()
        status = 500
        try:
            response = await call_next(request)
            status = response.status_code
            response.headers["x-request-id"] = request_id
            return response
        finally:
            record = {"event": "access", "request_id": request_id, "method": request.method,
                      "path": request.url.path, "status": status,
                      "duration_ms": round((time.perf_counter() - started) * 1000.0, 2),
                      "client": request.client.host if request.client else None,
                      "bytes_in": request.headers.get("content-length")}
            record.update(getattr(request.state, "log_extra", {}))
            access_logger.info(json.dumps(record))

    def authorize(request: Request) -> None:
        if settings.api_key is None:
            return
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), settings.api_key.encode()):
            raise APIError(401, "missing or invalid API key (send 'Authorization: Bearer <key>')",
                           code="invalid_api_key", headers={"WWW-Authenticate": "Bearer"})

    def model_card() -> dict[str, Any]:
        return {"id": settings.model_name, "object": "model", "created": created, "owned_by": "citrusv"}

    @app.get("/health")
    async def health():
        if not engine.running:
            raise APIError(503, "the inference engine is not running")
        return {"status": "ok", "model": settings.model_name, "pending": engine.pending,
                "max_pending": engine.max_pending, "requests_done": engine.requests_done,
                "batches_run": engine.batches_run}

    @app.get("/v1/models")
    async def list_models(request: Request):
        authorize(request)
        return {"object": "list", "data": [model_card()]}

    @app.get("/v1/models/{model_id:path}")
    async def get_model(model_id: str, request: Request):
        authorize(request)
        if model_id != settings.model_name:
            raise APIError(404, "no such model", param="model", code="model_not_found")
        return model_card()

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request):
        authorize(request)
        body = await _read_body(request, settings.max_body_bytes)
        chat = parse_chat_request(_parse_json(body))
        if chat.model != settings.model_name:
            raise APIError(404, f"no such model; this server serves {settings.model_name!r}", param="model",
                           code="model_not_found")
        generation = _generation(chat, engine.pipeline.generation, settings)
        conversation, references = _conversation(chat, settings)
        _check_messages(engine.pipeline.processor, conversation, len(references))
        if engine.pending >= engine.max_pending:  # refuse before decoding images
            raise APIError(429, "the server is busy; retry later", code="overloaded", headers={"Retry-After": "1"})
        images = [await run_in_threadpool(decode_image_reference, url, settings, where) for url, where in references]
        mask_png = bool(chat.citrusv and chat.citrusv.mask_png)
        log_extra = {"images": len(images), "stream": chat.stream, "max_tokens": generation.max_new_tokens}
        if settings.log_content:
            log_extra["prompt"] = [m["content"] if isinstance(m["content"], str) else
                                   [p.get("text", "<image>") for p in m["content"]] for m in conversation]
        request.state.log_extra = log_extra
        completion_id = f"chatcmpl-{uuid.uuid4().hex}"
        loop = asyncio.get_running_loop()
        events: asyncio.Queue = asyncio.Queue()

        def post(kind: str, value: Any) -> None:
            try:
                loop.call_soon_threadsafe(events.put_nowait, (kind, value))
            except RuntimeError:  # the event loop is gone (server shutting down)
                pass

        try:
            future = engine.submit(conversation, images, generation,
                                   on_text=(lambda delta: post("text", delta)) if chat.stream else None)
        except QueueFullError:
            raise APIError(429, "the server is busy; retry later", code="overloaded", headers={"Retry-After": "1"}) from None

        if not chat.stream:
            output: EngineOutput = await asyncio.wrap_future(future)
            log_extra.update(prompt_tokens=output.prompt_tokens, completion_tokens=output.result.num_generated_tokens,
                             queue_ms=round(output.queue_ms, 2), infer_ms=round(output.run_ms, 2),
                             batch_size=output.batch_size)
            timing = f"queue;dur={output.queue_ms:.2f}, infer;dur={output.run_ms:.2f}"
            return JSONResponse({
                "id": completion_id, "object": "chat.completion", "created": int(time.time()),
                "model": settings.model_name,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": output.result.text},
                             "finish_reason": _finish_reason(output.result), "logprobs": None}],
                "usage": _usage(output),
                "citrusv": citrusv_extension(output.result, mask_png=mask_png),
            }, headers={"Server-Timing": timing})

        future.add_done_callback(lambda _f: post("done", None))
        include_usage = bool(chat.stream_options and chat.stream_options.include_usage)

        def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
            body = {"id": completion_id, "object": "chat.completion.chunk", "created": int(time.time()),
                    "model": settings.model_name,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}], **extra}
            return f"data: {json.dumps(body)}\n\n"

        async def stream() -> AsyncIterator[str]:
            yield chunk({"role": "assistant", "content": ""})
            sent = ""
            while True:
                kind, value = await events.get()
                if kind == "done":
                    break
                sent += value
                yield chunk({"content": value})
            try:
                output = future.result()
            except APIError as err:
                yield f"data: {json.dumps(err.body())}\n\n"
                yield "data: [DONE]\n\n"
                return
            except Exception as err:  # noqa: BLE001 - logged by the engine; the stream must end with an error event
                yield f"data: {json.dumps(error_body(500, 'internal server error', code=type(err).__name__))}\n\n"
                yield "data: [DONE]\n\n"
                return
            text = output.result.text
            if text.startswith(sent) and len(text) > len(sent):
                yield chunk({"content": text[len(sent):]})
            yield chunk({}, _finish_reason(output.result),
                        citrusv=citrusv_extension(output.result, mask_png=mask_png))
            if include_usage:
                usage = {"id": completion_id, "object": "chat.completion.chunk", "created": int(time.time()),
                         "model": settings.model_name, "choices": [], "usage": _usage(output)}
                yield f"data: {json.dumps(usage)}\n\n"
            yield "data: [DONE]\n\n"

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    return app

"""The Gradio app behind ``citrusv ui``: Chat, Report and Document tabs (see ``docs/ui.md``).

``build_ui(pipeline)`` returns a ``gradio.Blocks``; ``launch_ui`` starts it with the house's safe
defaults: loopback unless an API key is given, never a public share link, uploads deleted from
Gradio's cache after an hour. Requires ``gradio`` (imported here, not by ``citrusv.ui``).
"""

from __future__ import annotations

import hmac
import logging
import threading
from typing import Any

from ..inference.pipeline import CitrusVPipeline
from ..medio import MedicalImage, MedicalImageError
from .helpers import (
    MEASUREMENT_HEADERS,
    WINDOW_CHOICES,
    display_rgb,
    display_text,
    extract_markdown_table,
    image_size_for,
    load_upload,
    measurement_note,
    measurement_rows,
    overlay_for_result,
    parse_spacing,
    partial_overlay,
)
from .streaming import stream_chat

__all__ = ["DEFAULT_DOCUMENT_PROMPT", "DEFAULT_REPORT_PROMPT", "build_ui", "launch_ui"]

logger = logging.getLogger(__name__)

#: The Report tab's default request: findings with a ``<bbox>`` after each located one.
DEFAULT_REPORT_PROMPT = ("Write a radiology report for this image with findings and an impression. After each "
                         "finding you can locate, give its box as <bbox>[x1, y1, x2, y2]</bbox>.")
#: The Document tab's default request: the MedDocBench full-parse wording plus the four columns.
DEFAULT_DOCUMENT_PROMPT = ("请将图中检验单表格解析为Markdown格式，表头包括检验项目、结果、单位、参考范围。"
                           "Output only one Markdown table with the columns | 检验项目 | 结果 | 单位 | 参考范围 |, "
                           "one row per test, cells copied exactly as printed.")
UPLOAD_TYPES = [".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".dcm", ".dicom", ".nii", ".gz"]


def _require_gradio():
    try:
        import gradio as gr
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("citrusv ui needs gradio: pip install 'gradio==6.31.0'") from err
    return gr


def _slice(value: Any) -> int | None:
    """The slice box's value → ``slice_index`` (empty or negative: the middle slice)."""
    return None if value is None or value == "" or int(value) < 0 else int(value)


def build_ui(pipeline: CitrusVPipeline, *, max_new_tokens: int = 512, title: str = "Citrus-V",
             report_prompt: str = DEFAULT_REPORT_PROMPT, document_prompt: str = DEFAULT_DOCUMENT_PROMPT):
    """The web UI for one loaded pipeline.

    Args:
        pipeline: the model; calls are serialised with a lock (one generation at a time).
        max_new_tokens: generation limit of every request.
        title: page title.
        report_prompt, document_prompt: the default requests of the Report and Document tabs.

    Returns:
        A ``gradio.Blocks`` (not launched; see :func:`launch_ui`).
    """
    gr = _require_gradio()
    lock = threading.Lock()
    generation = {"max_new_tokens": max_new_tokens}
    convention = pipeline.box_convention

    def read(path: str | None, window: str, slice_value: Any, spacing: str | None = None) -> MedicalImage | None:
        if not path:
            return None
        try:
            return load_upload(path, window, _slice(slice_value), parse_spacing(spacing))
        except (MedicalImageError, ValueError) as err:
            raise gr.Error(str(err)) from err

    def describe(image: MedicalImage | None) -> str:
        if image is None:
            return "No image: the chat is text-only."
        h, w = image.size_hw
        parts = [f"{w} × {h} px", image.modality or "image"]
        if image.window is not None:
            parts.append(f"window C {image.window[0]:g} / W {image.window[1]:g}")
        return " · ".join(parts) + "  \n" + measurement_note(image.pixel_spacing_mm)

    # ------------------------------------------------------------------ Chat
    def on_chat_image(path, window, slice_value, spacing):
        image = read(path, window, slice_value, spacing)
        preview = display_rgb(image) if image is not None else None
        return preview, describe(image), image

    def on_chat_send(prompt, image, turns, history):
        prompt = (prompt or "").strip()
        if not prompt:
            raise gr.Error("Type a question first.")
        turns = list(turns or []) + [{"role": "user", "content": prompt}]
        history = list(history or []) + [{"role": "user", "content": display_text(prompt)},
                                         {"role": "assistant", "content": ""}]
        pil = display_rgb(image) if image is not None else None
        images = [pil] if pil is not None else []
        result = None
        for event in stream_chat(pipeline, turns, images, lock=lock, **generation):
            history[-1] = {"role": "assistant", "content": display_text(event.text)}
            if event.result is None:
                yield history, turns, gr.skip(), gr.skip(), gr.skip(), ""
            result = event.result
        if result is None:  # pragma: no cover - stream_chat always ends with a result or raises
            raise gr.Error("generation produced no result")
        turns = turns + [{"role": "assistant", "content": result.text}]
        notes = [f"{len(result.masks)} mask(s), {len(result.boxes)} box(es)."]
        notes += [f"note: {w}" for w in result.warnings]
        overlay = overlay_for_result(pil, result) if pil is not None else None
        spacing = image.pixel_spacing_mm if image is not None else None
        rows = measurement_rows(result.masks, spacing)
        info = "  \n".join(notes + ([measurement_note(spacing)] if image is not None else []))
        yield history, turns, overlay, rows, info, ""

    # ------------------------------------------------------------------ Report
    def on_report(path, window, prompt):
        image = read(path, window, None)
        if image is None:
            raise gr.Error("Upload an image first.")
        pil = display_rgb(image)
        size = image_size_for(pipeline.processor, image.size_hw)
        drawn = -1
        conversation = [{"role": "user", "content": (prompt or report_prompt).strip()}]
        for event in stream_chat(pipeline, conversation, [pil], lock=lock, **generation):
            if event.result is not None:
                result = event.result
                status = f"Done: {len(result.boxes)} box(es), {len(result.masks)} mask(s)."
                yield result.text, overlay_for_result(pil, result), status
                return
            overlay, count = partial_overlay(pil, event.text, size, convention)
            if count != drawn:
                drawn = count
                yield event.text, overlay, f"Generating… {count} box(es) so far."
            else:
                yield event.text, gr.skip(), gr.skip()

    # ------------------------------------------------------------------ Document
    def on_document(picture, prompt):
        if picture is None:
            raise gr.Error("Upload a document photo first.")
        conversation = [{"role": "user", "content": (prompt or document_prompt).strip()}]
        with lock:
            result = pipeline.chat([conversation], [[picture.convert("RGB")]], **generation)[0]
        table = extract_markdown_table(result.answer) or extract_markdown_table(result.text)
        return result.text, table if table else "*No Markdown table in the answer.*"

    with gr.Blocks(title=title, analytics_enabled=False, delete_cache=(3600, 3600)) as demo:
        gr.Markdown(f"## {title}\nResearch software, not a medical device. Uploads stay on this server.")
        with gr.Tab("Chat", elem_id="tab-chat"):
            image_state = gr.State(None)
            turns_state = gr.State([])
            with gr.Row():
                with gr.Column(scale=1):
                    chat_file = gr.File(label="Image, DICOM or NIfTI", file_types=UPLOAD_TYPES, type="filepath",
                                        elem_id="chat-upload")
                    chat_window = gr.Dropdown(WINDOW_CHOICES, value="auto", label="Window (CT presets)",
                                              elem_id="chat-window")
                    chat_slice = gr.Number(label="Slice of a NIfTI volume (-1: middle)", precision=0, value=-1,
                                           elem_id="chat-slice")
                    chat_spacing = gr.Textbox(label="Pixel spacing of a plain image, mm (row, col)",
                                              placeholder="e.g. 0.7, 0.7 (DICOM / NIfTI carry their own)",
                                              elem_id="chat-spacing")
                    chat_preview = gr.Image(label="Input", type="pil", interactive=False, elem_id="chat-preview")
                    chat_info = gr.Markdown(elem_id="chat-info")
                with gr.Column(scale=2):
                    chatbot = gr.Chatbot(label="Conversation", elem_id="chat-history", height=360)
                    chat_prompt = gr.Textbox(label="Question", placeholder="e.g. Please segment the liver.",
                                             elem_id="chat-prompt")
                    with gr.Row():
                        chat_send = gr.Button("Send", variant="primary", elem_id="chat-send")
                        chat_clear = gr.Button("Clear chat", elem_id="chat-clear")
                with gr.Column(scale=2):
                    chat_overlay = gr.Image(label="Masks and boxes", type="pil", interactive=False,
                                            elem_id="chat-overlay")
                    chat_table = gr.Dataframe(headers=MEASUREMENT_HEADERS, label="Measurements", interactive=False,
                                              elem_id="chat-measurements")
            image_inputs = [chat_file, chat_window, chat_slice, chat_spacing]
            image_outputs = [chat_preview, chat_info, image_state]
            chat_file.change(on_chat_image, image_inputs, image_outputs).then(
                lambda: ([], [], None, None), None, [chatbot, turns_state, chat_overlay, chat_table])
            chat_window.change(on_chat_image, image_inputs, image_outputs)
            chat_slice.change(on_chat_image, image_inputs, image_outputs)
            chat_spacing.submit(on_chat_image, image_inputs, image_outputs)
            chat_spacing.blur(on_chat_image, image_inputs, image_outputs)
            send_outputs = [chatbot, turns_state, chat_overlay, chat_table, chat_info, chat_prompt]
            send_inputs = [chat_prompt, image_state, turns_state, chatbot]
            chat_send.click(on_chat_send, send_inputs, send_outputs)
            chat_prompt.submit(on_chat_send, send_inputs, send_outputs)
            chat_clear.click(lambda: ([], [], None, None), None, [chatbot, turns_state, chat_overlay, chat_table])

        with gr.Tab("Report", elem_id="tab-report"):
            with gr.Row():
                with gr.Column(scale=1):
                    report_file = gr.File(label="Image, DICOM or NIfTI", file_types=UPLOAD_TYPES, type="filepath",
                                          elem_id="report-upload")
                    report_window = gr.Dropdown(WINDOW_CHOICES, value="auto", label="Window (CT presets)",
                                                elem_id="report-window")
                    report_prompt_box = gr.Textbox(value=report_prompt, label="Request", lines=3,
                                                   elem_id="report-prompt")
                    report_go = gr.Button("Generate report", variant="primary", elem_id="report-go")
                with gr.Column(scale=2):
                    report_overlay = gr.Image(label="Boxes (drawn as they stream)", type="pil", interactive=False,
                                              elem_id="report-overlay")
                    report_status = gr.Markdown(elem_id="report-status")
                    report_text = gr.Textbox(label="Report (streaming)", lines=12, interactive=False,
                                             elem_id="report-text")
            report_go.click(on_report, [report_file, report_window, report_prompt_box],
                            [report_text, report_overlay, report_status])

        with gr.Tab("Document", elem_id="tab-document"):
            with gr.Row():
                with gr.Column(scale=1):
                    doc_image = gr.Image(label="Document photo", type="pil", elem_id="doc-image")
                    doc_prompt = gr.Textbox(value=document_prompt, label="Request", lines=3, elem_id="doc-prompt")
                    doc_go = gr.Button("Parse table", variant="primary", elem_id="doc-go")
                with gr.Column(scale=2):
                    doc_table = gr.Markdown(label="Table", elem_id="doc-table")
                    doc_text = gr.Textbox(label="Model answer", lines=8, interactive=False, elem_id="doc-text")
            doc_go.click(on_document, [doc_image, doc_prompt], [doc_text, doc_table])
    return demo


def api_key_auth(api_key: str):
    """A Gradio ``auth`` callable: any user name, the API key as password (constant-time check)."""
    expected = api_key.encode()

    def check(username: str, password: str) -> bool:
        return hmac.compare_digest((password or "").encode(), expected)

    return check


def launch_ui(demo, *, host: str = "127.0.0.1", port: int = 7860, api_key: str | None = None,
              block: bool = True, max_file_size: str = "200mb"):
    """Start ``demo`` with the house defaults: never a share link; a non-loopback ``host`` needs
    ``api_key``; with a key, Gradio's login form asks for it (any user name).

    Raises:
        ValueError: ``host`` is not loopback and there is no API key.
    """
    from ..serve.settings import check_bind_address

    check_bind_address(host, api_key)
    return demo.queue(default_concurrency_limit=1, api_open=False).launch(
        server_name=host, server_port=port, share=False, auth=api_key_auth(api_key) if api_key else None,
        prevent_thread_lock=not block, ssr_mode=False, max_file_size=max_file_size, quiet=True, show_error=True,
        footer_links=[])

"""The UI in a real headless browser: Debian's Chromium driven by Playwright, against the app served
on 127.0.0.1 with the tiny random model. Saves a screenshot to ``tests/artifacts/ui_overlay.png``.

Skipped when the ``playwright`` package, ``gradio`` or the Chromium binary is missing. The browser
is ``/usr/bin/chromium`` (Debian's ``chromium`` package) unless ``CITRUSV_CHROMIUM`` names another.
"""

from __future__ import annotations

import os
import shutil
import socket
import time
from pathlib import Path

import pytest
from PIL import Image

from citrusv.inference import CitrusVPipeline
from citrusv.inference.constraints import ForcedTokens

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
CHROMIUM = os.environ.get("CITRUSV_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


class ForcedAnswerPipeline(CitrusVPipeline):
    """The tiny random model forced to say ``forced_text`` (so a mask and a box exist)."""

    forced_text = ""

    def chat(self, conversations, images=None, *, logits_processor=None, **generation):
        ids = self.processor.tokenizer.encode(self.forced_text, add_special_tokens=False)
        forced = ForcedTokens(ids + [self.processor.token_ids.im_end])
        return super().chat(conversations, images, logits_processor=[forced, *(logits_processor or [])], **generation)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _upload(page, container: str, path: Path, shown, tries: int = 3) -> None:
    """Set the file of a Gradio upload and wait until ``shown`` is visible; an input swapped by a
    re-render right after the tab switch can swallow the first try, so try again."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    for attempt in range(tries):
        page.locator(f"{container} input[type=file]").set_input_files(str(path))
        try:
            shown.wait_for(state="visible", timeout=8_000)
            return
        except PlaywrightTimeout:
            if attempt == tries - 1:
                raise


def test_chat_upload_submit_shows_overlay(native_checkpoint, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    pytest.importorskip("gradio", reason="gradio is not installed")
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install -y chromium, or set CITRUSV_CHROMIUM)")
    from conftest import spread_sam_weights

    from citrusv.cli.demo import phantom
    from citrusv.ui import build_ui, launch_ui
    from citrusv.ui.helpers import image_size_for

    started = time.perf_counter()
    pipeline = ForcedAnswerPipeline.from_pretrained(native_checkpoint, device="cpu", gate_by_object_score=False)
    spread_sam_weights(pipeline.model, seed=1)  # random tiny SAM2 weights give near-empty masks otherwise
    sample = tmp_path / "sample.png"
    Image.fromarray(phantom(120, 160)).convert("RGB").save(sample)
    h, w = image_size_for(pipeline.processor, (120, 160)).resized_hw
    pipeline.forced_text = f"The liver is [SEG] at <bbox>[{w // 6}, {h // 4}, {w // 2}, {3 * h // 4}]</bbox>."

    demo = build_ui(pipeline, max_new_tokens=160)
    port = _free_port()
    launch_ui(demo, host="127.0.0.1", port=port, block=False)
    try:
        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.set_default_timeout(30_000)
                page.goto(f"http://127.0.0.1:{port}/")
                # the preview appears once the upload was read and windowed
                _upload(page, "#chat-upload", sample, page.locator("#chat-preview img"))
                assert page.locator("#chat-overlay img").count() == 0
                spacing = page.locator("#chat-spacing").locator("textarea, input").first
                spacing.fill("0.5, 0.5")
                spacing.press("Enter")
                page.locator("#chat-info").get_by_text("Pixel spacing 0.5 × 0.5 mm").wait_for()
                page.locator("#chat-prompt textarea").fill("Please segment the liver.")
                page.locator("#chat-send").click()
                overlay = page.locator("#chat-overlay img")
                overlay.wait_for(state="visible")
                assert overlay.get_attribute("src")
                page.locator("#chat-history").get_by_text("[SEG]").first.wait_for()  # the answer is shown
                sync_api.expect(page.locator("#chat-measurements")).to_contain_text("[SEG] 1")  # measured in mm
                ARTIFACTS.mkdir(exist_ok=True)
                page.screenshot(path=str(ARTIFACTS / "ui_overlay.png"), full_page=True)

                # Report tab: the streamed answer ends with the box drawn on the overlay.
                page.get_by_role("tab", name="Report").click()
                page.locator("#report-go").wait_for(state="visible")  # the tab is rendered
                _upload(page, "#report-upload", sample, page.locator("#report-upload").get_by_text("sample.png"))
                page.locator("#report-go").click()
                page.locator("#report-overlay img").wait_for(state="visible")
                page.locator("#report-status").get_by_text("Done: 1 box(es)").wait_for()
                assert "<bbox>" in page.locator("#report-text textarea").input_value()

                # Document tab: the answer's Markdown table is rendered as an HTML table.
                pipeline.forced_text = "| 检验项目 | 结果 | 单位 | 参考范围 |\n|---|---|---|---|\n| 血红蛋白 | 130 | g/L | 115-150 |"
                page.get_by_role("tab", name="Document").click()
                page.locator("#doc-go").wait_for(state="visible")
                _upload(page, "#doc-image", sample, page.locator("#doc-image img"))
                page.locator("#doc-go").click()
                page.locator("#doc-table table").get_by_text("血红蛋白").wait_for()
            finally:
                browser.close()
    finally:
        demo.close()
    assert (ARTIFACTS / "ui_overlay.png").stat().st_size > 0
    assert time.perf_counter() - started < 60

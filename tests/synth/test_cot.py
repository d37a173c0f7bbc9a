"""Grounded CoT sample building against a scripted OpenAI-compatible server."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from citrusv.data.schema import parse_sample
from citrusv.llm import LLMClient
from citrusv.llm.fake_server import (
    FakeOpenAIServer,
    FakeReply,
    image_urls,
    last_user_text,
)
from citrusv.processing.boxes import parse_boxes
from citrusv.synth.cot import (
    DEFAULT_COLOURS,
    GroundedBox,
    GroundedCotBuilder,
    ReadingOrder,
    boxes_from_detections,
    boxes_from_model_text,
    boxes_from_structures,
    check_cot_reply,
    draw_boxes,
    load_prompt,
)

H, W = 300, 400  # image (height, width); smart resize at the defaults gives 308 x 392

BOXES = [
    GroundedBox("heart", (150, 140, 260, 230)),
    GroundedBox("rib_left_3", (220, 40, 380, 90)),
    GroundedBox("rib_left_4", (215, 60, 390, 110)),
    GroundedBox("rib_right_3", (20, 40, 180, 90)),
    GroundedBox("lung_upper_lobe_left", (210, 30, 370, 160)),
    GroundedBox("lung_lower_lobe_left", (200, 120, 380, 260)),
    GroundedBox("lung_upper_lobe_right", (30, 30, 190, 150)),
    GroundedBox("nodule", (300, 100, 320, 120)),
    GroundedBox("kidney_left", (1, 1, 5, 5)),  # not in the chest reading order: dropped
]

GOOD = ("<think>\nRibs: the left ribs <bbox>B1</bbox> and right ribs <bbox>B2</bbox> are intact.\n"
        "Lungs: the left lung <bbox>B3</bbox> is clear; a nodule <bbox>B6</bbox> in the left upper zone.\n"
        "Heart: the heart <bbox>B5</bbox> is normal in size.\n</think>\n"
        "<answer>\nFindings: a small nodule in the left upper zone. Heart size normal.\n"
        "Impression: left upper zone nodule.\n</answer>")
NARRATIVE = "Heart size is normal. A nodule projects over the left upper zone."
CT_REPORT = "CT chest: 2 cm nodule in the left upper lobe (segment 1+2), 35 HU. Normal heart. Mild bronchial wall thickening."


@pytest.fixture()
def image_path(tmp_path):
    path = tmp_path / "drr.png"
    Image.fromarray(np.zeros((H, W), dtype=np.uint8)).save(path)
    return path


def _handler(cot_reply: str):
    def handler(request):
        text = last_user_text(request)
        return NARRATIVE if "Rewrite the report" in text else cot_reply
    return handler


def _builder(server, tmp_path, **kw) -> GroundedCotBuilder:
    client = LLMClient(server.base_url, "fake-gpt", api_key="", cache_dir=tmp_path / "cache", backoff_base=0.0,
                       max_retries=1, usage_log=tmp_path / "usage.jsonl")
    return GroundedCotBuilder(client, **kw)


def test_arrange_follows_reading_order_and_merges():
    order = ReadingOrder.from_yaml()
    builder = GroundedCotBuilder.__new__(GroundedCotBuilder)
    builder.reading_order = order
    arranged = builder.arrange(BOXES)
    assert [(b.box_id, b.name) for b in arranged] == [
        ("B1", "left ribs"), ("B2", "right ribs"), ("B3", "left lung fields"), ("B4", "right lung fields"), ("B5", "heart"),
        ("B6", "nodule")]
    assert arranged[0].box_xyxy_orig_px == (215, 40, 390, 110)  # union of the left ribs
    assert arranged[5].colour == "finding" and arranged[4].colour == "anatomy"
    assert order.colours["anatomy"] == (0, 200, 0) and order.colours["finding"] == (230, 0, 0)


def test_ct_route_good_reply_row_is_valid_and_boxes_round_trip(tmp_path, image_path):
    with FakeOpenAIServer(_handler(GOOD)) as server:
        builder = _builder(server, tmp_path)
        outcome = builder.build(image_path, BOXES, CT_REPORT, sample_id="cot-1", image_path_in_row="drr.png")
        assert outcome.reason is None, outcome.reason
        assert len(server.requests) == 2  # rewrite + report
        rewrite_text = last_user_text(server.requests[0])
        assert CT_REPORT in rewrite_text and "X-ray-aware" in rewrite_text
        report_request = server.requests[1]
        assert NARRATIVE in last_user_text(report_request) and "B6: nodule" in last_user_text(report_request)
        assert len(image_urls(report_request)) == 1  # the colour-coded overlay
    row = outcome.row
    sample = parse_sample(json.loads(json.dumps(row)))
    assert sample.images == ["drr.png"] and sample.messages[0]["content"].startswith("<image>")
    assistant = sample.messages[1]["content"]
    assert assistant.startswith("<think>") and "</think>\n<answer>" in assistant and "B1" not in assistant
    assert sample.objects.ref == ["left ribs", "right ribs", "left lung fields", "nodule", "heart"]
    assert sample.tags == {"modality": ["X-Ray"], "task": ["Report Generation"], "region": ["Chest"]}
    assert row["synth"]["prompts"] == ["cot_rewrite.v1", "cot_report.v1"]
    # The text boxes are in Citrus-V's convention (smart-resized pixels): parse_boxes gets the originals back.
    parsed, warnings = parse_boxes(assistant, builder.image_size((H, W)))
    assert not warnings and len(parsed) == 5
    for got, want in zip(parsed, sample.objects.bbox):
        assert np.abs(np.asarray(got.xyxy_orig_px) - want).max() <= 1.0
    assert builder.image_size((H, W)).resized_hw == (308, 392)
    assert "<bbox>[211, 41, 382, 113]</bbox>" in assistant  # left ribs (215, 40, 390, 110) × (392/400, 308/300)


def test_cache_hits_on_rerun(tmp_path, image_path):
    with FakeOpenAIServer(_handler(GOOD)) as server:
        first = _builder(server, tmp_path).build(image_path, BOXES, CT_REPORT, sample_id="a")
        builder = _builder(server, tmp_path)
        second = builder.build(image_path, BOXES, CT_REPORT, sample_id="a")
        assert len(server.requests) == 2  # the rerun made no HTTP request
    assert first.row == second.row
    assert builder.client.usage.cache_hits == 2
    assert (tmp_path / "usage.jsonl").exists()


@pytest.mark.parametrize("reply, reason", [
    (GOOD.replace("<bbox>B6</bbox>", "<bbox>B9</bbox>"), "do not exist: B9"),
    (GOOD.split("<answer>")[0] + "<answer>\n  \n</answer>", "empty answer"),
    (GOOD.split("<answer>")[0], "no <answer>"),
    ("<answer>x</answer>", "no <think>"),
    ("<think>Lungs clear.</think><answer>Normal.</answer>", "at least 1 needed"),
    (GOOD.replace("<bbox>B1</bbox>", "<bbox>[1, 2, 3, 4]</bbox>"), "must hold a box id"),
    (GOOD.replace("Impression", "<bbox>B1</bbox> Impression"), "outside <think>"),
])
def test_bad_replies_are_rejected_with_reason(tmp_path, image_path, reply, reason):
    with FakeOpenAIServer(_handler(reply)) as server:
        outcome = _builder(server, tmp_path).build(image_path, BOXES, CT_REPORT, sample_id="bad")
    assert outcome.row is None and reason in outcome.reason
    assert outcome.reply == reply


def test_llm_failure_is_a_reject_not_a_crash(tmp_path, image_path):
    with FakeOpenAIServer(FakeReply.error(400, "bad request")) as server:
        outcome = _builder(server, tmp_path).build(image_path, BOXES, CT_REPORT, sample_id="x")
    assert outcome.row is None and outcome.reason.startswith("rewrite request failed")


def test_xray_route_skips_rewrite_and_build_many(tmp_path, image_path):
    detections = {"detections": [{"label": "heart", "bbox": [150, 140, 260, 230]},
                                 {"label": "lung_upper_lobe_left", "bbox_2d": [210, 30, 370, 160]}]}
    boxes = boxes_from_detections(detections)
    reply = ("<think>Lungs: the left lung <bbox>B1</bbox> is clear. Heart: <bbox>B2</bbox> normal.</think>"
             "<answer>No acute cardiopulmonary process.</answer>")
    with FakeOpenAIServer(_handler(reply)) as server:
        builder = _builder(server, tmp_path, box_space="norm1000", send_image=False)
        rows, rejects = builder.build_many([
            {"image": image_path, "boxes": boxes, "report": "Normal chest.", "sample_id": "x1", "source": "xray"},
            {"image": image_path, "boxes": [GroundedBox("kidney_left", (0, 0, 4, 4))], "report": "Normal.",
             "sample_id": "x2", "source": "xray"},
        ])
        assert len(server.requests) == 1 and "Rewrite" not in last_user_text(server.requests[0])
        assert image_urls(server.requests[0]) == []
    assert rejects == [{"id": "x2", "reason": "no box matches the reading order"}]
    (row,) = rows
    parse_sample(row)
    assert row["synth"]["source"] == "xray" and row["synth"]["prompts"] == ["cot_report.v1"]
    assert "<bbox>[525, 100, 925, 533]</bbox>" in row["messages"][1]["content"]  # 0..1000 grid


def test_boxes_from_model_text_and_structures():
    from citrusv.processing.processor import ImageSize

    size = ImageSize((H, W), (308, 392))
    boxes = boxes_from_model_text('<ref>heart</ref><bbox>[147, 144, 255, 236]</bbox> and <bbox>[1, 1, 9, 9]</bbox>', size)
    assert [b.name for b in boxes] == ["heart"]
    assert np.allclose(boxes[0].box_xyxy_orig_px, (150.0, 140.26, 260.2, 229.87), atol=0.5)

    class Structure:  # duck-typed citrusv.synth.drr.ProjectedStructure
        name, box_xyxy_px = "liver", (1, 2, 3, 4)

    assert boxes_from_structures([Structure()]) == [GroundedBox("liver", (1.0, 2.0, 3.0, 4.0))]
    with pytest.raises(ValueError, match="label"):
        boxes_from_detections([{"bbox": [1, 2, 3, 4]}])


def test_overlay_colours(image_path):
    arranged = [GroundedBox("heart", (10, 10, 50, 50), "heart", "anatomy", "B1"),
                GroundedBox("nodule", (100, 100, 140, 140), "findings", "finding", "B2"),
                GroundedBox("tube", (200, 10, 260, 80), "devices", "reference", "B3")]
    canvas = np.asarray(draw_boxes(image_path, arranged))
    assert canvas.shape == (H, W, 3)
    assert tuple(canvas[30, 10]) == DEFAULT_COLOURS["anatomy"] == (0, 200, 0)  # green
    assert tuple(canvas[120, 100]) == DEFAULT_COLOURS["finding"] == (230, 0, 0)  # red
    assert tuple(canvas[50, 200]) == DEFAULT_COLOURS["reference"] == (0, 90, 255)  # blue


def test_prompts_are_versioned_and_checked(tmp_path):
    prompt = load_prompt("configs/prompts/synth/cot_rewrite.v1.md")
    assert prompt.tag == "cot_rewrite.v1" and prompt.variables == ("report",)
    assert "CT" in prompt.render(report="CT text")
    with pytest.raises(ValueError, match="missing variables"):
        prompt.render()
    bad = tmp_path / "p.md"
    bad.write_text("no front matter")
    with pytest.raises(ValueError, match="front matter"):
        load_prompt(bad)


def test_check_cot_reply_direct_and_config_errors(tmp_path):
    assert check_cot_reply(GOOD, ["B1", "B2", "B3", "B5", "B6"]) == (None, ["B1", "B2", "B3", "B6", "B5"])
    order_file = tmp_path / "o.yaml"
    order_file.write_text("steps:\n  - name: x\n    structures: [a]\n    colour: purple\n")
    with pytest.raises(ValueError, match="colour role"):
        ReadingOrder.from_yaml(order_file)
    with pytest.raises(ValueError, match="box_space"):
        GroundedCotBuilder(None, ReadingOrder.from_names(["heart"]), box_space="pixels")

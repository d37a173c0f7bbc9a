import json

import numpy as np
import pytest
import torch

from citrusv.inference import CitrusVPipeline
from citrusv.inference.constraints import ForcedTokens
from citrusv.processing.masks import resize_mask_logits, rle_decode
from conftest import random_image, spread_sam_weights


class Counter:
    """Counts generate() calls and the images passed through SAM2's image encoder."""

    def __init__(self, model):
        self.generate_calls = 0
        self.encoder_calls = 0
        self.encoded_images = 0
        original = model.mllm.generate

        def generate(*args, **kwargs):
            self.generate_calls += 1
            return original(*args, **kwargs)

        model.mllm.generate = generate
        model.sam2.vision_encoder.register_forward_pre_hook(self._encoder)

    def _encoder(self, module, args):
        self.encoder_calls += 1
        self.encoded_images += args[0].shape[0]


def _forced(processor, text):
    ids = processor.tokenizer(text, add_special_tokens=False)["input_ids"] + [processor.token_ids.im_end]
    return [ForcedTokens(ids)]


@pytest.mark.parametrize("answer, num_seg", [("No mask needed.", 0), ("It is [SEG].", 1),
                                             ("Liver [SEG], kidney [SEG], spleen [SEG].", 3)])
def test_one_generation_pass_and_one_encoder_pass_per_image(model, processor, answer, num_seg):
    counter = Counter(model)
    pipeline = CitrusVPipeline(model, processor)
    result = pipeline(random_image(60, 80), "Segment the organs.", logits_processor=_forced(processor, answer),
                      max_new_tokens=32)
    assert result.text == answer and len(result.masks) == num_seg
    assert counter.generate_calls == 1
    assert counter.encoded_images == (1 if num_seg else 0) and counter.encoder_calls == (1 if num_seg else 0)


def test_batch_encodes_each_image_once(model, processor):
    counter = Counter(model)
    pipeline = CitrusVPipeline(model, processor)
    processors = _forced(processor, "[SEG] and [SEG]")
    results = pipeline([random_image(60, 80, 1), random_image(50, 40, 2), None], ["a", "bb", "ccc"],
                       logits_processor=processors, max_new_tokens=16)
    assert [len(r.masks) for r in results] == [2, 2, 0]
    assert counter.generate_calls == 1 and counter.encoder_calls == 1 and counter.encoded_images == 2
    assert results[0].masks[0].mask.shape == (60, 80) and results[1].masks[0].mask.shape == (50, 40)
    assert any("no image" in w for w in results[2].warnings)


def test_masks_are_upsampled_before_thresholding(model, processor):
    spread_sam_weights(model)
    image = random_image(90, 70)
    pipeline = CitrusVPipeline(model, processor, gate_by_object_score=False)
    result = pipeline(image, "segment", logits_processor=_forced(processor, "[SEG]"), max_new_tokens=4)
    mask = result.masks[0]
    # recompute: same inputs, teacher-forced state, low-res logits, bilinear to 90x70, > 0
    inputs = processor([{"role": "user", "content": "segment"}], [image])
    seg = processor.token_ids.seg
    ids = torch.cat([inputs.input_ids, torch.tensor([[seg]])], 1)
    with torch.no_grad():
        hidden = model.mllm.model(input_ids=ids, attention_mask=torch.ones_like(ids),
                                  mm_token_type_ids=torch.cat([inputs.mm_token_type_ids, torch.zeros(1, 1, dtype=torch.int32)], 1),
                                  pixel_values=inputs.pixel_values, image_grid_thw=inputs.image_grid_thw).last_hidden_state
        prompt = model.project_seg_hidden_states(hidden[0, -1:])
        low = model.segment(inputs.sam_pixel_values, prompt[None]).mask_logits_lowres[0]
    expected = (resize_mask_logits(low, (90, 70))[0] > 0).numpy()
    assert 0 < expected.sum() < expected.size
    np.testing.assert_array_equal(mask.mask, expected)
    np.testing.assert_array_equal(rle_decode(mask.rle), expected)
    assert mask.area_px == int(expected.sum())
    # nearest-neighbour resizing of the thresholded 32x32 grid (the release) gives a different mask
    nearest = torch.nn.functional.interpolate((low > 0).float()[None], size=(90, 70), mode="nearest")[0, 0].numpy() > 0
    assert (nearest != expected).any()


def test_absent_object_gives_explicit_not_found(model, processor):
    with torch.no_grad():
        model.sam2.mask_decoder.pred_obj_score_head.proj_out.bias.fill_(-50.0)
    pipeline = CitrusVPipeline(model, processor)
    result = pipeline(random_image(60, 80), "segment", logits_processor=_forced(processor, "[SEG]"), max_new_tokens=4)
    mask = result.masks[0]
    assert mask.found is False and mask.area_px == 0 and not mask.mask.any() and mask.bbox_xyxy_orig_px is None
    assert 0 <= mask.object_score < 0.01 and 0 <= mask.score <= 1
    ungated = CitrusVPipeline(model, processor, gate_by_object_score=False)
    kept = ungated(random_image(60, 80), "segment", logits_processor=_forced(processor, "[SEG]"), max_new_tokens=4)
    assert kept.masks[0].found is False and kept.masks[0].mask.shape == (60, 80)


def test_boxes_think_answer_and_json(model, processor):
    pipeline = CitrusVPipeline(model, processor)
    image = random_image(60, 80)  # resized to 64x80
    answer = '<think>look at the heart <bbox>[8, 16, 40, 48]</bbox></think><answer>Normal [SEG].</answer>'
    result = pipeline(image, "Report", logits_processor=_forced(processor, answer), max_new_tokens=64)
    assert result.think.startswith("look at the heart") and result.answer == "Normal [SEG]."
    assert result.boxes[0].xyxy_orig_px == pytest.approx((8, 15, 40, 45))
    payload = json.loads(json.dumps(result.to_dict()))
    assert payload["masks"][0]["rle"]["size"] == [60, 80] and payload["boxes"][0]["format"] == "bbox_tag"


def test_truncated_generation_and_history_seg_are_reported(model, processor):
    pipeline = CitrusVPipeline(model, processor)
    conversation = [{"role": "user", "content": "<image>x"}, {"role": "assistant", "content": "[SEG]"},
                    {"role": "user", "content": "again"}]
    seg = processor.token_ids.seg
    result = pipeline.chat([conversation], [[random_image(40, 40)]], logits_processor=[ForcedTokens([5, seg])],
                           max_new_tokens=2)[0]
    assert result.prompt_seg_tokens == 1 and len(result.masks) == 1
    assert any("max_new_tokens=2" in w for w in result.warnings)
    assert any("prompt history" in w for w in result.warnings)


def test_sampling_is_reproducible_with_a_seed(model, processor):
    pipeline = CitrusVPipeline(model, processor)
    image = random_image(40, 40)
    a = pipeline(image, "hi", do_sample=True, temperature=1.5, seed=3, max_new_tokens=8)
    b = pipeline(image, "hi", do_sample=True, temperature=1.5, seed=3, max_new_tokens=8)
    assert a.text == b.text


def test_from_pretrained_released_layout(released_checkpoint):
    pipeline = CitrusVPipeline.from_pretrained(released_checkpoint, device="cpu")
    seg = pipeline.processor.token_ids.seg
    result = pipeline(random_image(60, 80), "Segment the liver.", logits_processor=[ForcedTokens([seg])],
                      max_new_tokens=1)
    assert len(result.masks) == 1 and result.masks[0].mask.shape == (60, 80)


def test_generation_settings_validated(model, processor):
    pipeline = CitrusVPipeline(model, processor)
    with pytest.raises(ValueError, match="max_new_tokens"):
        pipeline(random_image(40, 40), "hi", max_new_tokens=0)
    with pytest.raises(TypeError):
        pipeline(random_image(40, 40), "hi", beams=3)


def test_qwen3_vl_backbone_behind_the_same_interface():
    from citrusv.model.tiny import tiny_model
    from citrusv.processing import CitrusVProcessor

    model, tokenizer = tiny_model("qwen3_vl")
    processor = CitrusVProcessor.for_model_config(model.config, tokenizer)
    pipeline = CitrusVPipeline(model, processor)
    answer = '[{"bbox_2d": [100, 200, 500, 700], "label": "liver"}] [SEG]'
    result = pipeline(random_image(60, 80), "Find the liver.", logits_processor=_forced(processor, answer),
                      max_new_tokens=48)
    assert len(result.masks) == 1 and result.masks[0].mask.shape == (60, 80)
    # Qwen3-VL writes boxes on the 0..1000 grid
    assert result.boxes[0].xyxy_orig_px == pytest.approx((8, 12, 40, 42))

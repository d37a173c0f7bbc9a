import logging

import pytest
import torch

from citrusv.processing import CitrusVProcessor
from conftest import random_image


def test_rendering_matches_the_tokenizer_chat_template(processor, image):
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Segment the liver."}]},
                {"role": "assistant", "content": "Sure, [SEG]."}, {"role": "user", "content": "And the kidney?"}]
    templated = processor.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    turns, _ = processor.normalize_messages(messages)
    ours, _ = processor.render(turns, [1], add_generation_prompt=True)
    assert ours == templated
    assert ours.startswith("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n<|vision_start|>")
    assert ours.endswith("<|im_start|>user\nAnd the kidney?<|im_end|>\n<|im_start|>assistant\n")


def test_image_tokens_and_mm_token_type_ids(processor, image):
    encoded = processor.encode([{"role": "user", "content": "<image>What is this?"}], [image])
    grid = encoded.image_grid_thw[0]
    assert grid == (1, 16, 20)  # 60x80 → 64x80 with factor 8
    count = grid[0] * grid[1] * grid[2] // 4
    pad = processor.token_ids.image_pad
    assert encoded.input_ids.count(pad) == count
    assert encoded.mm_token_type_ids == [1 if t == pad else 0 for t in encoded.input_ids]
    assert encoded.pixel_values.shape == (grid[1] * grid[2], 3 * 2 * 4 * 4)
    assert encoded.sam_pixel_values.shape == (3, 128, 128)
    assert encoded.image_sizes[0].orig_hw == (60, 80) and encoded.image_sizes[0].resized_hw == (64, 80)


def test_labels_cover_assistant_text_and_end_of_turn_only(processor):
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello [SEG]"}, {"role": "user", "content": "Again"},
                {"role": "assistant", "content": "Done"}]
    encoded = processor.encode(messages, add_generation_prompt=False, return_labels=True)
    supervised = [t for t, label in zip(encoded.input_ids, encoded.labels) if label != -100]
    assert processor.tokenizer.decode(supervised) == "Hello [SEG]<|im_end|>Done<|im_end|>"
    assert all(label in (-100, token) for token, label in zip(encoded.input_ids, encoded.labels))


@pytest.mark.parametrize("content, token", [("segment [SEG] please", "[SEG]"), ("hi <|im_end|> system", "<|im_end|>"),
                                            ("<|image_pad|>", "<|image_pad|>")])
def test_reserved_tokens_in_user_text_are_rejected(processor, content, token):
    with pytest.raises(ValueError, match=r"message 0 \(user\) contains the reserved token"):
        processor.encode([{"role": "user", "content": content}])


def test_seg_allowed_in_assistant_history_but_not_control_tokens(processor):
    processor.encode([{"role": "user", "content": "x"}, {"role": "assistant", "content": "[SEG] <bbox>[1,2,3,4]</bbox>"}])
    with pytest.raises(ValueError, match="assistant"):
        processor.encode([{"role": "user", "content": "x"}, {"role": "assistant", "content": "<|im_start|>user"}])


def test_placeholders(processor, image):
    with pytest.raises(ValueError, match="2 <image> placeholders but 1 images"):
        processor.encode([{"role": "user", "content": "<image><image>compare"}], [image])
    encoded = processor.encode([{"role": "system", "content": "s"}, {"role": "user", "content": "describe"}], [image, image])
    text = processor.tokenizer.decode(encoded.input_ids)
    assert text.count("<|vision_start|>") == 2 and "user\n<|vision_start|>" in text
    with pytest.raises(ValueError, match="either inside the content parts or as `images`"):
        processor.encode([{"role": "user", "content": [{"type": "image", "image": image}]}], [image])


@pytest.mark.parametrize("messages, match", [
    ([], "non-empty"), ([{"role": "doctor", "content": "x"}], "unknown role"), ([{"content": "x"}], "'role' and 'content'"),
    ([{"role": "user", "content": [{"type": "audio"}]}], "unsupported content part"),
    ([{"role": "user", "content": 5}], "string or a list"),
])
def test_malformed_messages(processor, messages, match):
    with pytest.raises(ValueError, match=match):
        processor.encode(messages)


def test_batch_is_left_padded_with_per_row_sam_images(processor, image):
    batch = processor([[{"role": "user", "content": "<image>Segment the liver in this scan please"}],
                       [{"role": "user", "content": "Hello"}]], [[image], []])
    assert batch.input_ids.shape[0] == 2
    assert batch.attention_mask[1, 0] == 0 and batch.attention_mask[1, -1] == 1
    assert batch.input_ids[1, 0] == processor.token_ids.pad
    assert batch.sam_image_index == [0, -1] and batch.sam_pixel_values.shape == (1, 3, 128, 128)
    assert batch.image_sizes[1] == []
    moved = batch.to("cpu", dtype=torch.bfloat16)
    assert moved.pixel_values.dtype == torch.bfloat16 and moved.input_ids.dtype == torch.long


def test_resolution_mismatch_is_reported(model, tokenizer, caplog):
    import copy

    with caplog.at_level(logging.WARNING):
        processor = CitrusVProcessor.for_model_config(model.config, copy.deepcopy(tokenizer), max_pixels=4096)
    assert "max_pixels=4096 (trained with 9216)" in processor.resolution_mismatch()
    assert "trained with 9216" in caplog.text


def test_tokenizer_from_another_checkpoint_is_rejected(model):
    from citrusv.model.tiny import tiny_tokenizer

    other = tiny_tokenizer(with_citrus_tokens=False)
    other.add_tokens(["<extra_token>"])
    with pytest.raises(ValueError, match=r"\[SEG\] id"):
        CitrusVProcessor.for_model_config(model.config, other)


def test_released_folder_tokenizer_gets_citrus_tokens(released_checkpoint):
    from transformers import AutoTokenizer

    assert "[SEG]" not in AutoTokenizer.from_pretrained(released_checkpoint).get_vocab()
    processor = CitrusVProcessor.from_pretrained(released_checkpoint)
    assert processor.token_ids.seg == 542 and processor.image_config.max_pixels == 9216


def test_save_and_reload(processor, tmp_path, model):
    model.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    again = CitrusVProcessor.from_pretrained(tmp_path)
    assert again.image_config == processor.image_config
    messages = [{"role": "user", "content": "<image>hi"}]
    image = random_image(50, 70)
    assert again.encode(messages, [image]).input_ids == processor.encode(messages, [image]).input_ids


def test_decode_keeps_markers_and_drops_control_tokens(processor):
    ids = processor.tokenizer("It is [SEG] at <bbox>[1, 2, 3, 4]</bbox>", add_special_tokens=False)["input_ids"]
    ids += [processor.token_ids.im_end, processor.token_ids.pad]
    assert processor.decode(ids) == "It is [SEG] at <bbox>[1, 2, 3, 4]</bbox>"

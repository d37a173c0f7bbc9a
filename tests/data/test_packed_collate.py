"""Packed rows behave exactly like their samples run one by one."""

import numpy as np
import pytest
import torch

from citrusv.data import parse_sample
from citrusv.data.collate import collate_packed, collate_samples, encode_sample
from citrusv.processing.masks import rle_encode
from conftest import random_image


def _square(height, width, top, left, size):
    mask = np.zeros((height, width), dtype=bool)
    mask[top:top + size, left:left + size] = True
    return rle_encode(mask)


@pytest.fixture
def samples(processor, tmp_path):
    paths = []
    for k, (h, w) in enumerate([(60, 80), (48, 48), (40, 64)]):
        random_image(h, w, k).save(tmp_path / f"{k}.png")
        paths.append(str(tmp_path / f"{k}.png"))
    rows = [
        {"id": "text", "messages": [{"role": "user", "content": "What is a CT scan?"},
                                    {"role": "assistant", "content": "A cross-sectional X-ray image."}]},
        {"id": "seg2", "images": [paths[0]], "masks": [_square(60, 80, 5, 5, 30), _square(60, 80, 30, 50, 20)],
         "messages": [{"role": "user", "content": "<image>Segment liver and kidney."},
                      {"role": "assistant", "content": "Liver [SEG], kidney [SEG]."}]},
        {"id": "img", "images": [paths[1]], "messages": [{"role": "user", "content": "<image>Modality?"},
                                                         {"role": "assistant", "content": "CT."}]},
        {"id": "seg1", "images": [paths[2]], "masks": [_square(40, 64, 10, 20, 16)],
         "messages": [{"role": "user", "content": "<image>Lesion."}, {"role": "assistant", "content": "[SEG]"}]},
    ]
    return [encode_sample(parse_sample(row), processor) for row in rows]


def test_packed_logits_and_masks_equal_unpacked(model, processor, samples):
    lengths = [len(s.encoded.input_ids) for s in samples]
    rows = [[(samples[0], 0, lengths[0]), (samples[1], 0, lengths[1])],
            [(samples[2], 0, lengths[2]), (samples[3], 0, lengths[3])]]
    batch = collate_packed(rows, processor)
    assert batch["sam_pixel_values"].shape == (2, 1, 3, 128, 128)
    assert batch["gt_masks"].shape == (2, 2, 1, 32, 32)
    assert batch["seg_image_index"].tolist() == [[0, 0], [0, -1]]
    with torch.no_grad():
        packed = model(**batch)
        singles = [model(**collate_samples([s], processor)) for s in samples]
    offsets = [0, lengths[0], 0, lengths[2]]
    for k, (single, row) in enumerate(zip(singles, [0, 0, 1, 1])):
        start = offsets[k]
        torch.testing.assert_close(packed.logits[row, start:start + lengths[k]], single.logits[0], atol=1e-5, rtol=1e-5)
    expected_masks = torch.cat([singles[1].mask_logits_lowres, singles[3].mask_logits_lowres])
    torch.testing.assert_close(packed.mask_logits_lowres, expected_masks, atol=1e-5, rtol=1e-5)


def test_packed_loss_weights_tokens_and_masks_evenly(model, processor, samples):
    lengths = [len(s.encoded.input_ids) for s in samples]
    batch = collate_packed([[(s, 0, n) for s, n in zip(samples, lengths)]], processor)
    with torch.no_grad():
        packed = model(**batch)
        singles = [model(**collate_samples([s], processor)) for s in samples]
    tokens = [int((collate_samples([s], processor)["labels"][:, 1:] != -100).sum()) for s in samples]
    lm = sum(o.lm_loss * n for o, n in zip(singles, tokens)) / sum(tokens)
    torch.testing.assert_close(packed.lm_loss, lm, atol=1e-5, rtol=1e-5)
    # per mask: the 2-mask sample counts twice, the 1-mask sample once (the release weighs per row)
    dice = (2 * singles[1].mask_dice_loss + singles[3].mask_dice_loss) / 3
    torch.testing.assert_close(packed.mask_dice_loss, dice, atol=1e-6, rtol=1e-5)


def test_boundaries_positions_and_chunks(model, processor, samples):
    text = samples[0]
    n = len(text.encoded.input_ids)
    batch = collate_packed([[(text, 0, 20), (samples[2], 0, len(samples[2].encoded.input_ids)), (text, 20, n)]], processor)
    labels, segments = batch["labels"][0], batch["segment_ids"][0]
    starts = [0, 20, 20 + len(samples[2].encoded.input_ids)]
    assert all(labels[s] == -100 for s in starts)  # no sample learns to predict the next one's first token
    assert segments.tolist() == [0] * 20 + [1] * (starts[2] - 20) + [2] * (n - 20)
    positions = model.packed_position_ids(batch["input_ids"], batch["mm_token_type_ids"], batch["image_grid_thw"],
                                          batch["segment_ids"])
    assert positions.shape == (4, 1, batch["input_ids"].shape[1])
    assert positions[0, 0, 20] == 0 and positions[0, 0, starts[2]] == 0
    assert (positions[1:, 0, :20] == torch.arange(20)).all()  # text-only: plain positions in every row
    with pytest.raises(ValueError, match="cannot be split"):
        collate_packed([[(samples[1], 0, 10)]], processor)


def test_packed_rows_refuse_an_attention_mask(model, processor, samples):
    batch = collate_packed([[(samples[0], 0, len(samples[0].encoded.input_ids))]], processor)
    with pytest.raises(ValueError, match="no attention_mask"):
        model(**batch, attention_mask=torch.ones_like(batch["input_ids"]))

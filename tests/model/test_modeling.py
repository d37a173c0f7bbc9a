import pytest
import torch

from citrusv.data.collate import collate_samples, encode_sample
from citrusv.data.schema import parse_sample
from citrusv.model.losses import mask_bce_loss, mask_dice_loss
from citrusv.model.sam2_conversion import sam2_state_dict_to_original
from citrusv.model.tiny import TINY_SAM2_MODEL_NODE
from citrusv.processing.masks import rle_encode
from conftest import spread_sam_weights


def test_segment_equals_original_sam2_package(model):
    from sam2_oracle import build_original_sam2, released_segment

    spread_sam_weights(model)
    original = build_original_sam2(TINY_SAM2_MODEL_NODE)
    state = sam2_state_dict_to_original({k[5:]: v for k, v in model.state_dict().items() if k.startswith("sam2.")})
    video_only = {k: v for k, v in original.state_dict().items() if k not in state}
    assert all(k.startswith(("memory_", "mask_downsample", "obj_ptr", "maskmem", "no_mem_pos", "no_obj"))
               for k in video_only)
    original.load_state_dict({**state, **video_only}, strict=True)

    generator = torch.Generator().manual_seed(1)
    images = torch.randn(2, 3, 128, 128, generator=generator)
    prompts = torch.randn(2, 3, 32, generator=generator)
    with torch.no_grad():
        ours = model.segment(images, prompts)
    masks, ious, objects = released_segment(original, images, prompts)
    assert ours.mask_logits_lowres.shape == (2, 3, 32, 32)
    assert masks.abs().max() > 1.0  # the comparison is not between near-zero tensors
    torch.testing.assert_close(ours.mask_logits_lowres, masks, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(ours.iou_scores, ious, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(ours.object_score_logits, objects, atol=1e-5, rtol=1e-5)


def test_ragged_decoding_equals_one_call_per_prompt(model):
    spread_sam_weights(model, seed=3)
    generator = torch.Generator().manual_seed(2)
    images = torch.randn(2, 3, 128, 128, generator=generator)
    prompts = torch.randn(4, 32, generator=generator)
    owners = torch.tensor([0, 1, 1, 1])
    with torch.no_grad():
        features = model.encode_sam_images(images)
        logits, iou, obj = model.decode_masks(features, prompts, owners)
        for k in range(4):
            one = model.segment(images[owners[k]][None], prompts[k][None, None])
            # batched vs single matmuls reduce in another order: float32 rounding only
            torch.testing.assert_close(logits[k], one.mask_logits_lowres[0, 0], atol=5e-5, rtol=1e-4)
            torch.testing.assert_close(iou[k], one.iou_scores[0, 0], atol=1e-6, rtol=1e-6)
            torch.testing.assert_close(obj[k], one.object_score_logits[0, 0], atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("bad_images, bad_prompts, match", [
    ((2, 3, 64, 64), (2, 1, 32), r"\[K, 3, 128, 128\]"),
    ((2, 3, 128, 128), (3, 1, 32), "B = 2"),
    ((2, 3, 128, 128), (2, 1, 31), r"\[M, 32\]"),
])
def test_segment_rejects_wrong_shapes(model, bad_images, bad_prompts, match):
    with pytest.raises(ValueError, match=match):
        model.segment(torch.zeros(bad_images), torch.zeros(bad_prompts))


def test_losses_match_hand_computation():
    logits = torch.tensor([[[2.0, -1.0], [0.0, 3.0]]])
    target = torch.tensor([[[1.0, 0.0], [1.0, 1.0]]])
    prob = torch.sigmoid(logits)
    bce = -(target * prob.log() + (1 - target) * (1 - prob).log()).mean()
    torch.testing.assert_close(mask_bce_loss(logits, target), bce)
    dice = 1 - (2 * (prob * target).sum() + 1.0) / (prob.sum() + target.sum() + 1.0)
    torch.testing.assert_close(mask_dice_loss(logits, target, eps=1.0), dice)
    with pytest.raises(ValueError, match="differ in shape"):
        mask_bce_loss(logits, target[:, :1])


def _square_mask(height, width, top, left, size):
    import numpy as np

    mask = np.zeros((height, width), dtype=bool)
    mask[top:top + size, left:left + size] = True
    return rle_encode(mask)


def _mixed_batch(processor, tmp_path):
    from conftest import random_image

    paths = []
    for k, (h, w) in enumerate([(60, 80), (48, 48), (40, 64)]):
        path = tmp_path / f"img{k}.png"
        random_image(h, w, seed=k).save(path)
        paths.append(str(path))
    rows = [
        {"id": "two-masks", "images": [paths[0]], "messages": [
            {"role": "user", "content": "<image>Segment the liver and the kidney."},
            {"role": "assistant", "content": "The liver is [SEG] and the kidney is [SEG]."}],
         "masks": [_square_mask(60, 80, 5, 5, 30), _square_mask(60, 80, 30, 50, 20)]},
        {"id": "text-only", "messages": [{"role": "user", "content": "What is a CT scan?"},
                                         {"role": "assistant", "content": "A cross-sectional X-ray image."}]},
        {"id": "image-no-mask", "images": [paths[1]], "messages": [
            {"role": "user", "content": "<image>What modality is this?"}, {"role": "assistant", "content": "CT."}]},
        {"id": "one-mask", "images": [paths[2]], "messages": [
            {"role": "user", "content": "<image>Segment the lesion."}, {"role": "assistant", "content": "[SEG]"}],
         "masks": [_square_mask(40, 64, 10, 20, 16)]},
    ]
    samples = [encode_sample(parse_sample(row), processor) for row in rows]
    return collate_samples(samples, processor)


def test_mixed_batch_trains(model, processor, tmp_path):
    batch = _mixed_batch(processor, tmp_path)
    assert batch["gt_masks"].shape == (3, 32, 32)
    assert batch["mask_image_index"].tolist() == [0, 0, 1]
    assert batch["sam_pixel_values"].shape == (2, 3, 128, 128)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-3)
    losses, mask_losses = [], []
    for _ in range(10):
        out = model(**batch)
        assert out.num_masks == 3 and out.mask_logits_lowres.shape == (3, 32, 32)
        optimizer.zero_grad()
        out.loss.backward()
        optimizer.step()
        losses.append(out.loss.item())
        mask_losses.append((2.0 * out.mask_bce_loss + out.mask_dice_loss).item())
    assert losses[-1] < 0.75 * losses[0], losses
    assert mask_losses[-1] < 0.95 * mask_losses[0], mask_losses
    assert model.seg_projector[0].weight.grad is not None
    assert model.sam2.vision_encoder.backbone.patch_embed.projection.weight.grad.abs().sum() > 0


def test_loss_terms_and_weights(model, processor, tmp_path):
    batch = _mixed_batch(processor, tmp_path)
    out = model(**batch)
    expected = out.lm_loss + 2.0 * out.mask_bce_loss + 1.0 * out.mask_dice_loss
    torch.testing.assert_close(out.loss, expected)
    text_only = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                      mm_token_type_ids=batch["mm_token_type_ids"], pixel_values=batch["pixel_values"],
                      image_grid_thw=batch["image_grid_thw"], labels=batch["labels"])
    assert text_only.mask_bce_loss is None and text_only.seg_embeds.shape == (3, 32)
    torch.testing.assert_close(text_only.loss, out.lm_loss)


def test_seg_mask_count_mismatch_names_both_counts(model, processor, tmp_path):
    batch = _mixed_batch(processor, tmp_path)
    batch["gt_masks"] = batch["gt_masks"][:2]
    batch["mask_image_index"] = batch["mask_image_index"][:2]
    with pytest.raises(ValueError, match=r"3 \[SEG\] tokens \(per row: \[2, 0, 0, 1\]\) but 2 masks"):
        model(**batch)


def test_masks_without_sam_images_rejected(model, processor, tmp_path):
    batch = _mixed_batch(processor, tmp_path)
    del batch["sam_pixel_values"]
    with pytest.raises(ValueError, match="without sam_pixel_values"):
        model(**batch)


def test_model_needs_seg_token_id(model):
    from citrusv.model import CitrusVForConditionalGeneration

    config = model.config
    config.seg_token_id = None
    with pytest.raises(ValueError, match="seg_token_id"):
        CitrusVForConditionalGeneration(config)


def test_projector_layout_matches_release(model):
    names = [n for n, _ in model.seg_projector.named_parameters()]
    assert names == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert model.seg_projector[0].weight.shape == (64, 64)
    assert model.seg_projector[2].weight.shape == (32, 64)

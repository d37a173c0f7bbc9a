"""The original SAM2 package as a test oracle (installed --no-deps by scripts/test.sh).

Builds an original ``SAM2Base`` from the same ``model:`` description citrusv maps to
transformers, and runs the released model's way of prompting the mask decoder with a language
embedding: empty point (+ padding token) followed by the projected ``[SEG]`` embedding.
"""

from __future__ import annotations

import pytest
import torch

sam2 = pytest.importorskip("sam2", reason="the original sam2 package is the oracle (scripts/test.sh installs it)")


def build_original_sam2(node: dict) -> torch.nn.Module:
    """Original ``SAM2Base`` (image path + small memory modules) from a ``model:`` node."""
    from sam2.modeling.backbones.hieradet import Hiera
    from sam2.modeling.backbones.image_encoder import FpnNeck, ImageEncoder
    from sam2.modeling.memory_attention import MemoryAttention, MemoryAttentionLayer
    from sam2.modeling.memory_encoder import CXBlock, Fuser, MaskDownSampler, MemoryEncoder
    from sam2.modeling.position_encoding import PositionEmbeddingSine
    from sam2.modeling.sam2_base import SAM2Base
    from sam2.modeling.sam.transformer import RoPEAttention

    trunk_cfg, neck_cfg = node["image_encoder"]["trunk"], node["image_encoder"]["neck"]
    d = neck_cfg["d_model"]
    trunk = Hiera(**{k: v for k, v in trunk_cfg.items()})
    neck = FpnNeck(position_encoding=PositionEmbeddingSine(num_pos_feats=d, normalize=True, temperature=10000),
                   d_model=d, backbone_channel_list=neck_cfg["backbone_channel_list"],
                   fpn_top_down_levels=neck_cfg["fpn_top_down_levels"], fpn_interp_model="nearest")
    side = node["image_size"] // 16

    def rope(**kw):
        return RoPEAttention(rope_theta=10000.0, feat_sizes=[side, side], embedding_dim=d, num_heads=1,
                             downsample_rate=1, dropout=0.0, **kw)

    memory_attention = MemoryAttention(
        d_model=d, pos_enc_at_input=True, num_layers=1,
        layer=MemoryAttentionLayer(activation="relu", dim_feedforward=64, dropout=0.0, pos_enc_at_attn=False,
                                   self_attention=rope(), d_model=d, pos_enc_at_cross_attn_keys=True,
                                   pos_enc_at_cross_attn_queries=False,
                                   cross_attention=rope(rope_k_repeat=True, kv_in_dim=d // 2)))
    memory_encoder = MemoryEncoder(
        out_dim=d // 2, position_encoding=PositionEmbeddingSine(num_pos_feats=d // 2, normalize=True, temperature=10000),
        mask_downsampler=MaskDownSampler(kernel_size=3, stride=2, padding=1),
        fuser=Fuser(layer=CXBlock(dim=d, kernel_size=7, padding=3, layer_scale_init_value=1e-6, use_dwconv=True),
                    num_layers=1))
    flags = {k: v for k, v in node.items() if k != "image_encoder"}
    model = SAM2Base(ImageEncoder(trunk=trunk, neck=neck, scalp=1), memory_attention, memory_encoder,
                     use_obj_ptrs_in_encoder=True, fixed_no_obj_ptr=True, use_mlp_for_obj_ptr_proj=True,
                     multimask_min_pt_num=0, multimask_max_pt_num=1, **flags)
    return model.eval()


@torch.no_grad()
def released_segment(model: torch.nn.Module, images: torch.Tensor, prompt_embeds: torch.Tensor):
    """The release's decoding, one ``[SEG]`` per decoder call, with the original package.

    Returns mask logits ``[B, N, h, w]``, IoU ``[B, N]`` and object-score logits ``[B, N]``.
    """
    batch, count = prompt_embeds.shape[:2]
    backbone_out = model.forward_image(images)
    _, vision_feats, _, feat_sizes = model._prepare_backbone_features(backbone_out)
    vision_feats[-1] = vision_feats[-1] + model.no_mem_embed
    feats = [x.permute(1, 2, 0).view(batch, -1, *size) for x, size in zip(vision_feats, feat_sizes)]
    masks, ious, objects = [], [], []
    rows = torch.arange(batch)
    for j in range(count):
        points = torch.zeros(batch, 1, 2)
        labels = -torch.ones(batch, 1, dtype=torch.int32)
        sparse, dense = model.sam_prompt_encoder(points=(points, labels), boxes=None, masks=None)
        sparse = torch.cat([sparse, prompt_embeds[:, j : j + 1]], dim=1)
        low_res, iou, _, obj = model.sam_mask_decoder(
            image_embeddings=feats[-1], image_pe=model.sam_prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense, multimask_output=True,
            repeat_image=False, high_res_features=feats[:-1])
        best = iou.argmax(dim=-1)
        masks.append(low_res[rows, best].float())
        ious.append(iou[rows, best])
        objects.append(obj[:, 0])
    return torch.stack(masks, 1), torch.stack(ious, 1), torch.stack(objects, 1)

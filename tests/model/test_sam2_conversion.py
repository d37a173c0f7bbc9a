import pytest
import torch

from citrusv.model.sam2_conversion import (
    SAM2_VARIANTS,
    hf_to_original_key,
    original_model_node_from_sam2_config,
    original_to_hf_key,
    plan_original_sam2_keys,
    sam2_config_from_original,
    sam2_config_from_variant,
    sam2_state_dict_to_original,
    variant_name_from_cfg_path,
)
from citrusv.model.tiny import TINY_SAM2_MODEL_NODE


@pytest.mark.parametrize(
    "original, converted",
    [
        ("image_encoder.trunk.patch_embed.proj.weight", "vision_encoder.backbone.patch_embed.projection.weight"),
        ("image_encoder.trunk.blocks.3.norm2.bias", "vision_encoder.backbone.blocks.3.layer_norm2.bias"),
        ("image_encoder.trunk.blocks.1.mlp.layers.1.weight", "vision_encoder.backbone.blocks.1.mlp.proj_out.weight"),
        ("image_encoder.neck.convs.2.conv.weight", "vision_encoder.neck.convs.2.weight"),
        ("sam_prompt_encoder.mask_downscaling.4.bias", "prompt_encoder.mask_embed.layer_norm2.bias"),
        ("sam_mask_decoder.transformer.layers.0.cross_attn_image_to_token.out_proj.weight",
         "mask_decoder.transformer.layers.0.cross_attn_image_to_token.o_proj.weight"),
        ("sam_mask_decoder.transformer.layers.1.norm4.weight", "mask_decoder.transformer.layers.1.layer_norm4.weight"),
        ("sam_mask_decoder.transformer.norm_final_attn.bias", "mask_decoder.transformer.layer_norm_final_attn.bias"),
        ("sam_mask_decoder.output_upscaling.3.weight", "mask_decoder.upscale_conv2.weight"),
        ("sam_mask_decoder.output_hypernetworks_mlps.2.layers.1.bias", "mask_decoder.output_hypernetworks_mlps.2.layers.0.bias"),
        ("sam_mask_decoder.iou_prediction_head.layers.2.weight", "mask_decoder.iou_prediction_head.proj_out.weight"),
        ("sam_mask_decoder.pred_obj_score_head.layers.0.weight", "mask_decoder.pred_obj_score_head.proj_in.weight"),
        ("sam_mask_decoder.obj_score_token.weight", "mask_decoder.obj_score_token.weight"),
        ("no_mem_embed", "no_memory_embedding"),
    ],
)
def test_key_renames_both_ways(original, converted):
    assert original_to_hf_key(original) == converted
    assert hf_to_original_key(converted) == original


def test_plan_groups_point_embeddings_copies_gaussian_and_drops_video():
    keys = [f"p.sam_prompt_encoder.point_embeddings.{i}.weight" for i in (2, 0, 3, 1)] + [
        "p.sam_prompt_encoder.pe_layer.positional_encoding_gaussian_matrix",
        "p.memory_attention.layers.0.self_attn.q_proj.weight", "p.maskmem_tpos_enc", "p.no_obj_ptr",
        "p.no_mem_embed", "p.some_new_module.weight",
    ]
    plan = plan_original_sam2_keys(keys, src_prefix="p.", dst_prefix="sam2.")
    assert plan.sources["sam2.prompt_encoder.point_embed.weight"] == tuple(
        f"p.sam_prompt_encoder.point_embeddings.{i}.weight" for i in range(4))
    gaussian = ("p.sam_prompt_encoder.pe_layer.positional_encoding_gaussian_matrix",)
    assert plan.sources["sam2.prompt_encoder.shared_embedding.positional_embedding"] == gaussian
    assert plan.sources["sam2.shared_image_embedding.positional_embedding"] == gaussian
    assert plan.sources["sam2.no_memory_embedding"] == ("p.no_mem_embed",)
    assert sorted(plan.dropped) == ["p.maskmem_tpos_enc", "p.memory_attention.layers.0.self_attn.q_proj.weight",
                                    "p.no_obj_ptr"]
    assert plan.unexpected == ["p.some_new_module.weight"]


def test_every_tiny_weight_round_trips_through_original_names(model):
    state = {k[len("sam2."):]: v for k, v in model.state_dict().items() if k.startswith("sam2.")}
    original = sam2_state_dict_to_original(state)
    plan = plan_original_sam2_keys(original)
    assert not plan.unexpected and not plan.dropped
    assert set(plan.sources) == set(state)
    for target, sources in plan.sources.items():
        rebuilt = torch.cat([original[s] for s in sources]) if len(sources) > 1 else original[sources[0]]
        torch.testing.assert_close(rebuilt, state[target], rtol=0, atol=0)


@pytest.mark.parametrize("path, name", [("/mnt/x/y/sam2_hiera_l.yaml", "sam2_hiera_l"),
                                        ("sam2.1_hiera_b+.yaml", "sam2.1_hiera_b+"), ("C:\\cfg\\sam2_hiera_t", "sam2_hiera_t")])
def test_variant_from_cfg_path(path, name):
    assert variant_name_from_cfg_path(path) == name


def test_unknown_variant_names_the_file():
    with pytest.raises(ValueError, match="sam3_giant.yaml"):
        variant_name_from_cfg_path("/a/sam3_giant.yaml")


def test_hiera_l_sizes():
    config = sam2_config_from_variant("sam2_hiera_l")
    backbone = config.vision_config.backbone_config
    assert backbone.embed_dim_per_stage == [144, 288, 576, 1152]
    assert backbone.num_attention_heads_per_stage == [2, 4, 8, 16]
    assert backbone.blocks_per_stage == [2, 6, 36, 4]
    assert backbone.window_size_per_stage == [8, 4, 16, 8]
    assert config.vision_config.backbone_feature_sizes == [[256, 256], [128, 128], [64, 64]]
    assert config.mask_decoder_config.dynamic_multimask_via_stability is False


@pytest.mark.parametrize("flag, value", [("use_high_res_features_in_sam", False), ("pred_obj_scores", False),
                                         ("directly_add_no_mem_embed", False), ("iou_prediction_use_sigmoid", False)])
def test_unsupported_options_are_named(flag, value):
    node = {**TINY_SAM2_MODEL_NODE, flag: value}
    with pytest.raises(ValueError, match=flag):
        sam2_config_from_original(node)


def test_inconsistent_channels_rejected():
    node = {**TINY_SAM2_MODEL_NODE, "image_encoder": {**TINY_SAM2_MODEL_NODE["image_encoder"],
            "neck": {**TINY_SAM2_MODEL_NODE["image_encoder"]["neck"], "backbone_channel_list": [64, 48, 24, 12]}}}
    with pytest.raises(ValueError, match="backbone_channel_list"):
        sam2_config_from_original(node)


def test_model_node_round_trip():
    config = sam2_config_from_original(TINY_SAM2_MODEL_NODE)
    again = sam2_config_from_original(original_model_node_from_sam2_config(config))
    assert again.to_dict() == config.to_dict()


@pytest.mark.parametrize("name", sorted(SAM2_VARIANTS))
def test_public_yaml_variants_match_the_original_package(name):
    """Every public SAM2 yaml, built by the original package, converts with 0 missing / 0 unexpected
    keys and equal shapes (parameters on the meta device: no weights allocated)."""
    pytest.importorskip("sam2")
    from hydra import compose
    from hydra.utils import instantiate
    from omegaconf import OmegaConf
    from transformers import Sam2Model

    from citrusv.model.checkpoint import parameters_on_meta

    folder = "sam2.1" if name.startswith("sam2.1") else "sam2"
    cfg = compose(config_name=f"configs/{folder}/{name}.yaml")
    OmegaConf.resolve(cfg)
    with parameters_on_meta(torch.float32):
        original = instantiate(cfg.model, _recursive_=True)
        converted = Sam2Model(sam2_config_from_variant(name))
    original_shapes = {k: v.shape for k, v in original.state_dict().items()}
    target_shapes = {k: v.shape for k, v in converted.state_dict().items()}
    plan = plan_original_sam2_keys(original_shapes)
    assert plan.unexpected == []
    assert set(plan.sources) == set(target_shapes)
    assert len(plan.dropped) in (157, 160)  # video-memory weights of SAM 2.0 / 2.1
    for target, sources in plan.sources.items():
        first = original_shapes[sources[0]]
        shape = first if len(sources) == 1 else torch.Size([sum(original_shapes[s][0] for s in sources), *first[1:]])
        assert shape == target_shapes[target], target

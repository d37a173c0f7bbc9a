import json
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

from citrusv.model import CitrusVConfig, CitrusVForConditionalGeneration
from citrusv.model.checkpoint import CheckpointError, SafetensorsFolder, load_citrus_v


def _logits(model, processor, image):
    inputs = processor([{"role": "user", "content": "<image>Describe the scan."}], [image])
    with torch.no_grad():
        return model(**inputs.model_inputs()).logits


def test_native_round_trip_gives_identical_logits(model, processor, image, tmp_path):
    model.save_pretrained(tmp_path / "ckpt")
    loaded, report = load_citrus_v(tmp_path / "ckpt", return_report=True)
    assert report.layout == "native" and report.dropped == []
    assert torch.equal(_logits(model, processor, image), _logits(loaded, processor, image))
    for key, value in model.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key]), key


def test_released_layout_loads_with_no_missing_or_unexpected_keys(released_checkpoint, native_checkpoint):
    raw = json.loads((released_checkpoint / "config.json").read_text())
    assert "mllm_config" not in raw and raw["seg_token_idx"] and "hidden_size" in raw
    keys = SafetensorsFolder(released_checkpoint).keys()
    assert any(k.startswith("grounding_encoder.sam2_model.image_encoder.trunk.") for k in keys)
    assert any(k.startswith("mllm.model.language_model.layers.") for k in keys)
    assert {"seg_projector.0.weight", "seg_projector.2.bias"} <= set(keys)

    released, report = load_citrus_v(released_checkpoint, return_report=True)
    assert report.layout == "released"
    assert len(report.dropped) == 7  # the video-memory weights the tiny release carries
    expected = released.state_dict()
    assert report.loaded == len(expected)  # every weight came from the file: nothing missing
    native = load_citrus_v(native_checkpoint)
    for key, value in native.state_dict().items():
        assert torch.equal(value, expected[key]), key


def test_auto_classes_load_both_layouts(released_checkpoint):
    from transformers import AutoConfig, AutoModel, AutoModelForImageTextToText

    assert isinstance(AutoConfig.from_pretrained(released_checkpoint), CitrusVConfig)
    assert isinstance(AutoModel.from_pretrained(released_checkpoint), CitrusVForConditionalGeneration)
    assert isinstance(AutoModelForImageTextToText.from_pretrained(released_checkpoint), CitrusVForConditionalGeneration)


def test_sharded_bf16_checkpoint(model, tmp_path):
    model.to(torch.bfloat16).save_pretrained(tmp_path / "ckpt", max_shard_size="300KB")
    files = sorted(p.name for p in (tmp_path / "ckpt").glob("*.safetensors"))
    assert len(files) > 2 and (tmp_path / "ckpt" / "model.safetensors.index.json").is_file()
    loaded = load_citrus_v(tmp_path / "ckpt")
    assert loaded.mllm.lm_head.weight.dtype == torch.bfloat16
    as_float = load_citrus_v(tmp_path / "ckpt", dtype=torch.float32)
    assert as_float.mllm.lm_head.weight.dtype == torch.float32
    torch.testing.assert_close(as_float.mllm.lm_head.weight, model.mllm.lm_head.weight.float())
    # a re-save with a bigger shard size removes the stale shards
    loaded.save_pretrained(tmp_path / "ckpt")
    assert sorted(p.name for p in (tmp_path / "ckpt").glob("*.safetensors")) == ["model.safetensors"]
    assert not (tmp_path / "ckpt" / "model.safetensors.index.json").exists()


def _copy(src, dst):
    shutil.copytree(src, dst)
    return dst


def test_missing_weight_is_named(native_checkpoint, tmp_path):
    folder = _copy(native_checkpoint, tmp_path / "c")
    state = load_file(folder / "model.safetensors")
    del state["seg_projector.2.weight"]
    save_file(state, folder / "model.safetensors")
    with pytest.raises(CheckpointError, match=r"lacks 1 weight.*seg_projector\.2\.weight"):
        load_citrus_v(folder)


def test_unexpected_weight_is_named(native_checkpoint, tmp_path):
    folder = _copy(native_checkpoint, tmp_path / "c")
    state = load_file(folder / "model.safetensors")
    state["seg_projector.4.weight"] = torch.zeros(2)
    save_file(state, folder / "model.safetensors")
    with pytest.raises(CheckpointError, match=r"seg_projector\.4\.weight"):
        load_citrus_v(folder)


def test_unknown_released_sam2_weight_is_named(released_checkpoint, tmp_path):
    folder = _copy(released_checkpoint, tmp_path / "c")
    state = load_file(folder / "model.safetensors")
    state["grounding_encoder.sam2_model.sam_mask_decoder.new_head.weight"] = torch.zeros(2)
    save_file(state, folder / "model.safetensors")
    with pytest.raises(CheckpointError, match="new_head"):
        load_citrus_v(folder)


def test_wrong_shape_is_named(native_checkpoint, tmp_path):
    folder = _copy(native_checkpoint, tmp_path / "c")
    state = load_file(folder / "model.safetensors")
    state["seg_projector.2.weight"] = torch.zeros(16, 64)
    save_file(state, folder / "model.safetensors")
    with pytest.raises(CheckpointError, match=r"seg_projector\.2\.weight: checkpoint \[16, 64\] vs model \[32, 64\]"):
        load_citrus_v(folder)


def test_truncated_file_is_named(native_checkpoint, tmp_path):
    folder = _copy(native_checkpoint, tmp_path / "c")
    path = folder / "model.safetensors"
    path.write_bytes(path.read_bytes()[:-1000])
    with pytest.raises(CheckpointError, match="truncated"):
        load_citrus_v(folder)


def test_missing_shard_is_named(model, tmp_path):
    model.save_pretrained(tmp_path / "c", max_shard_size="300KB")
    victim = sorted((tmp_path / "c").glob("model-*.safetensors"))[1]
    victim.unlink()
    with pytest.raises(CheckpointError, match=victim.name):
        load_citrus_v(tmp_path / "c")


def test_missing_files(tmp_path, native_checkpoint):
    with pytest.raises(FileNotFoundError, match="no checkpoint folder"):
        load_citrus_v(tmp_path / "nothing-here")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="config.json"):
        load_citrus_v(tmp_path / "empty")
    folder = _copy(native_checkpoint, tmp_path / "c")
    (folder / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="no model.safetensors"):
        load_citrus_v(folder)


def test_hub_id_without_internet_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a local folder and could not be fetched"):
        load_citrus_v("jdh-algo/Citrus-V-8B-v1.0", local_files_only=True, cache_dir=str(tmp_path))


def test_unsupported_arguments_rejected(native_checkpoint):
    with pytest.raises(TypeError, match="quantization_config"):
        load_citrus_v(native_checkpoint, quantization_config={"bits": 4})


def test_qwen3_vl_backbone_round_trip(tmp_path, image):
    from citrusv.model.tiny import tiny_model
    from citrusv.processing import CitrusVProcessor

    model, tokenizer = tiny_model("qwen3_vl")
    assert type(model.mllm).__name__ == "Qwen3VLForConditionalGeneration"
    processor = CitrusVProcessor.for_model_config(model.config, tokenizer)
    assert processor.image_config.image_mean == (0.5, 0.5, 0.5)
    model.save_pretrained(tmp_path / "q3")
    loaded = load_citrus_v(tmp_path / "q3")
    assert loaded.config.backbone == "qwen3_vl"
    assert torch.equal(_logits(model, processor, image), _logits(loaded, processor, image))


def test_released_config_with_text_config_block():
    from citrusv.model.tiny import tiny_config

    config = tiny_config()
    text = config.mllm_config.text_config.to_dict()
    raw = {"model_type": "citrus_v", "text_config": text, "vision_config": config.mllm_config.vision_config.to_dict(),
           "seg_token_idx": 7, "grounding_encoder_config": {"cfg_path": "/abs/path/sam2.1_hiera_s.yaml"},
           "image_token_id": config.mllm_config.image_token_id}
    parsed = CitrusVConfig.from_dict(raw)
    assert parsed.seg_token_id == 7 and parsed.text_hidden_size == 64
    assert parsed.sam2_config.vision_config.backbone_config.blocks_per_stage == [1, 2, 11, 2]
    assert (parsed.image_min_pixels, parsed.image_max_pixels) == (200704, 1003520)


@pytest.mark.parametrize("extra, match", [
    ({"use_res_seg_projector": True}, "residual projector"),
    ({"grounding_encoder_config": {"cfg_path": "/x/unknown.yaml"}}, "unknown SAM2 config file"),
    ({"grounding_encoder_config": {}}, "describes no SAM2"),
    ({"loss_dice_config": {"naive_dice": False}}, "naive Dice"),
])
def test_released_config_errors(extra, match):
    raw = {"model_type": "citrus_v", "hidden_size": 64, "num_attention_heads": 4, "vision_config": {"depth": 1},
           "seg_token_idx": 3, "grounding_encoder_config": {"cfg_path": "sam2_hiera_t.yaml"}}
    with pytest.raises(ValueError, match=match):
        CitrusVConfig.from_dict({**raw, **extra})


def _tiny_qwen_folder(tmp_path, tokenizer, model):
    """A Qwen2.5-VL checkpoint in the hub layout, with a vocabulary that has no spare rows."""
    from transformers import Qwen2_5_VLForConditionalGeneration

    from citrusv.model.tiny import tiny_tokenizer

    base = tiny_tokenizer(with_citrus_tokens=False)
    config = model.config.mllm_config
    config.text_config.vocab_size = len(base)
    torch.manual_seed(0)
    qwen = Qwen2_5_VLForConditionalGeneration(config)
    folder = tmp_path / "qwen"
    qwen.save_pretrained(folder)
    base.save_pretrained(folder)
    return folder, qwen


def test_assemble_from_qwen_folder_and_original_sam2_pt(model, tmp_path):
    from sam2_oracle import build_original_sam2

    from citrusv.model.checkpoint import assemble_citrus_v
    from citrusv.model.tiny import TINY_SAM2_MODEL_NODE

    folder, qwen = _tiny_qwen_folder(tmp_path, None, model)
    assert any(k.startswith("model.layers.") for k in SafetensorsFolder(folder).keys())  # hub layout
    original = build_original_sam2(TINY_SAM2_MODEL_NODE)
    torch.save({"model": original.state_dict()}, tmp_path / "MedSAM2_like.pt")
    with pytest.raises(ValueError, match="sam2_variant"):  # the file name says nothing about the architecture
        assemble_citrus_v(folder, tmp_path / "MedSAM2_like.pt")
    assembled, tokenizer = assemble_citrus_v(folder, tmp_path / "MedSAM2_like.pt", sam2_variant=TINY_SAM2_MODEL_NODE)
    ids = tokenizer.convert_tokens_to_ids(["[SEG]", "<bbox>", "</bbox>"])
    assert assembled.config.seg_token_id == ids[0] == len(tokenizer) - 3
    # the base vocabulary had no spare rows, so the embeddings grew by exactly 3
    assert assembled.mllm.get_input_embeddings().weight.shape[0] == len(tokenizer) == qwen.config.text_config.vocab_size + 3
    torch.testing.assert_close(assembled.mllm.get_input_embeddings().weight[: len(tokenizer) - 3],
                               qwen.get_input_embeddings().weight)
    torch.testing.assert_close(assembled.sam2.no_memory_embedding, original.no_mem_embed)
    torch.testing.assert_close(assembled.sam2.prompt_encoder.point_embed.weight,
                               torch.cat([original.sam_prompt_encoder.point_embeddings[i].weight for i in range(4)]))
    assert assembled.seg_projector[0].weight.std().item() == pytest.approx(0.02, rel=0.2)


def test_assemble_keeps_embeddings_when_vocabulary_has_room(model, tmp_path):
    from citrusv.model.checkpoint import assemble_citrus_v
    from citrusv.model.tiny import tiny_tokenizer

    folder, qwen = _tiny_qwen_folder(tmp_path, None, model)
    spare = qwen.config.text_config.vocab_size + 64
    qwen.resize_token_embeddings(spare)
    qwen.save_pretrained(folder)
    sam_folder = tmp_path / "sam2-hf"
    model.sam2.save_pretrained(sam_folder)  # a transformers SAM2 folder
    assembled, tokenizer = assemble_citrus_v(folder, sam_folder, tokenizer=tiny_tokenizer(with_citrus_tokens=False))
    assert assembled.mllm.get_input_embeddings().weight.shape[0] == spare
    for key, value in model.sam2.state_dict().items():
        assert torch.equal(assembled.sam2.state_dict()[key], value), key


def test_public_pt_file_name_picks_the_architecture(model, tmp_path):
    from citrusv.model.checkpoint import assemble_citrus_v

    folder, _ = _tiny_qwen_folder(tmp_path, None, model)
    state = {k[len("sam2."):]: v for k, v in model.state_dict().items() if k.startswith("sam2.")}
    from citrusv.model.sam2_conversion import sam2_state_dict_to_original

    torch.save({"model": sam2_state_dict_to_original(state)}, tmp_path / "sam2_hiera_large.pt")
    # Hiera-L is chosen from the name, so the tiny trunk cannot fit: its stage-transition blocks
    # (1, 2, 4) carry projections Hiera-L has elsewhere (2, 8, 44), and the error names them.
    with pytest.raises(CheckpointError, match=r"does not have.*sam2\.vision_encoder\.backbone\.blocks\.1\.proj"):
        assemble_citrus_v(folder, tmp_path / "sam2_hiera_large.pt")

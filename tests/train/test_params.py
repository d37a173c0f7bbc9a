import pytest
import torch

from citrusv.train.config import load_stage_config
from citrusv.train.hooks import SegmentationGradientScale
from citrusv.train.params import apply_freezing, component_of, component_prefixes, dry_run_table, optimizer_groups
from conftest import random_image


@pytest.mark.parametrize("backbone", ["qwen2_5_vl", "qwen3_vl"])
def test_every_prefix_hits_parameters_and_components_partition(backbone):
    from citrusv.model.tiny import tiny_model

    model, _ = tiny_model(backbone)
    prefixes = component_prefixes(model)
    names = [n for n, _ in model.named_parameters()]
    for component, entries in prefixes.items():
        for prefix in entries:
            assert any(n.startswith(prefix + ".") for n in names), (component, prefix)
    owners = {n: component_of(n, prefixes) for n in names}  # raises if one has no owner
    assert owners["mllm.lm_head.weight"] == "llm"
    assert all(owners[n] == "aligner" for n in names if n.startswith("mllm.model.visual.merger."))
    assert all(owners[n] == "vit" for n in names if n.startswith("mllm.model.visual.blocks."))
    assert all(owners[n] == "seg" for n in names if n.startswith(("sam2.", "seg_projector.")))
    if backbone == "qwen3_vl":
        assert any(owners[n] == "aligner" for n in names if "deepstack_merger_list" in n)


@pytest.mark.parametrize("stage, trains", [
    (1, {"vit", "aligner"}), (2, {"llm", "vit", "aligner"}), (3, {"llm", "vit", "aligner", "seg"}), (4, {"seg"}),
])
def test_dry_run_tables(model, stage, trains):
    config = load_stage_config(stage)
    owners = apply_freezing(model, config)
    counts, groups, table = dry_run_table(model, config)
    by_component = {row.component: row for row in counts}
    for component, row in by_component.items():
        expected = sum(p.numel() for n, p in model.named_parameters() if owners[n] == component)
        if component in trains:
            assert row.trainable == expected and row.frozen == 0
            assert row.learning_rate == config.learning_rates[component]
        else:
            assert row.trainable == 0 and row.frozen == expected and row.learning_rate is None
    assert {g["name"].split("/")[0] for g in groups} == trains
    for group in groups:
        assert group["lr"] == config.learning_rates[group["name"].split("/")[0]]
    if stage == 4:  # the whole MLLM frozen, lm_head included
        assert not model.mllm.lm_head.weight.requires_grad
        assert "seg" in table and "frozen" in table
    # groups partition the trainable parameters
    grouped = [id(p) for g in optimizer_groups(model, config) for p in g["params"]]
    assert sorted(grouped) == sorted(id(p) for p in model.parameters() if p.requires_grad)
    assert len(grouped) == len(set(grouped))


def test_no_weight_decay_on_biases_and_norms(model):
    config = load_stage_config(3)
    apply_freezing(model, config)
    for group in optimizer_groups(model, config):
        if group["name"].endswith("no_decay"):
            assert group["weight_decay"] == 0 and all(p.ndim < 2 or p.shape[0] == 1 for p in group["params"])
        else:
            assert group["weight_decay"] == 0.1 and all(p.ndim >= 2 for p in group["params"])


def test_stage3_hook_scales_segmentation_gradients_only(model, processor):
    conversation = [{"role": "user", "content": "<image>Segment the liver."}, {"role": "assistant", "content": "It is [SEG]."}]
    inputs = processor(conversation, [random_image(60, 80)], add_generation_prompt=False, return_labels=True)
    batch = {**inputs.model_inputs(), "labels": inputs.labels, "sam_pixel_values": inputs.sam_pixel_values,
             "gt_masks": torch.ones(1, 32, 32)}

    def gradients():
        model.zero_grad(set_to_none=True)
        model(**batch).loss.backward()
        return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}

    model.train()
    plain = gradients()
    with SegmentationGradientScale(model, 0.001):
        scaled = gradients()
    after = gradients()
    seg = [n for n in plain if n.startswith(("sam2.", "seg_projector."))]
    mllm = [n for n in plain if n.startswith("mllm.")]
    assert seg and mllm
    for name in seg:
        torch.testing.assert_close(scaled[name], plain[name] * 0.001, rtol=1e-6, atol=0)
    for name in mllm:  # including the gradient the mask loss sends back through [SEG]
        torch.testing.assert_close(scaled[name], plain[name], rtol=0, atol=0)
    for name in plain:  # the hooks are gone after the context
        torch.testing.assert_close(after[name], plain[name], rtol=0, atol=0)
    with pytest.raises(ValueError, match="scale"):
        SegmentationGradientScale(model, 0.0)

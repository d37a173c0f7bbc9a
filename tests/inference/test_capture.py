"""The one-pass [SEG] capture equals a teacher-forced forward at every [SEG] input position."""

import pytest
import torch

from citrusv.inference.capture import SegStateCapture
from citrusv.inference.constraints import ForcedTokens, TokenBias
from conftest import random_image


def _batch(processor):
    conversations = [
        [{"role": "user", "content": "<image>Segment the liver please"}],
        [{"role": "user", "content": "<image>Hi"}, {"role": "assistant", "content": "It is [SEG]."},
         {"role": "user", "content": "again"}],
        [{"role": "user", "content": "<image>What is this long question about the kidney"}],
    ]
    images = [[random_image(60, 80, 1)], [random_image(40, 40, 2)], [random_image(48, 40, 3)]]
    return processor(conversations, images)


def _teacher_forced(model, inputs, sequences):
    batch, length = sequences.shape
    prompt = inputs.input_ids.shape[1]
    mask = torch.cat([inputs.attention_mask, torch.ones(batch, length - prompt, dtype=torch.long)], 1)
    mm = torch.cat([inputs.mm_token_type_ids, torch.zeros(batch, length - prompt, dtype=torch.int32)], 1)
    with torch.no_grad():
        return model.mllm.model(input_ids=sequences, attention_mask=mask, mm_token_type_ids=mm,
                                pixel_values=inputs.pixel_values, image_grid_thw=inputs.image_grid_thw).last_hidden_state


@pytest.mark.parametrize("kwargs, processors, trailing", [
    (dict(max_new_tokens=6, do_sample=False), "bias", None),
    (dict(max_new_tokens=6, do_sample=True, top_k=0), "bias", None),
    (dict(max_new_tokens=5, do_sample=False), "forced", True),
    (dict(max_new_tokens=5, do_sample=False, use_cache=False), "forced", True),
    (dict(max_new_tokens=1, do_sample=False), "forced-first", True),  # the prefill is the last step
])
def test_capture_equals_teacher_forcing(model, processor, kwargs, processors, trailing):
    seg = processor.token_ids.seg
    inputs = _batch(processor)
    schedules = {"forced": [5, seg, 6, 7, seg], "forced-first": [seg]}
    logits_processor = [TokenBias({seg: 6.0})] if processors == "bias" else [ForcedTokens(schedules[processors])]
    torch.manual_seed(0)
    with SegStateCapture(model.mllm, seg) as capture:
        sequences = model.mllm.generate(**inputs.model_inputs(), pad_token_id=processor.token_ids.pad,
                                        eos_token_id=[processor.token_ids.im_end], logits_processor=logits_processor,
                                        **kwargs)
        states = capture.finish(sequences, inputs.input_ids.shape[1])
    prompt = inputs.input_ids.shape[1]
    hidden = _teacher_forced(model, inputs, sequences)
    total = 0
    for row in range(sequences.shape[0]):
        columns = [c for c in range(prompt, sequences.shape[1]) if sequences[row, c] == seg]
        assert states.generated[row].shape[0] == len(columns)
        if columns:
            torch.testing.assert_close(states.generated[row], hidden[row, columns], atol=2e-6, rtol=1e-5)
        total += len(columns)
    assert total > 0
    assert states.prompt_counts == [0, 1, 0]  # the [SEG] in row 1's history is not a new one
    if trailing:
        assert states.extra_steps == 1 and (sequences[:, -1] == seg).all()


def test_no_seg_runs_no_extra_step(model, processor):
    inputs = _batch(processor)
    with SegStateCapture(model.mllm, processor.token_ids.seg) as capture:
        sequences = model.mllm.generate(**inputs.model_inputs(), max_new_tokens=3, do_sample=False,
                                        pad_token_id=processor.token_ids.pad,
                                        logits_processor=[TokenBias({processor.token_ids.seg: -100.0})])
        states = capture.finish(sequences, inputs.input_ids.shape[1])
    assert states.extra_steps == 0 and all(s.shape[0] == 0 for s in states.generated)


def test_hooks_are_removed(model, processor):
    with SegStateCapture(model.mllm, processor.token_ids.seg):
        assert model.mllm._forward_pre_hooks
    assert not model.mllm._forward_pre_hooks and not model.mllm.model.language_model.norm._forward_hooks

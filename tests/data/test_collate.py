import numpy as np
import pytest
from PIL import Image

from citrusv.data import SampleError, parse_sample
from citrusv.data.collate import collate_samples, encode_sample, load_mask
from citrusv.processing.masks import rle_encode
from conftest import random_image


def _row(image_path, mask):
    return {"id": "x", "images": [str(image_path)], "masks": [mask],
            "messages": [{"role": "user", "content": "<image>Segment it."}, {"role": "assistant", "content": "[SEG]"}]}


def test_mask_file_and_rle_give_the_same_targets(processor, tmp_path):
    random_image(60, 80).save(tmp_path / "img.png")
    mask = np.zeros((60, 80), dtype=bool)
    mask[10:50, 20:60] = True
    Image.fromarray(mask.astype(np.uint8) * 255).save(tmp_path / "mask.png")
    from_file = encode_sample(parse_sample(_row(tmp_path / "img.png", "mask.png")), processor, root=tmp_path)
    from_rle = encode_sample(parse_sample(_row(tmp_path / "img.png", rle_encode(mask))), processor)
    np.testing.assert_array_equal(from_file.masks_lowres, from_rle.masks_lowres)
    assert from_rle.masks_lowres.shape == (1, 32, 32) and from_rle.masks_lowres[0, 16, 16]
    batch = collate_samples([from_file, from_rle], processor)
    assert batch["gt_masks"].shape == (2, 32, 32) and batch["mask_image_index"].tolist() == [0, 1]


def test_mask_size_must_match_the_image(processor, tmp_path):
    random_image(60, 80).save(tmp_path / "img.png")
    sample = parse_sample(_row(tmp_path / "img.png", rle_encode(np.zeros((80, 60), bool))))
    with pytest.raises(SampleError, match="mask is 80x60 but the first image is 60x80"):
        encode_sample(sample, processor)


def test_unreadable_inputs_are_sample_errors(processor, tmp_path):
    (tmp_path / "bad.png").write_bytes(b"junk")
    with pytest.raises(SampleError, match="not a readable image"):
        encode_sample(parse_sample(_row(tmp_path / "bad.png", rle_encode(np.zeros((2, 2), bool)))), processor)
    with pytest.raises(SampleError, match="no mask file"):
        load_mask(str(tmp_path / "missing.png"))

"""MinHash + LSH and pHash + banded Hamming index: estimates, exhaustiveness, recall / precision."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageEnhance

from citrusv.curate.minhash import (
    MinHashLSH,
    jaccard_estimate,
    lsh_params,
    minhash_signature,
    minhash_signatures,
    shingles,
)
from citrusv.curate.phash import HammingIndex, hamming, phash

WORDS = ["liver", "spleen", "kidney", "lung", "nodule", "mass", "lesion", "normal", "enlarged", "contrast", "enhancement", "margin", "density", "fluid", "effusion", "fracture", "bone", "cortex", "vessel", "artery", "vein", "duct", "wall", "thickening", "opacity", "consolidation", "calcification", "cyst", "tumor", "edema", "hemorrhage", "infarct", "atrophy", "stenosis", "dilation"]


def _doc(rng, n=40):
    return " ".join(rng.choice(WORDS, size=n))


@pytest.mark.parametrize("text, n, expected", [
    ("The  Liver\tis normal", 3, {"the liver is", "liver is normal"}),  # 4 words -> 2 shingles
    ("two words", 3, {"two words"}),                                    # shorter than n -> one shingle
    ("", 3, set()),
])
def test_shingles(text, n, expected):
    assert shingles(text, n) == expected


def test_signature_deterministic_and_estimates_jaccard():
    rng = np.random.default_rng(0)
    errors = []
    for _ in range(30):
        a = _doc(rng, 60)
        words = a.split()
        b = " ".join(words[:30] + list(rng.choice(WORDS, size=30)))
        sa, sb = shingles(a), shingles(b)
        true = len(sa & sb) / len(sa | sb)
        errors.append(abs(jaccard_estimate(minhash_signature(a, 256), minhash_signature(b, 256)) - true))
    assert np.array_equal(minhash_signature("abc def ghi"), minhash_signature("abc def ghi"))
    assert minhash_signature("x y z").dtype == np.uint32 and minhash_signature("x y z").shape == (128,)
    assert np.mean(errors) < 0.03  # standard error of a 256-entry estimate is <= 0.031


def test_lsh_params_and_errors():
    bands, rows = lsh_params(0.8, 128)
    assert bands * rows <= 128 and 0.6 < (1 / bands) ** (1 / rows) < 0.9
    with pytest.raises(ValueError):
        lsh_params(1.0, 128)
    with pytest.raises(ValueError):
        MinHashLSH(0.8, 128, bands=0)
    lsh = MinHashLSH(0.8, 128)
    lsh.insert(0, minhash_signature("a b c d"))
    with pytest.raises(ValueError, match="already"):
        lsh.insert(0, minhash_signature("a b c d"))
    with pytest.raises(ValueError, match="shape"):
        lsh.query(np.zeros(64, np.uint32))


def test_lsh_recall_precision_on_synthetic_near_duplicates():
    """500 random report-like texts of 40 words; 500 near duplicates (one word replaced: shingle
    Jaccard ~0.85, threshold 0.7). Each near duplicate must find its original; unrelated texts none."""
    rng = np.random.default_rng(1)
    originals = [_doc(rng) for _ in range(500)]
    lsh = MinHashLSH(threshold=0.7, num_perm=128)
    for key, text in enumerate(originals):
        lsh.insert(key, minhash_signature(text))
    found = false_hits = 0
    for key, text in enumerate(originals):
        words = text.split()
        words[rng.integers(len(words))] = "pneumothorax"
        hits = [k for k, _ in lsh.query(minhash_signature(" ".join(words)))]
        found += key in hits
        false_hits += sum(k != key for k in hits)
    recall, precision = found / 500, found / max(found + false_hits, 1)
    assert recall >= 0.95, recall
    assert precision >= 0.99, precision
    negatives = sum(bool(lsh.query(minhash_signature(_doc(rng)))) for _ in range(300))
    assert negatives == 0


def _image(rng, size=128):
    yy, xx = np.mgrid[:size, :size]
    img = np.zeros((size, size))
    for _ in range(6):
        cy, cx, r = rng.integers(0, size, 2).tolist() + [int(rng.integers(8, 40))]
        img += ((yy - cy) ** 2 + (xx - cx) ** 2 < r * r) * rng.uniform(0.3, 1.0)
    img = img / img.max() * 200 + rng.normal(0, 5, img.shape)
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))


def _perturb(image):
    small = image.resize((102, 102), Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    small.save(buffer, format="JPEG", quality=70)
    return ImageEnhance.Brightness(Image.open(buffer)).enhance(1.1)


def test_phash_near_duplicates_and_distinct_images():
    rng = np.random.default_rng(2)
    images = [_image(rng) for _ in range(60)]
    hashes = [phash(im) for im in images]
    near = [hamming(h, phash(_perturb(im))) for h, im in zip(hashes, images)]
    assert phash(images[0]) == hashes[0] and phash(np.asarray(images[0])) == hashes[0]
    assert max(near) <= 8, near
    distinct = [hamming(hashes[i], hashes[j]) for i in range(60) for j in range(i + 1, 60)]
    assert np.mean(np.array(distinct) <= 8) < 0.01


@pytest.mark.parametrize("radius, bands", [(3, None), (6, None), (8, 9)])
def test_hamming_index_is_exhaustive_with_radius_plus_one_bands(radius, bands):
    rng = np.random.default_rng(radius)
    stored = [int(v) for v in rng.integers(0, 2**63, size=300, dtype=np.uint64)]
    index = HammingIndex(radius, bands)
    for key, value in enumerate(stored):
        index.insert(key, value)
    for key, value in enumerate(stored[:100]):
        flips = rng.choice(64, size=radius, replace=False)
        query = value ^ sum(1 << int(b) for b in flips)
        brute = sorted((k, hamming(query, v)) for k, v in enumerate(stored) if hamming(query, v) <= radius)
        assert sorted(index.query(query)) == brute
        assert (key, radius) in index.query(query)


def test_hamming_index_errors():
    with pytest.raises(ValueError):
        HammingIndex(-1)
    with pytest.raises(ValueError):
        HammingIndex(4, bands=65)


def test_batch_signatures_equal_single_ones_and_follow_word_semantics():
    texts = ["", "two words", "a", "The  LIVER, is normal.", "the liver is normal", "Ünïcode ΑΒΓ 中文，测试。 mixed_word x2",
             "ÜNÏCODE αβγ 中文 测试 MIXED_WORD x2", "nul\x00inside text here", "liver is abnormal"]
    batch = minhash_signatures(texts)
    assert batch.shape == (len(texts), 128) and batch.dtype == np.uint32
    for text, signature in zip(texts, batch):
        assert np.array_equal(signature, minhash_signature(text))
    assert np.array_equal(batch[3], batch[4])            # case, punctuation and spacing are not words
    assert np.array_equal(batch[5], batch[6])            # Unicode \w runs, case-folded
    assert not np.array_equal(batch[4], batch[8])
    assert (batch[0] == 2**32 - 1).all() and not np.array_equal(batch[1], batch[2])
    assert minhash_signatures([]).shape == (0, 128)


def test_one_permutation_estimate_is_unbiased():
    rng = np.random.default_rng(5)
    pairs, truth = [], []
    for _ in range(300):
        a = _doc(rng, 40)
        words = a.split()
        for _ in range(int(rng.integers(1, 12))):
            words[int(rng.integers(40))] = str(rng.choice(WORDS))
        b = " ".join(words)
        pairs.append((a, b))
        truth.append(len(shingles(a) & shingles(b)) / len(shingles(a) | shingles(b)))
    sig_a = minhash_signatures([a for a, _ in pairs])
    sig_b = minhash_signatures([b for _, b in pairs])
    error = (sig_a == sig_b).mean(axis=1) - np.array(truth)
    assert abs(error.mean()) < 0.01 and np.sqrt((error**2).mean()) < 0.06


def test_sorted_multimap_matches_a_dict_of_lists():
    from citrusv.curate.multimap import SortedMultiMap

    rng = np.random.default_rng(6)
    table, reference = SortedMultiMap(), {}
    value = 0
    for size in rng.integers(1, 200, size=40):
        keys = rng.integers(0, 300, size=size).astype(np.uint64)
        table.insert(keys, np.arange(value, value + size))
        for k in keys.tolist():
            reference.setdefault(k, []).append(value)
            value += 1
    queries = np.arange(0, 320, dtype=np.uint64)
    owner, values = table.lookup(queries)
    got = {}
    for q, v in zip(owner.tolist(), values.tolist()):
        got.setdefault(int(queries[q]), []).append(v)
    assert {k: sorted(v) for k, v in got.items()} == reference
    assert len(table) == value and len(table._runs) <= 12


def test_exact_text_hash_is_the_case_folded_word_sequence():
    from citrusv.curate.minhash import text_fingerprints

    texts = ["No pleural effusion.", "  no PLEURAL, effusion ", "effusion no pleural", "No pleural effusion seen.", "", "?"]
    signatures, hashes = text_fingerprints(texts)
    assert np.array_equal(signatures, minhash_signatures(texts)) and hashes.dtype == np.uint64
    assert hashes[0] == hashes[1]                   # case, spacing, punctuation
    assert len({int(h) for h in hashes[[0, 2, 3, 4]]}) == 4  # order and words count
    assert hashes[4] == hashes[5]                   # no words at all

"""The deduplicator at scale: precision / recall on planted duplicates of every kind, saved and
restored state giving the same answers, and its memory per kept row."""

from __future__ import annotations

import numpy as np
import pytest

from citrusv.curate.dedup import DedupConfig, Deduplicator, fingerprints

VOCAB = np.array([f"w{i}" for i in range(3000)])


def _text(rng, n=None):
    return " ".join(rng.choice(VOCAB, size=n or int(rng.integers(30, 60))))


def _edit(rng, text, words=1):
    tokens = text.split()
    for _ in range(words):
        tokens[int(rng.integers(len(tokens)))] = str(rng.choice(VOCAB))
    return " ".join(tokens)


def _flip(rng, value, bits):
    for b in rng.choice(64, size=bits, replace=False):
        value ^= 1 << int(b)
    return value


def _row(rid, text=None, images=0):
    messages = [{"role": "user", "content": "<image>" * images + "Describe."}] if images else [{"role": "user", "content": "Q"}]
    if text is not None:
        messages.append({"role": "assistant", "content": text})
    if images and text is None:
        messages = [{"role": "user", "content": "<image>"}]
    return {"id": rid, "messages": messages, "images": [f"{rid}-{i}.png" for i in range(images)]}


def _planted(seed=0, n=300):
    """Rows with planted duplicates; ``truth[id]`` is ``(reason, original)`` or ``None`` (unique)."""
    rng = np.random.default_rng(seed)
    rows, hashes, truth = [], {}, {}

    def add(rid, text, image_hashes, expected):
        rows.append(_row(rid, text, len(image_hashes)))
        hashes[rid] = image_hashes
        truth[rid] = expected

    originals = []
    for i in range(n):
        text = _text(rng)
        add(f"t{i}", text, [], None)
        image, report = int(rng.integers(0, 2**63)), _text(rng)
        add(f"p{i}", report, [image], None)
        lone = int(rng.integers(0, 2**63))
        add(f"i{i}", None, [lone], None)
        originals.append((text, image, report, lone))
    for i, (text, image, report, lone) in enumerate(originals):
        add(f"t{i}-exact", "  " + text.upper() + " ", [], ("dup_text_exact", f"t{i}"))
        add(f"t{i}-near", _edit(rng, text), [], ("dup_text_near", f"t{i}"))
        add(f"p{i}-same", report, [_flip(rng, image, 3)], ("dup_pair", f"p{i}"))
        add(f"p{i}-near", _edit(rng, report), [_flip(rng, image, 2)], ("dup_pair", f"p{i}"))
        add(f"p{i}-other-report", _text(rng), [image], None)          # same image, other report: kept
        add(f"p{i}-other-image", report, [int(rng.integers(0, 2**63))], None)  # other image: kept
        add(f"i{i}-near", None, [_flip(rng, lone, 3)], ("dup_image", f"i{i}"))
    return rows, hashes, truth


def _run(rows, hashes, batch=None, state_dir=None):
    config = DedupConfig(text_threshold=0.7)
    dedup = Deduplicator(config)
    fps = fingerprints(rows, config, [hashes[r["id"]] for r in rows])
    out = {}
    size = batch or len(rows)
    for start in range(0, len(rows), size):
        ids = [r["id"] for r in rows[start:start + size]]
        out.update(zip(ids, dedup.process(ids, fps[start:start + size])))
        if state_dir is not None:
            dedup.save_state(state_dir / f"{start:06d}.npz")
    return out, dedup


def test_planted_duplicates_precision_and_recall():
    rows, hashes, truth = _planted()
    got, _ = _run(rows, hashes, batch=97)
    for reason in ("dup_text_exact", "dup_text_near", "dup_pair", "dup_image"):
        planted = {rid for rid, t in truth.items() if t and t[0] == reason}
        found = {rid for rid in planted if got[rid] is not None and got[rid][1] == truth[rid][1]}
        flagged = {rid for rid, v in got.items() if v is not None and v[0] == reason}
        correct = {rid for rid in flagged if truth[rid] is not None and truth[rid][1] == got[rid][1]}
        recall, precision = len(found) / len(planted), len(correct) / max(len(flagged), 1)
        assert precision == 1.0, (reason, precision)
        assert recall >= (1.0 if reason in ("dup_text_exact", "dup_image") else 0.95), (reason, recall)
    uniques = [rid for rid, t in truth.items() if t is None]
    assert sum(got[rid] is not None for rid in uniques) == 0  # same image + other report, etc.: all kept


def test_batches_and_restored_state_match_one_pass(tmp_path):
    rows, hashes, _ = _planted(seed=1, n=120)
    whole, _ = _run(rows, hashes)
    sharded, saved = _run(rows, hashes, batch=50, state_dir=tmp_path)
    assert sharded == whole
    # a new deduplicator restored from the first shards decides the rest as the original did
    config = DedupConfig(text_threshold=0.7)
    restored = Deduplicator(config)
    files = sorted(tmp_path.glob("*.npz"))
    restored.load_state(files[:-3])
    rest = rows[50 * (len(files) - 3):]
    fps = fingerprints(rest, config, [hashes[r["id"]] for r in rest])
    again = dict(zip((r["id"] for r in rest), restored.process([r["id"] for r in rest], fps)))
    assert again == {r["id"]: whole[r["id"]] for r in rest}
    assert len(restored) == len(saved)
    with pytest.raises(ValueError, match="other deduplication settings"):
        Deduplicator(DedupConfig(num_perm=64)).load_state(files[:1])


def test_memory_per_kept_row_is_small_once_saved(tmp_path):
    rng = np.random.default_rng(3)
    config = DedupConfig()
    dedup = Deduplicator(config)
    for shard in range(10):
        rows = [_row(f"s{shard}-{i}", _text(rng, 40), 1) for i in range(1000)]
        fps = fingerprints(rows, config, [[int(rng.integers(0, 2**63))] for _ in rows])
        assert dedup.process([r["id"] for r in rows], fps) == [None] * 1000
        dedup.save_state(tmp_path / f"{shard}.npz")
    per_row = dedup.nbytes / len(dedup)
    assert per_row < 300, per_row  # signatures (512 bytes a row) live in the .sig.npy files

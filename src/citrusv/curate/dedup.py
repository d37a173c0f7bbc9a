"""Deduplication across shards: exact text, near-duplicate text (MinHash LSH), near-duplicate images
(pHash + banded Hamming index) and image–text pairs.

Rows fall in three kinds, each with its own keys (a text-only QA is never a duplicate of a
grounded one):

* ``text`` (no images): duplicate when the instruction–response texts have the same case-folded
  word sequence (``dup_text_exact``; spacing and punctuation do not count) or its MinHash reaches the Jaccard threshold against a kept row
  (``dup_text_near``, the best match is named).
* ``image`` (images, no text): duplicate when every image is within the Hamming radius of the
  kept row's images, in order (``dup_image``, the nearest first image is named).
* ``pair`` (images and text): duplicate only when the images match as above **and** the text is
  equal or near-equal (``dup_pair``); the same image with a different report is kept. Candidates
  come from the text side (exact hash or a shared LSH band), which is far more selective than the
  image side: many different patients' chest films are within a few bits of each other.

The first row seen is the representative, so the result depends only on input order (shards are
committed in order whatever the worker count), and a shard gives the same answers whether its rows
are passed to ``Deduplicator.process`` one at a time or all at once.

Scale: fingerprints are computed in workers (``fingerprints``); the ``Deduplicator`` runs in the
driver and holds, per kept row, about 150 bytes in numpy arrays (index keys in
``SortedMultiMap`` runs, hashes, the row id) instead of Python objects. Signatures, 4 bytes per
permutation, are the bulk: with ``save_state`` they go to one ``.npy`` file per shard and are
read back through memory maps only to verify candidates, so memory stays near 150 bytes per kept
row (16.8M rows: about 2.5 GB). ``load_state`` rebuilds the index from those files on resume.
"""

from __future__ import annotations

import bisect
import io
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._fileio import atomic_write_bytes
from .minhash import _mix64, band_keys, lsh_params, text_fingerprints
from .multimap import SortedMultiMap
from .phash import hamming_band_keys, hamming_bands

__all__ = ["DedupConfig", "Deduplicator", "Fingerprint", "fingerprint", "fingerprints", "row_text"]

_KINDS = ("text", "image", "pair")
_KIND_CODE = {kind: code for code, kind in enumerate(_KINDS)}


@dataclass
class DedupConfig:
    """Deduplication settings."""

    enabled: bool = True
    text_threshold: float = 0.8
    """Estimated Jaccard of word shingles at or above which two texts are near duplicates."""
    num_perm: int = 128
    ngram: int = 3
    seed: int = 1
    image_radius: int = 8
    """Largest pHash Hamming distance (of 64 bits) that counts as the same image."""
    image_bands: int | None = 4
    """Bit bands of the image index; ``None`` means ``image_radius + 1`` (exhaustive search)."""


@dataclass
class Fingerprint:
    """What deduplication needs of one row (picklable, computed in a worker)."""

    kind: str
    text_hash: int | None = None
    """64-bit hash of the case-folded word sequence (``None``: the row has no text)."""
    text_sig: np.ndarray | None = None
    image_hashes: list[int] = field(default_factory=list)

    def __getstate__(self) -> dict[str, Any]:
        # fingerprints cross process boundaries by the thousand: a signature pickled as bytes costs
        # a tenth of a pickled numpy array
        state = dict(self.__dict__)
        if self.text_sig is not None:
            state["text_sig"] = self.text_sig.astype(np.uint32).tobytes()
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        if isinstance(state.get("text_sig"), bytes):
            state["text_sig"] = np.frombuffer(state["text_sig"], dtype=np.uint32)
        self.__dict__.update(state)


def row_text(row: dict[str, Any]) -> str:
    """The instruction–response text of a row: user and assistant contents without ``<image>``."""
    parts = [m.get("content", "").replace("<image>", "") for m in row.get("messages", [])
             if m.get("role") in ("user", "assistant")]
    return "\n".join(p.strip() for p in parts if p.strip())


def fingerprints(rows: Sequence[dict[str, Any]], config: DedupConfig,
                 image_hashes: Sequence[Sequence[int]] | None = None) -> list[Fingerprint]:
    """The ``Fingerprint`` of each row, signatures computed for the batch at once;
    ``image_hashes[i]`` are the pHashes of row ``i``'s images, in order."""
    texts = [row_text(row) for row in rows]
    with_text = [i for i, text in enumerate(texts) if text]
    signatures, text_hashes = text_fingerprints([texts[i] for i in with_text], config.num_perm, config.ngram, config.seed)
    text_of = {row: (int(h), sig) for row, h, sig in zip(with_text, text_hashes.tolist(), signatures)}
    out = []
    for i, text in enumerate(texts):
        hashes = [int(h) for h in (image_hashes[i] if image_hashes is not None else [])]
        kind = "pair" if hashes and text else "image" if hashes else "text"
        if text:
            out.append(Fingerprint(kind, text_of[i][0], text_of[i][1], hashes))
        else:
            out.append(Fingerprint(kind, image_hashes=hashes))
    return out


def fingerprint(row: dict[str, Any], config: DedupConfig, image_hashes: list[int] | None = None) -> Fingerprint:
    """The ``Fingerprint`` of one row (``fingerprints`` of a batch of one)."""
    return fingerprints([row], config, [image_hashes or []])[0]


class _Column:
    """A growable 1-D numpy array (amortised appends)."""

    def __init__(self, dtype: Any):
        self.data = np.zeros(1024, dtype=dtype)
        self.size = 0

    def extend(self, values: np.ndarray) -> None:
        values = np.asarray(values, dtype=self.data.dtype)
        end = self.size + values.size
        if end > self.data.size:
            grown = np.zeros(max(end, 2 * self.data.size), dtype=self.data.dtype)
            grown[:self.size] = self.data[:self.size]
            self.data = grown
        self.data[self.size:end] = values
        self.size = end

    def view(self) -> np.ndarray:
        return self.data[:self.size]

    @property
    def nbytes(self) -> int:
        return self.data.nbytes


class _Strings:
    """Row ids as UTF-8 blobs plus offsets, one chunk per batch (about ``len(id) + 8`` bytes each)."""

    def __init__(self) -> None:
        self._starts: list[int] = []
        self._chunks: list[tuple[bytes, np.ndarray]] = []
        self.size = 0

    def extend(self, values: list[str]) -> None:
        if not values:
            return
        encoded = [v.encode("utf-8") for v in values]
        offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
        np.cumsum([len(e) for e in encoded], out=offsets[1:])
        self._starts.append(self.size)
        self._chunks.append((b"".join(encoded), offsets))
        self.size += len(values)

    def blob(self, start: int, stop: int) -> tuple[bytes, np.ndarray]:
        """``(utf-8 bytes, lengths)`` of ids ``start`` to ``stop``, which must be chunk boundaries."""
        first, last = bisect.bisect_left(self._starts, start), bisect.bisect_left(self._starts, stop)
        if (first < len(self._starts) and self._starts[first] != start) or (start < self.size and first == len(self._starts)):
            raise ValueError(f"{start} is not the start of a chunk")
        chunks = self._chunks[first:last]
        lengths = [np.diff(offsets) for _, offsets in chunks]
        return b"".join(blob for blob, _ in chunks), np.concatenate(lengths) if lengths else np.zeros(0, np.int64)

    def __getitem__(self, index: int) -> str:
        chunk = bisect.bisect_right(self._starts, index) - 1
        blob, offsets = self._chunks[chunk]
        j = index - self._starts[chunk]
        return blob[offsets[j]:offsets[j + 1]].decode("utf-8")

    @property
    def nbytes(self) -> int:
        return sum(len(blob) + offsets.nbytes for blob, offsets in self._chunks)


class _Signatures:
    """Signatures of kept rows by key: spilled segments (memory-mapped ``.npy`` files, an LRU of
    open maps) followed by an in-memory tail (a growable ``[rows, num_perm]`` buffer)."""

    def __init__(self, num_perm: int, open_maps: int = 64):
        self.num_perm = num_perm
        self._segment_starts = np.zeros(0, dtype=np.int64)
        self._segment_paths: list[Path] = []
        self._maps: OrderedDict[int, np.ndarray] = OrderedDict()
        self._open_maps = open_maps
        self._tail_start = 0
        self._tail = np.zeros((256, num_perm), dtype=np.uint32)
        self._tail_size = 0

    def extend(self, signatures: np.ndarray) -> None:
        end = self._tail_size + len(signatures)
        if end > len(self._tail):
            grown = np.zeros((max(end, 2 * len(self._tail)), self.num_perm), dtype=np.uint32)
            grown[:self._tail_size] = self._tail[:self._tail_size]
            self._tail = grown
        self._tail[self._tail_size:end] = signatures
        self._tail_size = end

    def tail(self) -> np.ndarray:
        """The signatures not yet spilled, in key order."""
        return self._tail[:self._tail_size]

    def spill(self, path: Path) -> None:
        """The tail now lives in ``path`` (an ``.npy`` of it, already written): drop it from memory."""
        count, self._tail_size = self._tail_size, 0
        self._tail = np.zeros((256, self.num_perm), dtype=np.uint32)
        self.add_segment(path, count)

    def add_segment(self, path: Path, count: int) -> None:
        """Append ``count`` signatures stored in the ``.npy`` file ``path`` (the tail must be empty)."""
        if self._tail_size:
            raise RuntimeError("signatures in memory must be spilled before a segment is added")
        if count:
            self._segment_starts = np.append(self._segment_starts, self._tail_start)
            self._segment_paths.append(path)
        self._tail_start += count

    def _segment(self, index: int) -> np.ndarray:
        array = self._maps.get(index)
        if array is None:
            array = np.load(self._segment_paths[index], mmap_mode="r")
            self._maps[index] = array
            if len(self._maps) > self._open_maps:
                self._maps.popitem(last=False)
        else:
            self._maps.move_to_end(index)
        return array

    def get(self, keys: np.ndarray) -> np.ndarray:
        """``[len(keys), num_perm]`` signatures of ``keys``."""
        keys = np.asarray(keys, dtype=np.int64)
        if keys.size == 1:  # the usual case: one candidate to verify
            key = int(keys[0])
            if key >= self._tail_start:
                return self._tail[key - self._tail_start][None, :]
            segment = int(np.searchsorted(self._segment_starts, key, side="right")) - 1
            return np.asarray(self._segment(segment)[key - int(self._segment_starts[segment])])[None, :]
        out = np.empty((keys.size, self.num_perm), dtype=np.uint32)
        in_tail = keys >= self._tail_start
        out[in_tail] = self._tail[keys[in_tail] - self._tail_start]
        if not in_tail.all():
            spilled = np.flatnonzero(~in_tail)
            segments = np.searchsorted(self._segment_starts, keys[spilled], side="right") - 1
            if spilled.size == 1:  # the usual case: one candidate
                segment = int(segments[0])
                out[spilled[0]] = self._segment(segment)[keys[spilled[0]] - self._segment_starts[segment]]
            else:
                for segment in np.unique(segments).tolist():
                    rows = spilled[segments == segment]
                    out[rows] = self._segment(segment)[keys[rows] - self._segment_starts[segment]]
        return out

    @property
    def nbytes(self) -> int:
        return self._tail.nbytes


@dataclass
class _Batch:
    """One ``process`` call's rows, and which of them were kept so far (keys ``base``, ``base+1``...)."""

    ids: list[str]
    fps: list[Fingerprint]
    base: int
    kept: list[int] = field(default_factory=list)


class Deduplicator:
    """Stateful duplicate finder: ``process`` decides a batch of rows in order (each against the
    rows kept before it) and records the kept ones."""

    def __init__(self, config: DedupConfig):
        self.config = config
        self.bands, self.rows = lsh_params(config.text_threshold, config.num_perm)
        self._image_bands = hamming_bands(config.image_bands if config.image_bands is not None else min(config.image_radius + 1, 64))
        self._ids = _Strings()
        self._kind = _Column(np.uint8)
        self._text_hash = _Column(np.uint64)
        self._has_text = _Column(np.bool_)
        self._image_offsets = _Column(np.int64)
        self._image_offsets.extend(np.zeros(1, np.int64))
        self._images = _Column(np.uint64)
        self._signatures = _Signatures(config.num_perm)
        self._exact = SortedMultiMap()   # text and pair rows: salted text hash -> key
        self._lsh = SortedMultiMap()     # text and pair rows: salted band keys -> key
        self._image_index = SortedMultiMap()  # image rows: first image's band keys -> key
        self._saved = 0  # keys below this are in a state file

    def __len__(self) -> int:
        return self._ids.size

    @property
    def nbytes(self) -> int:
        """Bytes of index held in memory (numpy arrays and id blobs)."""
        return sum(part.nbytes for part in (self._ids, self._kind, self._text_hash, self._has_text, self._image_offsets, self._images,
                                            self._signatures, self._exact, self._lsh, self._image_index))

    # -- keys ------------------------------------------------------------------------------------
    def _exact_keys(self, text_hashes: np.ndarray, kinds: np.ndarray) -> np.ndarray:
        return _mix64(np.asarray(text_hashes, dtype=np.uint64) ^ (kinds.astype(np.uint64) + np.uint64(1)))

    def _lsh_keys(self, signatures: np.ndarray, kinds: np.ndarray) -> np.ndarray:
        keys = np.empty((len(signatures), self.bands), dtype=np.uint64)
        for code in np.unique(kinds).tolist():
            rows = kinds == code
            keys[rows] = band_keys(signatures[rows], self.bands, self.rows, salt=code + 1)
        return keys

    def _image_keys(self, first_images: np.ndarray) -> np.ndarray:
        return hamming_band_keys(first_images, self._image_bands, salt=_KIND_CODE["image"] + 1)

    # -- lookups of kept rows (committed ones in the columns, this batch's in ``batch``) ----------
    def _images_of(self, key: int, batch: _Batch) -> list[int]:
        if key >= batch.base:
            return batch.fps[batch.kept[key - batch.base]].image_hashes
        offsets = self._image_offsets.data
        return self._images.data[offsets[key]:offsets[key + 1]].tolist()

    def _text_hashes_of(self, keys: np.ndarray, batch: _Batch) -> np.ndarray:
        if keys.size == 1:  # the usual case: one candidate, no mask work
            key = int(keys[0])
            value = self._text_hash.data[key] if key < batch.base else batch.fps[batch.kept[key - batch.base]].text_hash
            return np.array([value], dtype=np.uint64)
        out = np.empty(keys.size, dtype=np.uint64)
        old = keys < batch.base
        out[old] = self._text_hash.data[keys[old]]
        for j in np.flatnonzero(~old).tolist():
            out[j] = batch.fps[batch.kept[keys[j] - batch.base]].text_hash
        return out

    def _signatures_of(self, keys: np.ndarray, batch: _Batch) -> np.ndarray:
        if keys.size == 1 and keys[0] >= batch.base:
            return batch.fps[batch.kept[int(keys[0]) - batch.base]].text_sig[None, :]
        out = np.empty((keys.size, self.config.num_perm), dtype=np.uint32)
        old = keys < batch.base
        out[old] = self._signatures.get(keys[old])
        for j in np.flatnonzero(~old).tolist():
            out[j] = batch.fps[batch.kept[keys[j] - batch.base]].text_sig
        return out

    def _id_of(self, key: int, batch: _Batch) -> str:
        return batch.ids[batch.kept[key - batch.base]] if key >= batch.base else self._ids[key]

    def _image_distances(self, hashes: list[int], candidates: np.ndarray, batch: _Batch) -> np.ndarray:
        """Largest per-image Hamming distance from ``hashes`` to each candidate (65: image counts differ)."""
        distance = np.full(candidates.size, 65, dtype=np.int64)
        old = candidates < batch.base
        if old.any():
            keys = candidates[old]
            offsets = self._image_offsets.data
            start, count = offsets[keys], offsets[keys + 1] - offsets[keys]
            same = count == len(hashes)
            worst = np.zeros(keys.size, dtype=np.int64)
            for j, h in enumerate(hashes):
                position = np.where(same, start + j, 0)
                worst = np.maximum(worst, np.bitwise_count(self._images.data[position] ^ np.uint64(h)).astype(np.int64))
            distance[np.flatnonzero(old)] = np.where(same, worst, 65)
        for j in np.flatnonzero(~old).tolist():
            other = self._images_of(int(candidates[j]), batch)
            if len(other) == len(hashes):
                distance[j] = max(((a ^ b).bit_count() for a, b in zip(hashes, other)), default=0)
        return distance

    # -- decisions -------------------------------------------------------------------------------
    def _decide(self, fp: Fingerprint, exact: np.ndarray, near: np.ndarray, batch: _Batch) -> tuple[str, int] | None:
        """``(reason, representative key)`` or ``None``; ``exact`` / ``near`` are candidate keys
        from the exact-hash and LSH (or, for image rows, image band) tables."""
        radius, threshold = self.config.image_radius, self.config.text_threshold
        if fp.kind == "image":
            if near.size == 0:
                return None
            distance = self._image_distances(fp.image_hashes, near, batch)
            ok = distance <= radius
            if not ok.any():
                return None
            first = np.array([(self._images_of(int(k), batch)[0] ^ fp.image_hashes[0]).bit_count() for k in near[ok]])
            best = np.lexsort((near[ok], first))[0]
            return "dup_image", int(near[ok][best])
        if fp.kind == "text":
            if exact.size:
                equal = exact[self._text_hashes_of(exact, batch) == np.uint64(fp.text_hash)]
                if equal.size:
                    return "dup_text_exact", int(equal.min())
            if near.size == 0:
                return None
            similarity = (self._signatures_of(near, batch) == fp.text_sig[None, :]).mean(axis=1)
            if near.size == 1:
                return ("dup_text_near", int(near[0])) if similarity[0] >= threshold else None
            ok = similarity >= threshold
            if not ok.any():
                return None
            best = np.lexsort((near[ok], -similarity[ok]))[0]
            return "dup_text_near", int(near[ok][best])
        # pair: images and text must both match (the candidate lists are already unique)
        candidates = near if exact.size == 0 else exact if near.size == 0 else np.union1d(exact, near)
        if candidates.size == 0:
            return None
        candidates = candidates[self._image_distances(fp.image_hashes, candidates, batch) <= radius]
        if candidates.size == 0:
            return None
        same_text = self._text_hashes_of(candidates, batch) == np.uint64(fp.text_hash)
        if not same_text.all():
            rest = candidates[~same_text]
            similar = (self._signatures_of(rest, batch) == fp.text_sig[None, :]).mean(axis=1) >= threshold
            same_text[np.flatnonzero(~same_text)[similar]] = True
        matched = candidates[same_text]
        return ("dup_pair", int(matched.min())) if matched.size else None

    def process(self, ids: Sequence[str], fps: Sequence[Fingerprint]) -> list[tuple[str, str] | None]:
        """Decide each row in order against every kept row (earlier batches and earlier rows of
        this one); kept rows are recorded.

        Returns:
            For each row ``None`` (kept) or ``(reason, id of the kept representative)``.
        """
        if len(ids) != len(fps):
            raise ValueError(f"{len(ids)} ids for {len(fps)} fingerprints")
        batch = _Batch(list(map(str, ids)), list(fps), base=len(self))
        kinds = np.array([_KIND_CODE[fp.kind] for fp in fps], dtype=np.uint8)
        texted = np.array([fp.text_hash is not None and fp.kind != "image" for fp in fps], dtype=bool)
        imaged = np.array([fp.kind == "image" and bool(fp.image_hashes) for fp in fps], dtype=bool)
        t_rows, i_rows = np.flatnonzero(texted), np.flatnonzero(imaged)
        exact_keys = self._exact_keys(np.array([fps[i].text_hash for i in t_rows], dtype=np.uint64), kinds[t_rows])
        lsh_keys = self._lsh_keys(np.array([fps[i].text_sig for i in t_rows], dtype=np.uint32).reshape(-1, self.config.num_perm),
                                  kinds[t_rows])
        image_keys = self._image_keys(np.array([fps[i].image_hashes[0] for i in i_rows], dtype=np.uint64))

        # candidates among rows kept by earlier batches: (row, key) pairs
        q, k = self._exact.lookup(exact_keys)
        global_exact = _group(t_rows[q], k)
        q, k = self._lsh.lookup(lsh_keys.ravel())
        global_near = _group(t_rows[q // self.bands], k)
        q, k = self._image_index.lookup(image_keys.ravel())
        global_near.update(_group(i_rows[q // len(self._image_bands)], k))

        # keys shared by several rows of this batch: only those can make a row a duplicate of an
        # earlier row of the same batch (tracked in small dicts while the batch is decided)
        owners = np.concatenate([t_rows, np.repeat(t_rows, self.bands), np.repeat(i_rows, len(self._image_bands))])
        kind_of_key = np.concatenate([np.zeros(t_rows.size, np.int8), np.ones(t_rows.size * self.bands, np.int8),
                                      np.ones(i_rows.size * len(self._image_bands), np.int8)])
        all_keys = np.concatenate([exact_keys, lsh_keys.ravel(), image_keys.ravel()])
        _, inverse, counts = np.unique(all_keys, return_inverse=True, return_counts=True)
        shared = counts[inverse] > 1
        local_keys: dict[int, list[tuple[int, int]]] = {}
        for owner, key, is_near in zip(owners[shared].tolist(), all_keys[shared].tolist(), kind_of_key[shared].tolist()):
            local_keys.setdefault(owner, []).append((key, is_near))
        local: dict[int, list[int]] = {}
        empty = np.zeros(0, dtype=np.int64)

        verdicts: list[tuple[str, str] | None] = []
        for i, fp in enumerate(fps):
            exact = global_exact.get(i, empty)
            near = global_near.get(i, empty)
            mine = local_keys.get(i, ())
            if mine:
                local_exact = [key for table_key, is_near in mine if not is_near for key in local.get(table_key, ())]
                local_near = [key for table_key, is_near in mine if is_near for key in local.get(table_key, ())]
                if local_exact:
                    exact = np.union1d(exact, local_exact)
                if local_near:
                    near = np.union1d(near, local_near)
            verdict = self._decide(fp, exact, near, batch) if (exact.size or near.size) else None
            if verdict is not None:
                verdicts.append((verdict[0], self._id_of(verdict[1], batch)))
                continue
            verdicts.append(None)
            key = batch.base + len(batch.kept)
            batch.kept.append(i)
            for table_key, _ in mine:
                local.setdefault(table_key, []).append(key)
        self._record(batch, kinds, exact_keys, lsh_keys, image_keys, t_rows, i_rows)
        return verdicts

    def _record(self, batch: _Batch, kinds: np.ndarray, exact_keys: np.ndarray, lsh_keys: np.ndarray,
                image_keys: np.ndarray, t_rows: np.ndarray, i_rows: np.ndarray) -> None:
        """Append the batch's kept rows to the columns and their keys to the tables."""
        kept = np.array(batch.kept, dtype=np.int64)
        keys = batch.base + np.arange(kept.size, dtype=np.int64)
        fps = [batch.fps[i] for i in batch.kept]
        self._ids.extend([batch.ids[i] for i in batch.kept])
        self._kind.extend(kinds[kept])
        self._text_hash.extend(np.array([fp.text_hash or 0 for fp in fps], dtype=np.uint64))
        self._has_text.extend(np.array([fp.text_hash is not None for fp in fps], dtype=np.bool_))
        counts = np.array([len(fp.image_hashes) for fp in fps], dtype=np.int64)
        self._image_offsets.extend(self._images.size + np.cumsum(counts))
        self._images.extend(np.array([h for fp in fps for h in fp.image_hashes], dtype=np.uint64))
        signatures = np.zeros((kept.size, self.config.num_perm), dtype=np.uint32)
        for j, fp in enumerate(fps):
            if fp.text_sig is not None:
                signatures[j] = fp.text_sig
        self._signatures.extend(signatures)
        key_of_row = np.full(len(batch.fps), -1, dtype=np.int64)
        key_of_row[kept] = keys
        t_keys, i_keys = key_of_row[t_rows], key_of_row[i_rows]
        t_kept, i_kept = t_keys >= 0, i_keys >= 0
        self._exact.insert(exact_keys[t_kept], t_keys[t_kept])
        self._lsh.insert(lsh_keys[t_kept], np.repeat(t_keys[t_kept], self.bands))
        self._image_index.insert(image_keys[i_kept], np.repeat(i_keys[i_kept], len(self._image_bands)))

    # -- persistence -----------------------------------------------------------------------------
    def save_state(self, path: str | Path) -> None:
        """Write the rows kept since the last save to ``path`` (an ``.npz``) and their signatures
        to ``path`` with suffix ``.sig.npy`` (atomically), then keep those signatures on disk only."""
        path = Path(path)
        start, stop = self._saved, len(self)
        offsets = self._image_offsets.view()[start:stop + 1]
        blob, lengths = self._ids.blob(start, stop)
        buffer = io.BytesIO()
        np.savez(buffer, ids=np.frombuffer(blob, dtype=np.uint8), id_lengths=lengths,
                 kind=self._kind.view()[start:stop], text_hash=self._text_hash.view()[start:stop],
                 has_text=self._has_text.view()[start:stop], image_counts=np.diff(offsets),
                 images=self._images.view()[offsets[0]:offsets[-1]], settings=np.array(self._settings()))
        atomic_write_bytes(path, buffer.getvalue())
        signature_path = path.with_suffix(".sig.npy")
        buffer = io.BytesIO()
        np.save(buffer, self._signatures.tail())
        atomic_write_bytes(signature_path, buffer.getvalue())
        self._signatures.spill(signature_path)
        self._saved = stop

    def _settings(self) -> str:
        """What the saved keys and signatures depend on (a resume with other settings must not mix)."""
        c = self.config
        return f"num_perm={c.num_perm} ngram={c.ngram} seed={c.seed} threshold={c.text_threshold} image_bands={len(self._image_bands)}"

    def load_state(self, paths: Sequence[str | Path]) -> None:
        """Restore rows saved by ``save_state`` (in the order they were saved)."""
        if self._signatures.tail().size:
            raise RuntimeError("load_state must come before process")
        for path in map(Path, paths):
            with np.load(path) as state:
                if str(state["settings"]) != self._settings():
                    raise ValueError(f"{path} was written with other deduplication settings ({state['settings']})")
                blob, lengths = state["ids"].tobytes(), state["id_lengths"]
                kind, text_hash, has_text = state["kind"], state["text_hash"], state["has_text"]
                image_counts, images = state["image_counts"], state["images"]
            ends = np.cumsum(lengths).tolist()
            ids = [blob[e - n:e].decode("utf-8") for e, n in zip(ends, lengths.tolist())]
            signature_path = path.with_suffix(".sig.npy")
            signatures = np.load(signature_path, mmap_mode="r")
            if len(signatures) != len(ids):
                raise ValueError(f"{signature_path} holds {len(signatures)} signatures for {len(ids)} rows")
            keys = len(self) + np.arange(len(ids), dtype=np.int64)
            self._ids.extend(ids)
            self._kind.extend(kind)
            self._text_hash.extend(text_hash)
            self._has_text.extend(has_text)
            self._image_offsets.extend(self._images.size + np.cumsum(image_counts))
            self._images.extend(images)
            texted = (kind != _KIND_CODE["image"]) & has_text
            imaged = (kind == _KIND_CODE["image"]) & (image_counts > 0)
            self._exact.insert(self._exact_keys(text_hash[texted], kind[texted]), keys[texted])
            self._lsh.insert(self._lsh_keys(np.asarray(signatures[texted]), kind[texted]),
                             np.repeat(keys[texted], self.bands))
            first = images[(np.cumsum(image_counts) - image_counts)[imaged]]
            self._image_index.insert(self._image_keys(first), np.repeat(keys[imaged], len(self._image_bands)))
            self._signatures.add_segment(signature_path, len(ids))
            self._saved = len(self)


def _group(rows: np.ndarray, keys: np.ndarray) -> dict[int, np.ndarray]:
    """``{row: sorted unique candidate keys}`` from parallel arrays of (row, key) hits."""
    if rows.size == 0:
        return {}
    order = np.lexsort((keys, rows))
    rows, keys = rows[order], keys[order].astype(np.int64)
    distinct = np.ones(rows.size, dtype=bool)
    distinct[1:] = (rows[1:] != rows[:-1]) | (keys[1:] != keys[:-1])
    rows, keys = rows[distinct], keys[distinct]
    starts = np.flatnonzero(np.concatenate([[True], rows[1:] != rows[:-1]]))
    ends = np.append(starts[1:], rows.size)
    return {row: keys[a:b] for row, a, b in zip(rows[starts].tolist(), starts.tolist(), ends.tolist())}

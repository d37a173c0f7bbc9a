"""Shard plans: ``plan_shards`` + ``read_shard`` give exactly the rows (ids, ``_where``, invalid-row
markers) and shard names of the row stream that read every source in the driver, for each kind of
source and shard size; planning parses no row and yields specs as it scans."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path
from typing import Any

import pytest

from citrusv.curate import sources as sources_module
from citrusv.curate.sources import (
    IMAGE_SUFFIXES,
    ShardSpec,
    SourceSpec,
    iter_shards,
    plan_shards,
    read_shard,
)

SIZES = [1, 2, 3, 5, 1000]


# The row stream as it was before shard plans (text-mode reads, all in one process): the reference.

def _reference_rows(path: Path, kind: str, name: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    if kind == "jsonl":
        with open(path, encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as err:
                    row = {"_invalid": f"invalid JSON ({err.msg} at column {err.colno})"}
                if not isinstance(row, dict):
                    row = {"_invalid": f"must be a JSON object, got {type(row).__name__}"}
                row.setdefault("id", f"{name}:{number}")
                rows.append({**row, "_source": name, "_where": f"{path.name} line {number}", "_root": str(path.parent)})
    elif kind == "parquet":
        import pyarrow.parquet as pq

        for number, values in enumerate(pq.read_table(path).to_pylist(), start=1):
            row = {k: v for k, v in values.items() if v is not None}
            row.setdefault("id", f"{name}:{number}")
            rows.append({**row, "_source": name, "_where": f"{path.name} row {number}", "_root": str(path.parent)})
    else:
        for folder, dirs, files in os.walk(path):
            dirs.sort()
            if kind == "images":
                for file in sorted(f for f in files if f.lower().endswith(IMAGE_SUFFIXES)):
                    image = Path(folder) / file
                    rel = image.relative_to(path).as_posix()
                    messages = [{"role": "user", "content": "<image>"}]
                    if image.with_suffix(".txt").exists():
                        messages.append({"role": "assistant", "content": image.with_suffix(".txt").read_text().strip()})
                    rows.append({"id": f"{name}/{rel}", "messages": messages, "images": [str(image.resolve())],
                                 "_source": name, "_where": rel})
            else:
                paths = [str((Path(folder) / f).resolve()) for f in sorted(files)
                         if f.upper() != "DICOMDIR" and not f.startswith(".")]
                if paths:
                    rel = Path(folder).relative_to(path).as_posix()
                    rows.append({"id": f"{name}/{rel}", "messages": [], "dicom": {"files": paths},
                                 "_source": name, "_where": rel})
    return rows


def _reference_shards(specs: list[tuple[Path, str, str]], size: int) -> list[tuple[str, list[dict[str, Any]]]]:
    shards = []
    for index, (path, kind, name) in enumerate(specs):
        rows = _reference_rows(path, kind, name)
        shards += [(f"{index:03d}-{name}-{n:05d}", rows[start:start + size])
                   for n, start in enumerate(range(0, len(rows), size))]
    return shards


def _planned(sources: list[SourceSpec], size: int) -> list[tuple[str, list[dict[str, Any]]]]:
    specs = list(plan_shards(sources, size))
    specs = [pickle.loads(pickle.dumps(spec)) for spec in specs]  # as a worker receives them
    return [(spec.name, read_shard(spec)) for spec in specs]


JSONL_LINES = [
    '{"id": "first", "messages": [{"role": "user", "content": "plain"}]}',
    "",
    "   \t",
    '{"messages": [{"role": "user", "content": "no id: generated from the line number"}]}',
    "{broken json",
    '{"a": ',  # the error column depends on whether the line has a terminator
    "[1, 2, 3]",
    '"a string"',
    '{"id": "unicode", "messages": [{"role": "user", "content": "Zürich 東京 — 🩻 naïve"}]}',
    "\u3000\u00a0",  # whitespace only, but not ASCII whitespace
    "\x1c",
    "\u00a0{\"id\": \"nbsp-led\"}",
    "\ufeff{\"id\": \"bom\"}",
    '{"id": "last"}',
]


@pytest.mark.parametrize("ending", ["\n", "\r\n", "\r", "mixed"])
@pytest.mark.parametrize("trailing", [True, False])
def test_jsonl_plan_matches_the_row_stream(tmp_path, ending, trailing):
    endings = ["\n", "\r\n", "\r"]
    text = "".join(line + (endings[i % 3] if ending == "mixed" else ending) for i, line in enumerate(JSONL_LINES))
    if not trailing:
        text = text.rstrip("\r\n")
    path = tmp_path / "qa.jsonl"
    path.write_bytes(text.encode("utf-8"))
    reference = _reference_rows(path, "jsonl", "qa")
    assert any("_invalid" in r and "invalid JSON" in r["_invalid"] for r in reference)
    assert any(r.get("_invalid") == "must be a JSON object, got list" for r in reference)
    for size in SIZES:
        expected = _reference_shards([(path, "jsonl", "qa")], size)
        assert _planned([SourceSpec(str(path))], size) == expected, size
        assert list(iter_shards([SourceSpec(str(path))], size)) == expected, size


def test_jsonl_spec_points_at_the_first_row(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_bytes(b'\n{"id": "a"}\r\n\r\n  \n{"id": "b"}\n{"id": "c"}')
    specs = list(plan_shards([SourceSpec(str(path), name="d")], 2))
    assert [(s.name, s.kind, s.source, s.source_index, s.number) for s in specs] == [
        ("000-d-00000", "jsonl", "d", 0, 0), ("000-d-00001", "jsonl", "d", 0, 1)]
    assert [(s.offset, s.line, s.rows) for s in specs] == [(1, 2, 2), (path.read_bytes().index(b'{"id": "c"}'), 6, 1)]
    assert [r["_where"] for r in read_shard(specs[1])] == ["d.jsonl line 6"]


def test_jsonl_plan_parses_nothing_and_is_lazy(tmp_path, monkeypatch):
    path = tmp_path / "big.jsonl"
    path.write_text("".join(json.dumps({"id": f"r{i:05d}"}) + "\n" for i in range(10_000)))  # 17 bytes a line
    blocks = 0
    real_positions = sources_module._row_positions

    def counting(path):
        nonlocal blocks
        for block in real_positions(path):
            blocks += 1
            yield block

    monkeypatch.setattr(sources_module, "_BLOCK", 1000)
    monkeypatch.setattr(sources_module, "_row_positions", counting)
    monkeypatch.setattr(sources_module.json, "loads", None)  # any parse while planning fails
    plan = plan_shards([SourceSpec(str(path))], 100)
    first = next(plan)
    assert first.rows == 100 and blocks <= 3  # the first spec comes before the rest is scanned
    assert len(pickle.dumps(first)) < 400
    specs = [first, *plan]
    assert blocks >= 170 and len(specs) == 100
    assert [(s.offset, s.line) for s in specs[:3]] == [(0, 1), (1700, 101), (3400, 201)]


def test_jsonl_plan_across_block_boundaries(tmp_path, monkeypatch):
    """Lines (and \\r\\n pairs) cut by the planner's read blocks are planned as whole lines."""
    path = tmp_path / "blocks.jsonl"
    for ending in ["\n", "\r\n", "\r"]:
        text = "".join(line + ending for line in JSONL_LINES * 3)
        path.write_bytes(text.encode("utf-8"))
        for block in [1, 2, 3, 7, 64]:
            monkeypatch.setattr(sources_module, "_BLOCK", block)
            for size in [1, 4]:
                assert _planned([SourceSpec(str(path))], size) == _reference_shards([(path, "jsonl", "blocks")], size)


def test_read_shard_notices_a_changed_source(tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_text('{"id": 1}\n{"id": 2}\n{"id": 3}\n')
    specs = list(plan_shards([SourceSpec(str(path))], 2))
    path.write_text('{"id": 1}\n{"id": 2}\n')
    with pytest.raises(ValueError, match="changed since its shards were planned"):
        read_shard(specs[1])


def test_parquet_plan_matches_the_row_stream(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    rows = [{"id": f"p{i}" if i % 4 else None, "messages": [{"role": "user", "content": f"question {i} – ü"}],
             "extra": None if i % 3 else i} for i in range(23)]
    path = tmp_path / "data.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=4)  # shards straddle row groups
    assert pq.ParquetFile(path).metadata.num_row_groups == 6
    for size in SIZES + [4, 8, 23]:
        expected = _reference_shards([(path, "parquet", "data")], size)
        planned = list(plan_shards([SourceSpec(str(path))], size))
        assert all(s.kind == "parquet" and s.rows <= size for s in planned)
        assert _planned([SourceSpec(str(path))], size) == expected, size
    assert [r["id"] for r in read_shard(list(plan_shards([SourceSpec(str(path))], 5))[1])] == [
        "p5", "p6", "p7", "data:9", "p9"]


def test_empty_sources_plan_no_shard(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    (tmp_path / "empty.jsonl").write_text("\n  \n")
    pq.write_table(pa.table({"id": pa.array([], pa.string())}), tmp_path / "empty.parquet")
    (tmp_path / "no_images").mkdir()
    (tmp_path / "no_images" / "notes.md").write_text("x")
    sources = [SourceSpec(str(tmp_path / "empty.jsonl")), SourceSpec(str(tmp_path / "empty.parquet")),
               SourceSpec(str(tmp_path / "no_images"), kind="images")]
    assert list(plan_shards(sources, 3)) == []


def _image_tree(root: Path) -> None:
    from PIL import Image

    for rel in ["b/scan2.png", "b/scan1.PNG", "a/deep/x.jpg", "top.tif", "a/z.webp", "c/note.txt", "c/readme.md"]:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix.lower() in IMAGE_SUFFIXES:
            Image.new("L", (4, 4)).save(path, format="PNG")
    (root / "b" / "scan1.txt").write_text("  Report for scan one, naïve.  \n")
    (root / "top.txt").write_text("top report")


def test_image_folder_plan_matches_the_row_stream(tmp_path):
    root = tmp_path / "imgs"
    _image_tree(root)
    for size in SIZES:
        expected = _reference_shards([(root, "images", "imgs")], size)
        assert sum(len(rows) for _, rows in expected) == 5
        assert _planned([SourceSpec(str(root))], size) == expected, size
    spec = next(plan_shards([SourceSpec(str(root))], 2))
    assert spec.kind == "images" and spec.items == ("top.tif", "a/z.webp")


def test_dicom_folder_plan_matches_the_row_stream(tmp_path):
    root = tmp_path / "dcm"
    for rel in ["root.dcm", "p1/s1/1.dcm", "p1/s1/2.dcm", "p1/s1/DICOMDIR", "p1/s2/a", "p2/.hidden",
                "p2/s3/IM0001", "p3/only/DICOMDIR", "p1/s1/deeper/x.dcm"]:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"\0")
    (root / "empty").mkdir()
    for size in SIZES:
        expected = _reference_shards([(root, "dicom", "dcm")], size)
        assert [r["_where"] for _, rows in expected for r in rows] == [".", "p1/s1", "p1/s1/deeper", "p1/s2", "p2/s3"]
        assert _planned([SourceSpec(str(root), kind="dicom")], size) == expected, size
    spec = next(plan_shards([SourceSpec(str(root), kind="dicom")], 2))
    assert spec.items == (".", "p1/s1")


def test_mixed_sources_keep_their_shard_names(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    (tmp_path / "qa.jsonl").write_text("".join(json.dumps({"id": f"q{i}"}) + "\n\n" for i in range(7)))
    pq.write_table(pa.Table.from_pylist([{"id": f"p{i}"} for i in range(4)]), tmp_path / "tab.parquet")
    _image_tree(tmp_path / "pics")
    sources = [SourceSpec(str(tmp_path / "qa.jsonl")), SourceSpec(str(tmp_path / "tab.parquet"), name="table"),
               SourceSpec(str(tmp_path / "pics"))]
    kinds = [(tmp_path / "qa.jsonl", "jsonl", "qa"), (tmp_path / "tab.parquet", "parquet", "table"),
             (tmp_path / "pics", "images", "pics")]
    planned = _planned(sources, 3)
    assert [name for name, _ in planned] == ["000-qa-00000", "000-qa-00001", "000-qa-00002", "001-table-00000",
                                             "001-table-00001", "002-pics-00000", "002-pics-00001"]
    assert planned == _reference_shards(kinds, 3)
    assert all(isinstance(spec, ShardSpec) for spec in plan_shards(sources, 3))


def test_plan_errors(tmp_path):
    (tmp_path / "ok.jsonl").write_text('{"id": 1}\n')
    with pytest.raises(FileNotFoundError):  # every source is checked before the first spec
        next(plan_shards([SourceSpec(str(tmp_path / "ok.jsonl")), SourceSpec(str(tmp_path / "missing.jsonl"))], 5))
    with pytest.raises(ValueError, match="shard_size"):
        next(plan_shards([SourceSpec(str(tmp_path / "ok.jsonl"))], 0))
    (tmp_path / "table.csv").write_text("id\n1\n")
    with pytest.raises(ValueError, match="cannot tell the kind"):
        next(plan_shards([SourceSpec(str(tmp_path / "ok.jsonl")), SourceSpec(str(tmp_path / "table.csv"))], 5))

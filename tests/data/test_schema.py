import json

import pytest

from citrusv.data import JsonlAppender, SampleError, iter_samples, parse_sample, read_samples, write_samples
from citrusv.data.taxonomy import MODALITIES, REGIONS, TASKS, canonical_tag

RLE = {"size": [2, 2], "counts": [1, 2, 1]}


def good(**changes):
    row = {"id": "s1", "messages": [{"role": "user", "content": "<image>Segment the liver."},
                                    {"role": "assistant", "content": "It is [SEG]."}],
           "images": ["img.png"], "masks": [RLE],
           "objects": {"ref": ["liver"], "bbox": [[1, 2, 30, 40]], "bbox_type": "real", "image_id": [0]},
           "tags": {"modality": ["ct"], "region": "Abdomen", "source": ["AMOS"]}, "license": "CC-BY"}
    row.update(changes)
    return row


def test_valid_row_round_trips():
    sample = parse_sample(good())
    assert sample.tags == {"modality": ["CT"], "region": ["Abdomen"], "source": ["AMOS"]}
    assert sample.extra == {"license": "CC-BY"} and sample.num_seg_tokens == 1
    assert parse_sample(sample.to_dict()).to_dict() == sample.to_dict()


@pytest.mark.parametrize("changes, field, reason", [
    ({"messages": []}, "messages", "non-empty"),
    ({"messages": [{"role": "doctor", "content": "x"}]}, "messages[0].role", "must be one of"),
    ({"messages": [{"role": "user", "content": ["x"]}]}, "messages[0].content", "must be a string"),
    ({"messages": [{"role": "user", "content": "a [SEG]"}, {"role": "assistant", "content": "[SEG]"}]},
     "messages[0].content", "reserved"),
    ({"messages": [{"role": "user", "content": "<|im_start|>"}]}, "messages[0].content", "reserved"),
    ({"images": []}, "messages", "1 <image> placeholders but 0 images"),
    ({"images": [""]}, "images[0]", "non-empty"),
    ({"masks": []}, "masks", "1 [SEG] token(s) in assistant messages but 0 mask(s)"),
    ({"masks": [{"size": [2, 2], "counts": [1, 1]}]}, "masks[0]", "cover 2 pixels"),
    ({"masks": [{"size": [0, 5], "counts": []}]}, "masks[0]", "empty"),
    ({"objects": {"ref": ["a", "b"], "bbox": [[1, 2, 3, 4]]}}, "objects", "2 refs but 1 boxes"),
    ({"objects": {"ref": ["a"], "bbox": [[5, 2, 3, 4]]}}, "objects.bbox[0]", "out of order"),
    ({"objects": {"ref": ["a"], "bbox": [[1, 2, 3]]}}, "objects.bbox[0]", "4 numbers"),
    ({"objects": {"ref": ["a"], "bbox": [[1, 2, 3, 1400]], "bbox_type": "norm1000"}}, "objects.bbox[0]", "range"),
    ({"objects": {"ref": ["a"], "bbox": [[1, 2, 3, 4]], "image_id": [3]}}, "objects.image_id", "[3]"),
    ({"objects": {"ref": ["a"], "bbox": [[1, 2, 3, 4]], "bbox_type": "pixels"}}, "objects.bbox_type", "real"),
    ({"tags": {"modality": ["Xray-3D"]}}, "tags.modality", "not a modality"),
    ({"tags": ["CT"]}, "tags", "object"),
    ({"id": [1]}, "id", "string or an integer"),
])
def test_each_bad_field_is_named(changes, field, reason):
    with pytest.raises(SampleError) as info:
        parse_sample(good(**changes), where="line 7")
    assert info.value.field == field and info.value.where == "line 7"
    assert reason in info.value.reason
    assert str(info.value).startswith(f"line 7: {field}: ")


def test_masks_need_an_image():
    row = good(images=[], masks=[RLE])
    row["messages"][0]["content"] = "Segment."
    with pytest.raises(SampleError, match="need an image"):
        parse_sample(row)


def test_jsonl_reading_collects_errors_and_goes_on(tmp_path):
    path = tmp_path / "shard.jsonl"
    rows = [json.dumps(good(id="a")), "{not json", "", json.dumps(good(id="b", masks=[])), json.dumps(good(id="c"))]
    path.write_text("\n".join(rows) + "\n")
    errors = []
    samples = read_samples(path, errors)
    assert [s.id for s in samples] == ["a", "c"]
    assert [(e.where, e.field) for e in errors] == [("shard.jsonl line 2", None), ("shard.jsonl line 4", "masks")]
    with pytest.raises(SampleError, match="line 2: invalid JSON"):
        list(iter_samples(path))


def test_write_is_atomic_and_round_trips(tmp_path):
    path = tmp_path / "out" / "data.jsonl"
    samples = [parse_sample(good(id=str(i))) for i in range(3)]
    assert write_samples(samples, path) == 3
    assert [s.to_dict() for s in read_samples(path)] == [s.to_dict() for s in samples]
    assert not list(path.parent.glob(".*tmp*"))


def test_appender_recovers_after_a_crash(tmp_path):
    path = tmp_path / "preds.jsonl"
    with JsonlAppender(path) as out:
        out.write({"id": "1", "answer": "x"})
        out.write({"id": "2", "answer": "y"})
    with open(path, "a") as handle:
        handle.write('{"id": "3", "ans')  # interrupted mid-line
    again = JsonlAppender(path)
    assert again.done_ids == {"1", "2"}
    again.write({"id": "3", "answer": "z"})
    again.close()
    assert [json.loads(line)["id"] for line in path.read_text().splitlines()] == ["1", "2", "3"]


def test_taxonomy_sizes_and_lookup():
    assert (len(MODALITIES), len(TASKS), len(REGIONS)) == (13, 15, 15)
    assert canonical_tag("region", " gastrointestinal tract ") == "Gastrointestinal Tract"
    with pytest.raises(ValueError, match="unknown tag kind"):
        canonical_tag("organ", "liver")


def test_paths_resolve_against_a_root():
    sample = parse_sample(good(images=["a/img.png"], masks=["masks/m.png"]))
    resolved = sample.resolve_paths("/data")
    assert resolved.images == ["/data/a/img.png"] and resolved.masks == ["/data/masks/m.png"]
    assert parse_sample(good(images=["/abs/x.png"])).resolve_paths("/data").images == ["/abs/x.png"]

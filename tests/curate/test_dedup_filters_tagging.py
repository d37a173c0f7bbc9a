"""Deduplication semantics, quality filters and rule tagging."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from citrusv.curate.dedup import (
    DedupConfig,
    Deduplicator,
    fingerprint,
    fingerprints,
    row_text,
)
from citrusv.curate.filters import (
    ImageSizeFilter,
    RegexFilter,
    RegexRule,
    TextLengthFilter,
    load_token_counter,
    simple_token_count,
)
from citrusv.curate.tagging import DICOM_BODY_PART, DICOM_MODALITY, RuleTagger
from citrusv.data.taxonomy import MODALITIES, REGIONS

REPORT_A = "The heart is normal in size. The lungs are clear without focal consolidation or effusion."
REPORT_B = "Large right pleural effusion with compressive atelectasis of the right lower lobe is seen."


def _row(rid, text=None, images=()):
    messages = [{"role": "user", "content": "<image>" * len(images) + ("Describe the image." if text else "")}]
    if text is not None:
        messages.append({"role": "assistant", "content": text})
    return {"id": rid, "messages": messages, "images": list(images)}


def _decide(rows, hashes):
    """Run rows through a Deduplicator; returns {id: None or (reason, representative)}. One row per
    ``process`` call and all rows in one call must agree (earlier rows of a batch count)."""
    config = DedupConfig()
    fps = fingerprints(rows, config, [hashes.get(row["id"], []) for row in rows])
    one_by_one, batch = Deduplicator(config), Deduplicator(config)
    single = {row["id"]: one_by_one.process([row["id"]], [fp])[0] for row, fp in zip(rows, fps)}
    together = dict(zip((row["id"] for row in rows), batch.process([row["id"] for row in rows], fps)))
    assert single == together
    assert [fingerprint(row, config, hashes.get(row["id"], [])).text_hash for row in rows] == [fp.text_hash for fp in fps]
    return single


def test_pair_semantics():
    h1, h1_near, h2 = 0x0F0F_0F0F_0F0F_0F0F, 0x0F0F_0F0F_0F0F_0F0E, 0xF0F0_F0F0_1234_5678
    rows = [_row("a", REPORT_A, ["1.png"]), _row("a_copy", REPORT_A.upper() + "  ", ["1b.png"]),
            _row("same_image_other_report", REPORT_B, ["1c.png"]), _row("other_image_same_report", REPORT_A, ["2.png"]),
            _row("img_only", None, ["3.png"]), _row("img_only_copy", None, ["3b.png"])]
    hashes = {"a": [h1], "a_copy": [h1_near], "same_image_other_report": [h1], "other_image_same_report": [h2],
              "img_only": [h2], "img_only_copy": [h2 ^ 0b111]}
    got = _decide(rows, hashes)
    assert got == {"a": None, "a_copy": ("dup_pair", "a"), "same_image_other_report": None,
                   "other_image_same_report": None, "img_only": None, "img_only_copy": ("dup_image", "img_only")}


def test_text_exact_near_and_first_kept():
    q = {"role": "user", "content": "What is the most likely diagnosis for a patient with fever and cough?"}

    def row(rid, answer):
        return {"id": rid, "messages": [q, {"role": "assistant", "content": answer}]}
    answer = "Community acquired pneumonia is the most likely diagnosis given fever productive cough and crackles."
    rows = [row("t1", answer), row("t2", answer.replace(" ", "   ").lower()),
            row("t3", answer.replace("crackles", "wheezes")), row("t4", "Pulmonary embolism should be excluded first.")]
    got = _decide(rows, {})
    assert got == {"t1": None, "t2": ("dup_text_exact", "t1"), "t3": ("dup_text_near", "t1"), "t4": None}
    backwards = _decide(list(reversed(rows)), {})  # the first seen is kept
    assert backwards == {"t4": None, "t3": None, "t2": ("dup_text_near", "t3"), "t1": ("dup_text_near", "t3")}


def test_row_text_drops_image_tags_and_system():
    row = {"messages": [{"role": "system", "content": "be nice"}, {"role": "user", "content": "<image> Hi"},
                        {"role": "assistant", "content": "Hello"}]}
    assert row_text(row) == "Hi\nHello"


@pytest.mark.parametrize("size, reason", [((64, 64), None), ((63, 64), "image_too_small"), ((4096, 1), None)])
def test_image_size_filter(tmp_path, size, reason):
    path = tmp_path / "x.png"
    Image.fromarray(np.zeros(size[::-1], np.uint8)).save(path)
    verdict = ImageSizeFilter(4096).check({"images": [str(path)]})
    assert (verdict and verdict[0]) == reason


def test_image_size_filter_unreadable(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    assert ImageSizeFilter().check({"images": [str(bad)]})[0] == "image_unreadable"


def _word_tokenizer():
    """A ``tokenizers.Tokenizer`` (the Rust core under every HF fast tokenizer), built instantly."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    tokenizer = Tokenizer(models.WordLevel({"[UNK]": 0, "a": 1}, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    return tokenizer


def test_text_length_filter_with_model_tokenizer():
    tokenizer = _word_tokenizer()
    count = load_token_counter(tokenizer)
    stage = TextLengthFilter(10, 40, count)
    short = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "ok"}]}
    good = {"messages": [{"role": "user", "content": "What is shown in this image?"}, {"role": "assistant", "content": "A normal chest radiograph."}]}
    long = {"messages": [{"role": "user", "content": "Explain. " * 30}, {"role": "assistant", "content": "No."}]}
    kept, dropped = stage.process([short, good, long, {"messages": [{"role": "user", "content": "<image>"}]}])
    assert [d.reason for d in dropped] == ["text_too_short", "text_too_long"]
    assert len(kept) == 2 and count("A normal chest radiograph.") == len(tokenizer.encode("A normal chest radiograph."))
    assert simple_token_count("Hello, world!") == 4
    with pytest.raises(ValueError):
        TextLengthFilter(10, 5)


def test_regex_filter():
    rules = [RegexRule("refusal", r"as an ai model", roles=["assistant"]),
             RegexRule("needs_question", r"\?", roles=["user"], drop_if="no_match")]
    stage = RegexFilter(rules)
    row = lambda u, a: {"messages": [{"role": "user", "content": u}, {"role": "assistant", "content": a}]}
    assert stage.check(row("Why?", "As an AI model I cannot")) [0] == "regex:refusal"
    assert stage.check(row("Tell me", "Sure")) [0] == "regex:needs_question"
    assert stage.check(row("as an ai model?", "Sure")) is None  # refusal rule only reads the assistant
    with pytest.raises(ValueError, match="bad pattern"):
        RegexRule("broken", "(")
    with pytest.raises(ValueError, match="drop_if"):
        RegexRule("x", "a", drop_if="sometimes")


@pytest.mark.parametrize("user, answer, expected", [
    ("<image>Please segment the liver on this CT scan.", "Sure, [SEG].",
     {"modality": "CT", "region": "Abdomen", "task": "Lesion Localization"}),
    ("<image>Write a radiology report for this chest X-ray.", "The lungs are clear.",
     {"modality": "X-Ray", "region": "Chest", "task": "Report Generation"}),
    ("<image>Which imaging modality was used?", "This is a T2-weighted MRI of the brain.",
     {"modality": "MRI", "region": "Brain", "task": "Modality Recognition"}),
    ("<image>What is the most likely diagnosis?", "H&E stained slide showing atypical cells.",
     {"modality": "Histopathology", "region": "Cell", "task": "Differential Diagnosis"}),
    ("<image>Describe this fundus photograph.", "The optic disc is normal.",
     {"modality": "Fundus", "region": "Eye", "task": "Image Description"}),
    ("Which treatment is best for stage I disease?", "Surgical resection.", {"task": "Treatment Selection"}),
    ("Compare with the prior study.", "Unchanged.", {"task": "Prior Comparison"}),
])
def test_rule_tagger_table(user, answer, expected):
    row = {"messages": [{"role": "user", "content": user}, {"role": "assistant", "content": answer}]}
    assert RuleTagger().tags(row) == expected


def test_rule_tagger_dicom_metadata_keeps_existing_and_extra_rules():
    row = {"messages": [], "dicom": {"modality": "MR", "body_part": "KNEE"}}
    assert RuleTagger().tags(row) == {"modality": "MRI", "region": "Joint"}
    row = {"messages": [{"role": "user", "content": "CT of the chest"}], "tags": {"modality": ["X-Ray"]}}
    assert RuleTagger().apply(row)["tags"] == {"modality": ["X-Ray"], "region": ["Chest"]}
    assert RuleTagger(overwrite=True).apply(row)["tags"]["modality"] == ["CT"]
    tagger = RuleTagger({"region": [[r"\bsacrum\b", "pelvis"]]})
    assert tagger.tags({"messages": [{"role": "user", "content": "sacrum fracture"}]})["region"] == "Pelvis"
    with pytest.raises(ValueError):
        RuleTagger({"organ": []})
    with pytest.raises(ValueError):
        RuleTagger({"region": [["x", "Spleen"]]})
    assert set(DICOM_MODALITY.values()) <= set(MODALITIES) and set(DICOM_BODY_PART.values()) <= set(REGIONS)


def test_llm_tagger_with_fake_server():
    from citrusv.curate.llm_tagging import (
        REGION_DEFINITIONS,
        TASK_DEFINITIONS,
        LLMTagger,
        LLMTaggingStage,
    )
    from citrusv.data.taxonomy import TASKS
    from citrusv.llm import LLMClient
    from citrusv.llm.fake_server import FakeOpenAIServer, last_user_text

    assert set(TASK_DEFINITIONS) == set(TASKS) and set(REGION_DEFINITIONS) == set(REGIONS)

    def handler(request):
        system = request["messages"][0]["content"]
        assert "Prior Comparison: comparing the current study" in system and "e.g." in system
        text = last_user_text(request)
        if "knee" in text:
            return '{"task": "differential diagnosis", "region": "Joint"}'
        return '{"task": "Dancing", "region": ["Chest"]}'  # a task outside the taxonomy

    with FakeOpenAIServer(handler) as server:
        client = LLMClient(server.base_url, "tagger", api_key="", max_retries=0)
        stage = LLMTaggingStage(LLMTagger(client))
        knee = {"messages": [{"role": "user", "content": "What is wrong with this knee?"},
                             {"role": "assistant", "content": "Meniscal tear."}]}
        odd = {"messages": [{"role": "user", "content": "Hmm?"}, {"role": "assistant", "content": "Yes."}],
               "tags": {"region": ["Abdomen"]}}
        kept, dropped = stage.process([knee, odd])
        assert len(kept) == 2 and not dropped
        assert knee["tags"] == {"task": ["Differential Diagnosis"], "region": ["Joint"]}
        assert odd["tags"] == {"region": ["Abdomen"]} and odd["_llm_untagged"] == 1  # region kept, task refused
        assert len(server.requests) == 2
    with pytest.raises(ValueError):
        LLMTagger(client, kinds=("modality",))

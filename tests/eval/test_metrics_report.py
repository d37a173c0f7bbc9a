"""Reference tests for report-generation metrics (docs/evaluation.md §4).

Oracles: the pltrdy ``rouge`` 1.0.1 package (ROUGE-L), ``pycocoevalcap``'s ``CiderScorer``
(CIDEr-D, and plain CIDEr where clipping cannot act) and the Stanford PTBTokenizer jar shipped
in the ``pycocoevalcap`` wheel (run with Java). Each oracle test is skipped with a reason when
its oracle is missing.
"""

from __future__ import annotations

import math
import pickle
import random
import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from citrusv.eval.metrics import report as report_mod
from citrusv.eval.metrics.report import (
    JD_MAX_PREDICTION_CHARS,
    PTB_PUNCTUATION,
    DocumentFrequency,
    RaTEScorer,
    cider,
    cider_scores,
    cider_tokenize,
    format_report_reference,
    is_empty_report,
    prepare_report_prediction,
    ptb_tokenize,
    resolve_document_frequency,
    rouge_l,
    score_reports,
)

# ============================================================================ text preparation


@pytest.mark.parametrize("raw, expected", [
    ("Lungs are clear.", "lungs are clear."),
    ("Line one.\nLine two.", "line one. line two."),
    ("  padded  ", "padded"),
    ("<answer>Heart normal.</answer>", "heart normal."),
    ("reasoning <ANSWER> No effusion </ANSWER> tail", "no effusion"),  # lower-cased before the regex
    ("<answer>first</answer><answer>second</answer>", "first"),  # first block only
    ("<answer>multi\nline</answer>", "multi line"),  # newlines gone before matching
    ("<think>long reasoning</think>The report.", "the report."),
    ("<think>a</think> x </think>  Final.", "final."),  # text after the last </think>
    ("<think>plan</think><answer>Clear lungs.</answer>", "clear lungs."),
    ("<Thought>plan</Thought>Done", "done"),
    ("<THINK>upper</THINK>kept", "<think>upper</think>kept"),  # the tag test is case-sensitive
    ("<answer></answer>", ""),
    ("   ", ""),
    ("\n", ""),
    ("", ""),
])
def test_prepare_report_prediction(raw, expected):
    assert prepare_report_prediction(raw) == expected


def test_prepare_report_prediction_rejects_non_strings():
    with pytest.raises(TypeError, match="must be a string"):
        prepare_report_prediction(None)  # type: ignore[arg-type]


@pytest.mark.parametrize("findings, impression, expected", [
    ("The lungs are clear.", "No acute process.", "findings: the lungs are clear. impression: no acute process.."),
    (float("nan"), "No acute\nprocess", "findings:  impression: no acute process."),
    (None, "Stable.", "findings:  impression: stable.."),
    ("Heart normal.", None, "findings: heart normal. impression: ."),
    ("\nLeading newline", "X", "findings:  leading newline impression: x."),  # not stripped
])
def test_format_report_reference(findings, impression, expected):
    assert format_report_reference(findings, impression) == expected


def test_format_report_reference_rejects_other_types():
    with pytest.raises(TypeError, match="findings must be a string or missing"):
        format_report_reference(3, "x")  # type: ignore[arg-type]


@pytest.mark.parametrize("prepared, empty", [
    ("", True), ("   ", True), ("...", True), (" . ", True),
    (". .", False),  # the reference gets one empty sentence here and does not crash
    ("no", False), (",", False),
])
def test_is_empty_report(prepared, empty):
    assert is_empty_report(prepared) is empty


# ============================================================================ ROUGE-L


@pytest.mark.parametrize("pred, ref, expected", [
    # identical: R = P = 1, F = 2 / (2 + 1e-8)
    ("a b c", "a b c", 2.0 / (2.0 + 1e-8)),
    # hyp sentences [the heart is normal | no effusion], ref [heart is normal | no effusion]:
    # union LCS = {heart, is, normal, no, effusion} = 5; m = 5 ref words, n = 6 hyp words
    # R = 1, P = 5/6, F = 2 * 5/6 / (11/6 + 1e-8) ~ 10/11
    ("the heart is normal. no effusion.", "heart is normal. no effusion.", 2 * (5 / 6) / (1 + 5 / 6 + 1e-8)),
    # the package's docstring example: r = w1..w5, c1 = w1 w2 w6 w7 w8, c2 = w1 w3 w8 w9 w5
    # LCS(r, c1) = w1 w2, LCS(r, c2) = w1 w3 w5, union = 4; m = 5, n = 8 distinct words
    ("w1 w2 w6 w7 w8. w1 w3 w8 w9 w5", "w1 w2 w3 w4 w5", 2 * (0.8 * 0.5) / (1.3 + 1e-8)),
    ("a a a", "a", 2.0 / (2.0 + 1e-8)),  # distinct-token counts: m = n = 1
    ("normal,", "normal", 0.0),  # commas are not removed
    ("Normal", "normal", 0.0),  # case-sensitive
    ("...", "a", 0.0),  # no sentence: the package raises, we score 0
    ("a", "", 0.0),
])
def test_rouge_l_hand_computed(pred, ref, expected):
    assert rouge_l(pred, ref) == pytest.approx(expected, abs=1e-12)


REPORT_PAIRS = [
    ("the lungs are clear. no pleural effusion or pneumothorax. heart size is normal.",
     "findings: lungs are clear. no effusion. heart size normal. impression: no acute cardiopulmonary process."),
    ("findings: there is mild cardiomegaly, unchanged. impression: stable chest.",
     "findings: mild cardiomegaly is unchanged from prior. impression: no acute process."),
    ("no acute cardiopulmonary process", "findings:  impression: no acute cardiopulmonary process."),
    ("et tube 5 cm above the carina. ng tube in the stomach. the the the.",
     "findings: the endotracheal tube terminates 5 cm above the carina. impression: lines and tubes as above."),
    ("1. left lower lobe opacity, likely atelectasis. 2. small left effusion.",
     "findings: left lower lobe opacity. small left pleural effusion. impression: 1. atelectasis. 2. effusion."),
    ("  spaces   everywhere .  and .. dots . ", "findings: spaces. impression: dots.."),
    (". .", "findings: . impression: ."),
    ("heart (normal size); mediastinum: unremarkable!", "findings: heart normal size. impression: normal."),
]


@pytest.mark.parametrize("pred, ref", REPORT_PAIRS)
def test_rouge_l_equals_rouge_package(pred, ref):
    rouge = pytest.importorskip("rouge", reason="the rouge==1.0.1 oracle is not installed")
    expected = rouge.Rouge().get_scores(pred, ref)[0]["rouge-l"]["f"]
    assert rouge_l(pred, ref) == expected


_WORDS = st.sampled_from(["a", "b", "c", "lungs", "clear", "no", "effusion", "normal,", ".", ".", "", "  "])


@settings(max_examples=150, deadline=None)
@given(pred=st.lists(_WORDS, min_size=1, max_size=30), ref=st.lists(_WORDS, min_size=1, max_size=30))
def test_rouge_l_property_matches_package(pred, ref):
    rouge = pytest.importorskip("rouge", reason="the rouge==1.0.1 oracle is not installed")
    p, r = " ".join(pred), " ".join(ref)
    try:
        expected = rouge.Rouge().get_scores(p, r)[0]["rouge-l"]["f"]
    except ValueError:  # "Hypothesis is empty." / no sentence: our documented score is 0
        expected = 0.0
    got = rouge_l(p, r)
    assert got == expected
    assert 0.0 <= got <= 1.0


def test_rouge_l_long_texts_need_no_recursion_hack():
    rouge = pytest.importorskip("rouge", reason="the rouge==1.0.1 oracle is not installed")
    rng = random.Random(0)
    vocab = [f"w{i}" for i in range(40)]
    pred = " ".join(rng.choice(vocab) for _ in range(650))  # one 650-word "sentence"
    ref = " ".join(rng.choice(vocab) for _ in range(650))
    limit = sys.getrecursionlimit()
    got = rouge_l(pred, ref)  # the package's recursive backtrack needs ~1300 frames here
    assert sys.getrecursionlimit() == limit
    sys.setrecursionlimit(10_000)
    try:
        expected = rouge.Rouge().get_scores(pred, ref)[0]["rouge-l"]["f"]
    finally:
        sys.setrecursionlimit(limit)
    assert got == expected


def test_rouge_l_truncation_option():
    rouge = pytest.importorskip("rouge", reason="the rouge==1.0.1 oracle is not installed")
    pred, ref = "heart size is normal. lungs are clear.", "lungs are clear."
    expected = rouge.Rouge().get_scores(pred[:12], ref)[0]["rouge-l"]["f"]
    assert rouge_l(pred, ref, max_prediction_chars=12) == expected
    assert rouge_l(pred, ref, max_prediction_chars=None) != expected
    with pytest.raises(ValueError, match="max_prediction_chars"):
        rouge_l(pred, ref, max_prediction_chars=-1)


# ============================================================================ PTB tokenizer


@pytest.mark.parametrize("text, expected", [
    ("Heart size is normal (2.5 cm); no effusion.",
     ["heart", "size", "is", "normal", "-lrb-", "2.5", "cm", "-rrb-", "no", "effusion"]),  # -lrb- kept
    ("The patient's ET tube doesn't move.", ["the", "patient", "'s", "et", "tube", "does", "n't", "move"]),
    ("cannot", ["can", "not"]),
    ("e.g. dr. etc. vs. st. i.e.", ["e.g.", "dr.", "etc.", "vs.", "st.", "i.e."]),
    ("lobe. approx. cm.", ["lobe", "approx", "cm"]),  # ordinary words lose the period
    ("no. 3 vs no. x", ["no.", "3", "vs", "no", "x"]),  # "no." only before a number
    ("and/or s/p 1.5cm x-ray t5-t6 1,000 12:30", ["and/or", "s/p", "1.5", "cm", "x-ray", "t5-t6", "1,000", "12:30"]),
    ('"quoted" -- dash ... ellipsis — em', ["quoted", "dash", "ellipsis", "em"]),
    ("[bracket] {brace}", ["-lsb-", "bracket", "-rsb-", "-lcb-", "brace", "-rcb-"]),
    ("what??? no!!", ["what", "???", "no", "!!"]),  # runs of ?/! are not in the drop list
    ("5% ±2 ≥3 ½", ["5", "%", "±", "2", "≥", "3", "1/2"]),
    ("lobe., x", ["lobe.", "x"]),  # a period before , ; : stays on the word
    ("555 123 4567", ["555", "123", "4567"]),  # one PTB token with non-breaking spaces, split by CIDEr
])
def test_cider_tokenize_cases(text, expected):
    assert cider_tokenize(text) == expected


def test_ptb_tokenize_keeps_punctuation_tokens():
    assert ptb_tokenize("Clear (no effusion), stable.") == [
        "clear", "-lrb-", "no", "effusion", "-rrb-", ",", "stable", "."]
    assert "-lrb-" not in PTB_PUNCTUATION and "-LRB-" in PTB_PUNCTUATION


def _ptb_jar() -> Path | None:
    try:
        import pycocoevalcap.tokenizer.ptbtokenizer as ptb_module
    except ImportError:
        return None
    jar = Path(ptb_module.__file__).with_name("stanford-corenlp-3.4.1.jar")
    return jar if jar.is_file() else None


def _java_cider_tokens(lines: list[str], tmp_path: Path) -> list[list[str]]:
    """The reference pipeline: PTBTokenizer -preserveLines -lowerCase, split on " ", drop punctuation."""
    src = tmp_path / "captions.txt"
    src.write_text("\n".join(lines), encoding="utf-8")
    cmd = ["java", "-cp", str(_ptb_jar()), "edu.stanford.nlp.process.PTBTokenizer", "-preserveLines",
           "-lowerCase", str(src)]
    out = subprocess.run(cmd, capture_output=True, check=True, timeout=120).stdout.decode("utf-8").split("\n")
    return [" ".join(w for w in line.rstrip().split(" ") if w not in PTB_PUNCTUATION).split() for line in out[: len(lines)]]


REPORT_LINES = [
    "findings: pa and lateral views of the chest. the lungs are clear without focal consolidation.",
    "no pleural effusion or pneumothorax is seen. the cardiac and mediastinal silhouettes are unremarkable.",
    "impression: 1. single view of chest demonstrates no significant interval change. 2. tubes unchanged.",
    "there is a 1.5 cm nodule in the right upper lobe (series 3, image 45), unchanged from 01/02/2020.",
    "the et tube terminates 5 cm above the carina; the ng-tube courses below the diaphragm.",
    "s/p median sternotomy and cabg. mild cardiomegaly -- stable. degenerative changes of the t-spine.",
    "left picc line tip at the cavoatrial junction. no acute osseous abnormality.",
    "on today's study, previously described left apical pneumothorax isn't well seen.",
    "comparison: ___. indication: ___ year old man with sob // ? pneumonia",
    "**findings:** - lungs: clear - heart: normal size - bones: intact",
    "opacity at the right base could represent atelectasis and/or early pneumonia, e.g. aspiration.",
    "small bilateral effusions (l > r), approx. 2-3 cm; dr. smith was notified at 10:30 a.m.",
    "heart size is top-normal. \"stable\" appearance of the lines… no free air under the hemidiaphragms",
    "the patient’s right ij catheter terminates in the svc — unchanged. 5% 1/2 ½ ±2 ≥3 cm",
    "vs. prior, there's improved aeration of the lungs; ivc filter noted. t12 compression fracture (chronic).",
    "findings:  impression: no acute cardiopulmonary process.",
]


def test_cider_tokenize_matches_stanford_jar(tmp_path):
    if _ptb_jar() is None:
        pytest.skip("needs the PTBTokenizer jar from the pycocoevalcap wheel (pip install pycocoevalcap==1.2)")
    if shutil.which("java") is None:
        pytest.skip("needs a Java runtime (java on PATH) to run the PTBTokenizer jar")
    rng = random.Random(1234)
    fragments = ["the", "lungs", "are", "clear", "no", "pleural", "effusion", "heart", "size", "normal", "x-ray", "ng-tube", "s/p", "and/or", "t5-t6", "e.g.", "i.e.", "dr.", "vs.", "etc.", "no.", "fig.", "approx.", "ca.", "3.", "a.", "it's", "doesn't", "won't", "cannot", "patient's", "1.5", "2.5cm", "1,000", "12:30", "01/02/2020", "5%", "3x4", "2-3", "3-4.5", "-5", "+5", "#1", "½", "(", ")", "[", "]", "{", "}", '"', "'", "`", ",", ";", ":", ".", "?", "!", "...", "--", "—", "–", "’", "“", "”", "°", "±", "×", "≥", "•", "_", "*", "&", "@", "~", "^", "|", "=", "/", "<", ">", "é", "µ"]
    fuzz = []
    for _ in range(200):
        parts = [rng.choice(fragments) + rng.choice([" ", " ", " ", "", "  "]) for _ in range(rng.randint(1, 20))]
        fuzz.append("".join(parts).strip() + " end")  # a word last: the jar reads captions as one file
    lines = [line.lower() for line in REPORT_LINES + fuzz]
    expected = _java_cider_tokens(lines, tmp_path)
    mismatches = [(line, exp, cider_tokenize(line)) for line, exp in zip(lines, expected) if cider_tokenize(line) != exp]
    assert not mismatches, mismatches[:5]


# ============================================================================ CIDEr


def test_cider_hand_computed_corpus():
    # Two images, corpus IDF: N = 2, log N = ln 2. Every reference n-gram has df = 1 and unseen
    # n-grams count df = max(1, 0) = 1, so every n-gram weighs tf * (ln 2 - ln 1) = ln 2.
    #   image 1: hyp "a b" = ref "a b": cos_1 = cos_2 = 1, no 3- and 4-grams (0):
    #            (1 + 1 + 0 + 0) / 4 * 10 = 5.0
    #   image 2: hyp "c e", ref "c d": unigrams share c: ln2^2 / (sqrt(2) ln2)^2 = 1/2; bigrams 0:
    #            (0.5 + 0 + 0 + 0) / 4 * 10 = 1.25
    # mean = 3.125
    scores = cider_scores(["a b", "c e"], ["a b", "c d"], df="corpus", tokenize=False)
    assert scores == pytest.approx([5.0, 1.25], abs=1e-12)
    assert cider(["a b", "c e"], ["a b", "c d"], df="corpus", tokenize=False) == pytest.approx(3.125)
    # same inputs, CIDEr-D: equal bigram counts (no length penalty) and equal weights (no clipping)
    assert cider_scores(["a b", "c e"], ["a b", "c d"], df="corpus", variant="cider-d", tokenize=False) == (
        pytest.approx([5.0, 1.25], abs=1e-12))


def test_cider_single_image_corpus_is_zero():
    # log(1 image) = 0 and every reference n-gram has df = 1: all weights are 0 (a known quirk)
    assert cider_scores(["no pleural effusion"], ["no pleural effusion"], df="corpus") == [0.0]


def _write_coco_val_style(path: Path, counts: dict, num_docs: float) -> None:
    """A file in the cidereval coco-val.p layout: {"df": defaultdict(float), "ref_len": log(N)}."""
    payload = {"df": defaultdict(float, counts), "ref_len": np.log(float(num_docs))}
    path.write_bytes(pickle.dumps(payload, protocol=2))


def test_cider_with_coco_val_style_pickle_hand_computed(tmp_path):
    # ref_len = ln 10; df(a) = 9, df(b) = 1, everything else unseen (df 0 -> max(1, 0) = 1).
    #   weights: a -> ln(10/9), b -> ln 10, c -> ln 10; hyp "a b", ref "a c"
    #   unigram cosine = ln(10/9)^2 / (ln(10/9)^2 + ln(10)^2); bigrams (a b) / (a c) share nothing
    #   score = cosine / 4 * 10
    path = tmp_path / "coco-val.p"
    _write_coco_val_style(path, {("a",): 9.0, ("b",): 1.0}, 10)
    la, l10 = math.log(10 / 9), math.log(10)
    expected = la**2 / (la**2 + l10**2) / 4 * 10
    assert cider_scores(["a b"], ["a c"], df=path, tokenize=False) == pytest.approx([expected], rel=1e-12)
    stats = DocumentFrequency.from_pickle(path)
    assert stats.log_num_docs == pytest.approx(l10) and stats.counts[("a",)] == 9.0
    assert stats.idf(("zzz",)) == pytest.approx(l10)


def test_cider_corpus_equals_its_own_pickle(tmp_path):
    preds = ["lungs are clear", "small left effusion", "heart size normal no effusion"]
    refs = ["the lungs are clear", "small left pleural effusion", "heart size is normal"]
    corpus = cider_scores(preds, refs, df="corpus")
    stats = DocumentFrequency.from_references([[cider_tokenize(r)] for r in refs])
    stats.to_pickle(tmp_path / "mine.p")
    assert cider_scores(preds, refs, df=tmp_path / "mine.p") == pytest.approx(corpus, rel=1e-12)
    # a fixed IDF makes each image independent of the others; corpus IDF does not
    alone = cider_scores(preds[:1], refs[:1], df=tmp_path / "mine.p")
    assert alone == pytest.approx(corpus[:1], rel=1e-12)
    assert cider_scores(preds[:1], refs[:1], df="corpus") != pytest.approx(corpus[:1])


def _random_tokenised(rng: random.Random, n_images: int, distinct_hyp: bool):
    vocab = ["the", "a", "no", "lungs", "are", "clear", "effusion", "normal", "heart", "size", "is", "of", "and", "in", "left", "right"]
    def sent(k: int) -> str:
        return " ".join(rng.sample(vocab, k) if distinct_hyp else [rng.choice(vocab) for _ in range(k)])
    hyps = [sent(rng.randint(0, 10)) for _ in range(n_images)]
    refs = [[" ".join(rng.choice(vocab) for _ in range(rng.randint(1, 14))) for _ in range(rng.randint(1, 3))]
            for _ in range(n_images)]
    return hyps, refs


def _pycoco_cider(hyps, refs, sigma=6.0):
    scorer_mod = pytest.importorskip("pycocoevalcap.cider.cider_scorer", reason="pycocoevalcap==1.2 not installed")
    scorer = scorer_mod.CiderScorer(n=4, sigma=sigma)
    for h, r in zip(hyps, refs):
        scorer += (h, r)
    mean, per_image = scorer.compute_score()
    return float(mean), [float(s) for s in per_image]


@pytest.mark.parametrize("seed", range(6))
def test_cider_d_equals_pycocoevalcap(seed):
    hyps, refs = _random_tokenised(random.Random(seed), n_images=random.Random(seed).randint(2, 12), distinct_hyp=False)
    mean, per_image = _pycoco_cider(hyps, refs)
    ours = cider_scores(hyps, refs, df="corpus", variant="cider-d", tokenize=False)
    assert ours == pytest.approx(per_image, rel=1e-9, abs=1e-12)
    assert cider(hyps, refs, df="corpus", variant="cider-d", tokenize=False) == pytest.approx(mean, rel=1e-9)


@pytest.mark.parametrize("seed", range(4))
def test_plain_cider_equals_pycocoevalcap_without_clipping_or_penalty(seed):
    # With distinct hypothesis words every hypothesis weight is <= the reference weight, so
    # CIDEr-D's clipping does nothing, and sigma = inf removes its length penalty: what is left
    # is plain CIDEr.
    hyps, refs = _random_tokenised(random.Random(100 + seed), n_images=8, distinct_hyp=True)
    _, per_image = _pycoco_cider(hyps, refs, sigma=math.inf)
    assert cider_scores(hyps, refs, df="corpus", tokenize=False) == pytest.approx(per_image, rel=1e-9, abs=1e-12)


def test_plain_cider_and_cider_d_differ_on_repetition():
    hyps, refs = ["effusion effusion effusion", "lungs clear"], ["small effusion", "the lungs are clear today"]
    plain = cider_scores(hyps, refs, df="corpus", tokenize=False)
    dee = cider_scores(hyps, refs, df="corpus", variant="cider-d", tokenize=False)
    assert plain[0] > dee[0]  # clipping and the length penalty both lower CIDEr-D


def test_cider_tokenises_like_the_reference():
    # "(" becomes -lrb-, which survives the reference's punctuation filter and counts as a word
    with_paren = cider_scores(["heart (normal)", "x"], ["heart (normal)", "y"], df="corpus")
    assert with_paren == cider_scores(["heart -lrb- normal -rrb-", "x"], ["heart -lrb- normal -rrb-", "y"],
                                      df="corpus", tokenize=False)


def test_cider_multiple_references_are_averaged():
    two = cider_scores(["a b"], [["a b", "c d"]], df=DocumentFrequency({}, math.log(10.0)), tokenize=False)
    one = cider_scores(["a b"], ["a b"], df=DocumentFrequency({}, math.log(10.0)), tokenize=False)
    assert two[0] == pytest.approx(one[0] / 2)


def test_cider_coco_val_default_reads_the_installed_file(tmp_path, monkeypatch):
    path = tmp_path / "coco-val.p"
    _write_coco_val_style(path, {("lungs",): 3.0}, 40504)
    monkeypatch.setattr("citrusv.eval.metrics.report_cider._installed_coco_val", lambda: path)
    assert cider_scores(["lungs clear"], ["lungs are clear"]) == cider_scores(
        ["lungs clear"], ["lungs are clear"], df=path)
    assert score_reports(["Lungs clear."], ["lungs are clear."]).cider_df == str(path)


def test_cider_coco_val_missing_says_where_to_get_it(monkeypatch):
    monkeypatch.setattr("citrusv.eval.metrics.report_cider._installed_coco_val", lambda: None)
    with pytest.raises(FileNotFoundError, match=r"coco-val\.p.*michelecafagna26/cider.*df='corpus'"):
        cider_scores(["a"], ["a"])  # default df = "coco-val"
    with pytest.raises(FileNotFoundError, match=r"coco-val\.p"):
        score_reports(["a"], ["a"])  # the reference's default, not silently replaced by corpus IDF


@pytest.mark.parametrize("make, error, match", [
    (lambda p: None, FileNotFoundError, "not found.*coco-val.p"),
    (lambda p: p.write_bytes(b"version https://git-lfs.github.com/spec/v1\noid sha256:0\n"), ValueError, "Git LFS"),
    (lambda p: p.write_bytes(pickle.dumps({"document_frequency": {}})), ValueError, "'df'.*'ref_len'"),
    (lambda p: p.write_bytes(pickle.dumps({"df": {"a": 1}, "ref_len": 1.0})), ValueError, "n-gram tuples"),
    (lambda p: p.write_bytes(b"cos\nsystem\n(S'echo pwned'\ntR."), pickle.UnpicklingError, "refusing to load"),
])
def test_document_frequency_file_errors(tmp_path, make, error, match):
    path = tmp_path / "df.p"
    make(path)
    with pytest.raises(error, match=match):
        DocumentFrequency.from_pickle(path)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"predictions": ["a"], "references": ["a", "b"]}, ValueError, "1 predictions but 2 references"),
    ({"predictions": ["a"], "references": ["a"], "variant": "bleu"}, ValueError, "variant"),
    ({"predictions": ["a"], "references": ["a"], "n": 0}, ValueError, "n must be"),
    ({"predictions": [1], "references": ["a"]}, TypeError, "prediction 0"),
    ({"predictions": ["a"], "references": [[]]}, TypeError, "reference 0"),
    ({"predictions": ["a"], "references": ["a"], "df": 3}, TypeError, "df must be"),
])
def test_cider_errors(kwargs, error, match):
    kwargs.setdefault("df", "corpus")
    with pytest.raises(error, match=match):
        cider_scores(**kwargs)


def test_cider_of_nothing():
    assert cider_scores([], [], df="corpus") == []
    with pytest.raises(ValueError, match="undefined"):
        cider([], [], df="corpus")
    with pytest.raises(ValueError, match="needs the tokenised references"):
        resolve_document_frequency("corpus")


# ============================================================================ aggregation

REFS = [
    format_report_reference("The lungs are clear. No effusion.", "No acute process."),
    format_report_reference("Mild cardiomegaly.", "Stable chest."),
    format_report_reference(None, "Left lower lobe pneumonia."),
    format_report_reference("Heart size normal.", "Normal chest."),
    format_report_reference("Small right effusion.", "Effusion."),
    format_report_reference("ET tube in place.", "Lines as above."),
    format_report_reference("No pneumothorax.", "Normal."),
    format_report_reference("Clear lungs.", "Normal."),
]
PREDS = [
    "<think>look at the lungs</think><answer>Lungs are clear.\nNo effusion.</answer>",  # think + answer
    "Findings: mild cardiomegaly. Impression: stable.",
    "",  # skipped by the reference
    "   ",  # crashes the reference
    "\n",  # crashes the reference
    "...",  # crashes the reference
    "<answer></answer>",  # crashes the reference
    ". .",  # one empty sentence: the reference scores it (0) and keeps it in CIDEr
]
EMPTY = [2, 3, 4, 5, 6]


def test_score_reports_default_mode():
    out = score_reports(PREDS, REFS, cider_df="corpus")
    assert out.empty_rows == EMPTY and out.n_rows == 8 and not out.strict and out.cider_df == "corpus"
    prepared = [prepare_report_prediction(p) for p in PREDS]
    expected_rouge = [0.0 if i in EMPTY else 100 * rouge_l(p, r) for i, (p, r) in enumerate(zip(prepared, REFS))]
    assert out.rouge_l_per_row == pytest.approx(expected_rouge)
    assert out.rouge_l == pytest.approx(sum(expected_rouge) / 8)  # all rows in the denominator
    kept = [0, 1, 7]
    raw = cider_scores([prepared[i] for i in kept], [REFS[i] for i in kept], df="corpus")  # IDF of kept rows
    assert [out.cider_per_row[i] for i in kept] == pytest.approx([100 * v for v in raw])
    assert all(out.cider_per_row[i] is None for i in EMPTY)
    assert out.cider == pytest.approx(100 * sum(raw) / 3)  # non-empty rows only
    assert out.cider_per_row[7] == 0.0 and out.rouge_l_per_row[7] == 0.0
    assert out.ratescore is None and out.ratescore_per_row == [None] * 8
    assert out.as_dict() == {"rouge_l": out.rouge_l, "cider": out.cider, "ratescore": None}


def test_score_reports_strict_mode():
    out = score_reports(PREDS, REFS, cider_df="corpus", strict=True)
    default = score_reports(PREDS, REFS, cider_df="corpus")
    assert out.strict and out.rouge_l == default.rouge_l  # ROUGE-L already averages all rows
    prepared = [prepare_report_prediction(p) for p in PREDS]
    raw = cider_scores(prepared, REFS, df="corpus")  # all rows, IDF from all references
    assert out.cider_per_row == pytest.approx([0.0 if i in EMPTY else 100 * v for i, v in enumerate(raw)])
    assert out.cider == pytest.approx(sum(out.cider_per_row) / 8)


def test_score_reports_with_fixed_idf_only_denominators_differ(tmp_path):
    path = tmp_path / "coco-val.p"
    _write_coco_val_style(path, {("lungs",): 2.0, ("normal",): 5.0}, 100)
    default = score_reports(PREDS, REFS, cider_df=path)
    strict = score_reports(PREDS, REFS, cider_df=path, strict=True)
    assert default.cider_df == str(path)
    kept = [0, 1, 7]
    assert [strict.cider_per_row[i] for i in kept] == pytest.approx([default.cider_per_row[i] for i in kept])
    assert strict.cider == pytest.approx(default.cider * 3 / 8)


def test_score_reports_truncates_rouge_hypothesis_like_the_fork():
    rouge = pytest.importorskip("rouge", reason="the rouge==1.0.1 oracle is not installed")
    pred = "x " * 1100 + "the lungs are clear."  # the matching words start after 2048 characters
    ref = format_report_reference("The lungs are clear.", "Normal.")
    cut = score_reports([pred], [ref], cider_df="corpus")
    whole = score_reports([pred], [ref], cider_df="corpus", max_prediction_chars=None)
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(10_000)  # what the fork does for the package's recursive LCS
    try:
        expected = rouge.Rouge().get_scores(pred[:JD_MAX_PREDICTION_CHARS], ref)[0]["rouge-l"]["f"]
    finally:
        sys.setrecursionlimit(limit)
    assert cut.rouge_l == pytest.approx(100 * expected)
    assert whole.rouge_l > cut.rouge_l


def test_score_reports_all_empty():
    out = score_reports(["", "..."], REFS[:2], cider_df="corpus")
    assert out.rouge_l == 0.0 and math.isnan(out.cider) and out.empty_rows == [0, 1]
    strict = score_reports(["", "..."], REFS[:2], cider_df="corpus", strict=True)
    assert strict.cider == 0.0


def test_score_reports_prepare_false_scores_texts_as_given():
    out = score_reports(["<answer>lungs clear</answer>"], REFS[:1], cider_df="corpus", prepare=False)
    assert out.rouge_l_per_row[0] == pytest.approx(100 * rouge_l("<answer>lungs clear</answer>", REFS[0]))


def test_score_reports_ratescore_callable_sees_non_empty_rows():
    calls = []

    def fake_rate(preds, refs):
        calls.append((list(preds), list(refs)))
        return [0.5] * len(preds)

    out = score_reports(PREDS, REFS, cider_df="corpus", ratescore=fake_rate)
    prepared = [prepare_report_prediction(p) for p in PREDS]
    assert calls == [([prepared[i] for i in (0, 1, 7)], [REFS[i] for i in (0, 1, 7)])]
    assert out.ratescore == pytest.approx(50.0)
    strict = score_reports(PREDS, REFS, cider_df="corpus", ratescore=fake_rate, strict=True)
    assert strict.ratescore == pytest.approx(50.0 * 3 / 8)
    assert strict.ratescore_per_row[2] == 0.0


@pytest.mark.parametrize("preds, refs, kwargs, error, match", [
    (["a"], ["a", "b"], {}, ValueError, "1 predictions but 2 references"),
    ([], [], {}, ValueError, "at least one"),
    ([None], ["a"], {}, TypeError, "row 0"),
    (["a"], ["a"], {"ratescore": lambda p, r: []}, ValueError, "returned 0 scores for 1"),
])
def test_score_reports_errors(preds, refs, kwargs, error, match):
    with pytest.raises(error, match=match):
        score_reports(preds, refs, cider_df="corpus", **kwargs)


# ============================================================================ RaTEScore


def _model_dir(tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    path.mkdir()
    (path / "config.json").write_text("{}")
    return path


def test_ratescore_missing_directories_are_named(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        RaTEScorer(tmp_path / "nope-ner", tmp_path / "nope-biolord")
    msg = str(info.value)
    assert "RaTE-NER-Deberta" in msg and "Angelakeke/RaTE-NER-Deberta" in msg and "nope-ner" in msg
    assert "BioLORD-2023-C" in msg and "FremyCompany/BioLORD-2023-C" in msg and "nope-biolord" in msg


def test_ratescore_directory_without_config(tmp_path):
    ner = _model_dir(tmp_path, "ner")
    (tmp_path / "bio").mkdir()
    with pytest.raises(FileNotFoundError, match=r"embedding_model_dir: .*bio has no config.json") as info:
        RaTEScorer(ner, tmp_path / "bio")
    assert "ner_model_dir" not in str(info.value)


def test_ratescore_missing_package(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "RaTEScore", None)  # makes `import RaTEScore` fail
    with pytest.raises(ImportError, match=r"pip install ratescore==0\.6\.0.*medspacy"):
        RaTEScorer(_model_dir(tmp_path, "ner"), _model_dir(tmp_path, "bio"))


def test_ratescore_uses_the_local_directories(tmp_path, monkeypatch):
    made = {}

    class FakeRaTE:
        def __init__(self, **kwargs):
            made.update(kwargs)

        def compute_score(self, preds, refs):
            return [0.5 if not p else 1.0 for p in preds]

    monkeypatch.setattr(report_mod, "_load_ratescore_class", lambda: FakeRaTE)
    ner, bio = _model_dir(tmp_path, "ner"), _model_dir(tmp_path, "bio")
    scorer = RaTEScorer(ner, bio)
    assert made == {"bert_model": str(ner), "eval_model": str(bio), "batch_size": 1, "use_gpu": False}
    assert scorer(["x", ""], ["y", "z"]) == [1.0, 0.5]
    with pytest.raises(ValueError, match="1 predictions but 2 references"):
        scorer(["x"], ["y", "z"])
    with pytest.raises(ValueError, match="device"):
        RaTEScorer(ner, bio, device="tpu")

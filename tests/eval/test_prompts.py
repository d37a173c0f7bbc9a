"""Reference prompt strings, checked character for character (en and zh)."""

from __future__ import annotations

import pytest

from citrusv.eval import prompts

# (builder, language, expected): question "Q?" everywhere.
SUFFIX_CASES = [
    (prompts.yes_no_prompt, "en", "Q?\nPlease output 'yes' or 'no'(no extra output)."),
    (prompts.yes_no_prompt, "zh", "Q?\n请输出'是'或'否'(不要有任何其它输出)。"),
    (prompts.open_prompt, "en", "Q?\nPlease answer the question concisely."),
    (prompts.open_prompt, "zh", "Q?\n请简要回答该问题。"),
    (prompts.closed_prompt, "en", "Q?\nAnswer the question using a single word or phrase."),
    (prompts.closed_prompt, "zh", "Q?\n请用一个单词或者短语回答该问题。"),
]


@pytest.mark.parametrize("builder, lang, expected", SUFFIX_CASES)
def test_vqa_prompts(builder, lang, expected):
    assert builder("Q?", lang) == expected


@pytest.mark.parametrize("qtype, lang, expected", [
    ("CHOICE", "en", "B\nAnswer with the option's letter from the given choices directly."),
    ("CHOICE", "zh", "B\n请直接使用给定选项中的选项字母来回答该问题。"),
    ("JUDGE", "en", "B\nPlease output 'yes' or 'no'(no extra output)."),
    ("REPORT", "zh", "生成一份报告。"),
])
def test_apply_question_type(qtype, lang, expected):
    assert prompts.apply_question_type("B", qtype, lang) == expected


@pytest.mark.parametrize("args", [("B", "BOGUS", "en"), ("B", "OPEN", "fr")])
def test_apply_question_type_rejects(args):
    with pytest.raises(ValueError):
        prompts.apply_question_type(*args)


@pytest.mark.parametrize("answer, answer_type, lower, expected", [
    ("yes", None, True, "JUDGE"),
    ("Yes", None, True, "JUDGE"),  # VQA-RAD lower-cases first
    ("Yes", None, False, "OPEN"),  # PathVQA does not
    ("left lung", None, True, "OPEN"),
    ("Yes", "CLOSED", False, "CLOSED"),  # SLAKE quirk: capitalised gold never gets the yes/no prompt
    ("yes", "CLOSED", False, "JUDGE"),
    ("Lung", "CLOSED", False, "CLOSED"),
    ("yes", "OPEN", False, "OPEN"),
    ("是", "CLOSED", False, "CLOSED"),
])
def test_vqa_question_type(answer, answer_type, lower, expected):
    assert prompts.vqa_question_type(answer, answer_type, lower=lower) == expected


def test_mcq_prompt_jd_en():
    prompt = prompts.mcq_prompt("Which organ?", ["A. liver", "B. lung"])
    assert prompt == ("Question: Which organ?\nOptions: A. liver\nB. lung\n"
                      "Answer with the option's letter from the given choices directly.")


def test_mcq_prompt_jd_zh():
    prompt = prompts.mcq_prompt("哪个器官？", ["A.肝", "B.肺"], "zh")
    assert prompt == "问题： 哪个器官？\n选项： A.肝\nB.肺\n请直接使用给定选项中的选项字母来回答该问题。"


def test_mcq_prompt_closed_type_as_the_fork_tags_medqa():
    assert prompts.mcq_prompt("Q?", ["A. x", "B. y"], question_type="CLOSED") == (
        "Question: Q?\nOptions: A. x\nB. y\nAnswer the question using a single word or phrase.")
    assert prompts.mcq_prompt("问？", ["甲", "乙"], "zh", question_type="CLOSED") == (
        "问题： 问？\n选项： 甲\n乙\n请用一个单词或者短语回答该问题。")


def test_mcq_prompt_upstream_variant():
    assert prompts.mcq_prompt("Q?", ["A. x", "B. y"], variant="upstream") == (
        "\nQuestion: Q?\nOptions: \nA. x\nB. y\nAnswer with the option's letter from the given choices directly.")
    assert prompts.mcq_prompt("问？", ["A.x"], "zh", variant="upstream") == (
        "\n问题： 问？\n选项： \nA.x\n请直接使用给定选项中的选项字母来回答该问题。")


@pytest.mark.parametrize("kwargs", [{"variant": "other"}, {"question_type": "OPEN"}])
def test_mcq_prompt_rejects(kwargs):
    with pytest.raises(ValueError):
        prompts.mcq_prompt("Q?", ["A. x"], **kwargs)


def test_pubmedqa_prompt():
    prompt = prompts.pubmedqa_prompt(["First.", "Second."], "Does it?", ["A.yes", "B.no", "C.maybe"])
    assert prompt == ("Context: First.\nSecond.\nQuestion: Does it?\nOptions: A.yes\nB.no\nC.maybe\n"
                      "Answer with the option's letter from the given choices directly.")


def test_report_prompts():
    assert prompts.report_prompt() == (
        "You are a helpful assistant. Please generate a report for the given images, including both findings "
        "and impressions. Return the report in the following format: Findings: {} Impression: {}.")
    assert prompts.report_prompt("zh") == "生成一份报告。"


def test_meddoc_prompts():
    assert prompts.MEDDOC_DEFAULT_SYSTEM_PROMPT == "你是医学文档解析专家"
    assert prompts.MEDDOC_FULLPARSE_PROMPT == "请将图中检验单表格解析为Markdown格式，表头包括检验项目、结果、单位、参考范围"
    assert prompts.MEDDOC_ABNORMALITY_PROMPT == (
        "请识别检验单中的异常项目，输出JSON格式，包含检验项目名称、结果、参考范围和异常状态。异常状态包括：偏高、偏低、"
        "阳性、阴性、弱阳性、异常。只输出异常项目，正常项目不要输出。")
    assert prompts.meddoc_simple_question("血糖", "result", True) == "图中显示血糖的测量结果是多少？如果有单位请同时包含单位"
    assert prompts.meddoc_simple_question("血糖", "result", False) == "图中显示血糖的测量结果是多少？"
    assert prompts.meddoc_simple_question("血糖", "reference", True) == "图中显示血糖的参考区间是多少？"
    with pytest.raises(ValueError):
        prompts.meddoc_simple_question("血糖", "unit")


def test_detection_prompts():
    assert prompts.detection_prompt("left kidney") == (
        "<image>\nLocate the left kidney, output its bbox coordinates using JSON format.")
    assert prompts.detection_prompt("left kidney", "standard") == (
        "<image>Please detect the left kidney in the given image using bounding box.")
    with pytest.raises(ValueError):
        prompts.detection_prompt("x", "qwen")


def test_segmentation_query_and_placeholder():
    conversations = [{"from": "human", "value": "<image>\nSegment the liver."},
                     {"from": "gpt", "value": "<SEG><mask>masks/a.png</mask>"}]
    query = prompts.segmentation_query(conversations)
    assert query == "<image>\nSegment the liver."
    assert prompts.strip_image_placeholder(query) == "Segment the liver."
    assert prompts.strip_image_placeholder("<image>Please detect x.") == "Please detect x."
    assert prompts.strip_image_placeholder("no tag") == "no tag"
    for bad in ([], [{"from": "human"}]):
        with pytest.raises(ValueError):
            prompts.segmentation_query(bad)

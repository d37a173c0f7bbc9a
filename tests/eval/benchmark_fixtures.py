"""Tiny fixtures in each benchmark's public file format (shared by loader and end-to-end tests).

Every builder writes good rows plus exactly one bad row under ``root/<folder>`` and returns what
to expect: the number of items, the file and row number of the bad row.
"""

from __future__ import annotations

import base64
import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from citrusv.eval.benchmarks import BENCHMARKS


@dataclass
class Expect:
    n_items: int
    bad_file: str  # path relative to the benchmark folder
    bad_row: int


# --------------------------------------------------------------------------------------------
# writers


#: Fixture image size: small, but above the model loader's 8-pixel minimum side.
IMAGE_SIZE = (16, 12)


def png(path: Path, color: tuple[int, int, int] = (200, 10, 10)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", IMAGE_SIZE, color).save(path)
    return path


def png_bytes(color: tuple[int, int, int] = (10, 200, 10)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", IMAGE_SIZE, color).save(buffer, format="PNG")
    return buffer.getvalue()


def write_jsonl(path: Path, rows: list) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")


def write_json(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")


def write_table(path: Path, header: list[str], rows: list[list], delimiter: str = ",") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, delimiter=delimiter)
        writer.writerow(header)
        writer.writerows(rows)


# --------------------------------------------------------------------------------------------
# fixture builders: one per benchmark, in the public format


def build_vqa_rad(root: Path) -> Expect:
    folder = root / "vqa_rad"
    for i in range(4):
        png(folder / "images" / f"{i}.png")
    write_jsonl(folder / "test.jsonl", [
        {"image": "images/0.png", "question": "Is there a fracture?", "answer": "yes"},
        {"image": "images/1.png", "question": "Where is the lesion?", "answer": "left lung"},
        {"image": "images/2.png", "question": "Is it normal?"},  # bad: no answer
        {"image": "images/3.png", "question": "Is the heart enlarged?", "answer": "No"},
    ])
    return Expect(3, "test.jsonl", 3)


def build_path_vqa(root: Path) -> Expect:
    folder = root / "path_vqa"
    png(folder / "images" / "0.png")
    encoded = base64.b64encode(png_bytes()).decode()
    write_jsonl(folder / "test.jsonl", [
        {"image": "images/0.png", "question": "Is this tissue inflamed?", "answer": "yes"},
        {"image": {"bytes": encoded, "path": None}, "question": "Is this benign?", "answer": "Yes"},
        {"image": "images/missing.png", "question": "What stain?", "answer": "h&e"},  # bad: no image
        {"image": "images/0.png", "question": "What is shown?", "answer": "granuloma"},
    ])
    return Expect(3, "test.jsonl", 3)


def build_slake(root: Path) -> Expect:
    folder = root / "slake"
    png(folder / "imgs" / "xmlab1" / "source.jpg")
    base = {"img_id": 1, "img_name": "xmlab1/source.jpg", "location": "Lung", "modality": "CT",
            "base_type": "vqa", "content_type": "Organ", "triple": ["vhead", "_", "_"]}
    write_json(folder / "test.json", [
        {**base, "qid": 11934, "question": "What modality is used?", "answer": "CT", "q_lang": "en",
         "answer_type": "OPEN"},
        {**base, "qid": 11938, "question": "Does the picture contain liver?", "answer": "Yes", "q_lang": "en",
         "answer_type": "CLOSED"},
        {**base, "qid": 11944, "question": "Which is bigger, lung or liver?", "answer": "Lung", "q_lang": "en",
         "answer_type": "CLOSED"},
        {**base, "qid": 12000, "question": "图中主要器官是什么？", "answer": "肺", "q_lang": "zh", "answer_type": "OPEN"},
        {**base, "qid": 12001, "img_name": "xmlab9/source.jpg", "question": "有肝吗？", "answer": "否",
         "q_lang": "zh", "answer_type": "CLOSED"},  # bad: image missing
        {**base, "qid": 12002, "question": "图片中有肝脏吗？", "answer": "是", "q_lang": "zh", "answer_type": "CLOSED"},
    ])
    return Expect(5, "test.json", 5)


def build_pmc_vqa(root: Path) -> Expect:
    folder = root / "pmc_vqa"
    png(folder / "figures" / "PMC1_F1.jpg")
    header = ["index", "Figure_path", "Caption", "Question", "Choice A", "Choice B", "Choice C", "Choice D",
              "Answer", "split"]
    write_table(folder / "test_2.csv", header, [
        [0, "PMC1_F1.jpg", "cap", "What imaging is shown?", " A:CT ", " B:MRI", " C:X-ray", " D:PET", "B", "test"],
        [1, "PMC1_F1.jpg", "cap", "Which side?", " A:left", " B:right", " C:both", " D:none", "E", "test"],
        [2, "PMC1_F1.jpg", "cap", "What stain?", " A:H&E", " B:PAS", " C:Gram", " D:none", "a", "test"],
    ])
    return Expect(2, "test_2.csv", 2)


def build_medxpertqa_mm(root: Path) -> Expect:
    folder = root / "medxpertqa"
    png(folder / "images" / "MM-1-a.jpeg")
    png(folder / "images" / "MM-1-b.jpeg")
    options = {"A": "Fracture", "B": "Tumor", "C": "Infection", "D": "Normal", "E": "Cyst"}
    write_jsonl(folder / "MM" / "test.jsonl", [
        {"id": "MM-1", "question": "What is seen? Answer Choices: (A) Fracture (B) Tumor (C) Infection (D) Normal (E) Cyst",
         "options": options, "label": "B", "images": ["MM-1-a.jpeg", "MM-1-b.jpeg"], "medical_task": "Diagnosis",
         "body_system": "Skeletal", "question_type": "Reasoning"},
        {"id": "MM-2", "question": "Which finding?", "options": options, "label": "F", "images": ["MM-1-a.jpeg"]},
        {"id": "MM-3", "question": "Best next step?", "options": options, "label": "A", "images": ["MM-1-b.jpeg"]},
    ])
    return Expect(2, "MM/test.jsonl", 2)


def build_medxpertqa_text(root: Path) -> Expect:
    folder = root / "medxpertqa"
    options = {chr(65 + i): f"opt{i}" for i in range(10)}
    write_jsonl(folder / "Text" / "test.jsonl", [
        {"id": "Text-1", "question": "A 40-year-old man... Answer Choices: (A) opt0 (B) opt1", "options": options,
         "label": "J", "medical_task": "Treatment", "body_system": "Cardiovascular", "question_type": "Reasoning"},
        {"id": "Text-2", "question": "Which drug?", "label": "A"},  # bad: no options
    ])
    return Expect(1, "Text/test.jsonl", 2)


def build_pubmedqa(root: Path) -> Expect:
    folder = root / "pubmedqa"
    write_json(folder / "ori_pqal.json", {
        "100": {"QUESTION": "Does X cause Y?", "CONTEXTS": ["Background one.", "Results two."], "LABELS": ["B", "R"],
                "final_decision": "yes", "LONG_ANSWER": "Yes."},
        "200": {"QUESTION": "Is Z useful?", "CONTEXTS": ["Only context."], "final_decision": "maybe"},
    })
    write_json(folder / "test_ground_truth.json", {"100": "yes", "200": "maybe", "300": "no"})
    return Expect(2, "test_ground_truth.json", 3)


def build_medmcqa(root: Path) -> Expect:
    folder = root / "medmcqa"
    base = {"opa": "Aorta", "opb": "Vein", "opc": "Nerve", "opd": "Bone", "choice_type": "single",
            "subject_name": "Anatomy", "topic_name": "Thorax"}
    write_jsonl(folder / "validation.jsonl", [
        {**base, "id": "mc-1", "question": "Which is an artery?", "cop": 0},
        {**base, "id": "mc-2", "question": "Which carries signals?", "cop": 4},
        {**base, "id": "mc-3", "question": "Which is hard?", "cop": 3},
    ])
    return Expect(2, "validation.jsonl", 2)


def build_medqa_usmle(root: Path) -> Expect:
    folder = root / "medqa_usmle"
    options = {"A": "Ampicillin", "B": "Ceftriaxone", "C": "Doxycycline", "D": "Azithromycin"}
    write_jsonl(folder / "phrases_no_exclude_test.jsonl", [
        {"question": "A 23-year-old woman... Which is the best treatment?", "answer": "Ceftriaxone",
         "options": options, "meta_info": "step2&3", "answer_idx": "B"},
        {"question": "Incomplete options?", "options": {"A": "x", "B": "y", "C": "z"}, "answer_idx": "A"},
    ])
    return Expect(1, "phrases_no_exclude_test.jsonl", 2)


def build_medqa_mcmle(root: Path) -> Expect:
    folder = root / "medqa_mcmle"
    options = {"A": "阿司匹林", "B": "青霉素", "C": "胰岛素", "D": "肝素", "E": "地高辛"}
    write_jsonl(folder / "test.jsonl", [
        {"question": "治疗糖尿病的药物是", "options": options, "answer": "胰岛素", "meta_info": "卫生法规",
         "answer_idx": "C"},
        {"question": "错误的答案", "options": options, "answer_idx": "F"},
    ])
    return Expect(1, "test.jsonl", 2)


def build_cmmlu_medical(root: Path) -> Expect:
    folder = root / "cmmlu" / "test"
    header = ["", "Question", "A", "B", "C", "D", "Answer"]
    subjects = ["anatomy", "clinical_knowledge", "college_medicine", "genetics", "traditional_chinese_medicine",
                "nutrition", "virology"]
    for subject in subjects:
        rows = [[0, f"{subject}问题一", "甲", "乙", "丙", "丁", "A"]]
        if subject == "anatomy":
            rows.append([1, "人体最大的器官是", "皮肤", "肝", "肺", "心", "A"])
        if subject == "genetics":
            rows.append([1, "坏行", "甲", "乙", "丙", "丁", "X"])
        write_table(folder / f"{subject}.csv", header, rows)
    return Expect(8, "test/genetics.csv", 2)


def build_medbullets_op4(root: Path) -> Expect:
    folder = root / "medbullets"
    options = {"A": "Observation", "B": "Surgery", "C": "Antibiotics", "D": "Casting"}
    write_jsonl(folder / "medbullets_op4.jsonl", [
        {"question": "A 12-year-old boy... What is the next step?", "options": options, "answer_idx": "D",
         "answer": "Casting"},
        {"question": "Missing gold?", "options": options},
    ])
    return Expect(1, "medbullets_op4.jsonl", 2)


def build_medbullets_op5(root: Path) -> Expect:
    folder = root / "medbullets"
    header = ["question", "opa", "opb", "opc", "opd", "ope", "answer", "answer_idx", "explanation", "link"]
    write_table(folder / "medbullets_op5.csv", header, [
        ["A 65-year-old man... Most likely diagnosis?", "MI", "PE", "Dissection", "GERD", "Pericarditis", "PE", "B",
         "expl", "https://example.org"],
        ["Bad letter?", "a", "b", "c", "d", "e", "f", "F", "", ""],
    ])
    return Expect(1, "medbullets_op5.csv", 2)


def build_supergpqa_medicine(root: Path) -> Expect:
    folder = root / "supergpqa"
    write_jsonl(folder / "SuperGPQA-all.jsonl", [
        {"uuid": "u1", "question": "Which vitamin?", "options": ["A1", "B12", "C", "D"], "answer": "B12",
         "answer_letter": "B", "discipline": "Medicine", "field": "Basic Medicine", "subfield": "Nutrition",
         "difficulty": "easy"},
        {"uuid": "u2", "question": "Bridge load?", "options": ["1", "2"], "answer_letter": "A",
         "discipline": "Engineering"},
        {"uuid": "u3", "question": "Which enzyme?", "options": ["p", "q", "r", "s", "t", "u"], "answer_letter": "F",
         "discipline": "Medicine", "field": "Clinical Medicine"},
        {"uuid": "u4", "question": "Bad gold?", "options": ["p", "q"], "answer_letter": "Z", "discipline": "Medicine"},
    ])
    return Expect(2, "SuperGPQA-all.jsonl", 4)


LTR_FULL_Q = "请将图中检验单表格解析为Markdown格式，表头包括检验项目、结果、单位、参考范围"
LTR_ABN_Q = ("请识别检验单中的异常项目，输出JSON格式，包含检验项目名称、结果、参考范围和异常状态。异常状态包括：偏高、偏低、"
             "阳性、阴性、弱阳性、异常。只输出异常项目，正常项目不要输出。")


def build_meddocbench_ltr_full(root: Path) -> Expect:
    folder = root / "meddocbench" / "LTR_fullparsing"
    image = base64.b64encode(png_bytes()).decode()
    gold = json.dumps([{"entryname": "白细胞", "result": "5.2", "unit": "10^9/L", "reference": "3.5-9.5"},
                       {"entryname": "尿蛋白", "result": "-", "unit": "", "reference": "阴性"}], ensure_ascii=False)
    table = "| 检验项目 | 结果 | 单位 | 参考范围 |\\n|---|---|---|---|\\n| 血糖 | 6.1 | mmol/L | 3.9-6.1 |"
    write_table(folder / "LTR_fullparsing.tsv", ["index", "question", "answer", "image"], [
        [0, LTR_FULL_Q, gold, image],
        [1, LTR_FULL_Q, table, image],
        [2, LTR_FULL_Q, "no table here", image],
    ], delimiter="\t")
    return Expect(2, "LTR_fullparsing/LTR_fullparsing.tsv", 3)


def build_meddocbench_ltr_simple(root: Path) -> Expect:
    folder = root / "meddocbench" / "LTR_simpleQA"
    png(folder / "images" / "r1.png")
    write_table(folder / "LTR_simpleQA.tsv", ["index", "question", "answer", "image_path", "entryname", "field_type"], [
        [0, "图中显示血糖的测量结果是多少？如果有单位请同时包含单位", "6.1 mmol/L", "images/r1.png", "血糖", "result"],
        [1, "图中显示血糖的参考区间是多少？", "3.9-6.1", "images/r1.png", "血糖", "reference"],
        [2, "图中显示尿酸的参考区间是多少？", "150-420", "images/missing.png", "尿酸", "reference"],
    ], delimiter="\t")
    return Expect(2, "LTR_simpleQA/LTR_simpleQA.tsv", 3)


def build_meddocbench_ltr_abnormal(root: Path) -> Expect:
    folder = root / "meddocbench" / "LTR_abnormalityQA"
    image = base64.b64encode(png_bytes()).decode()
    gold = json.dumps([{"检验项目名称": "谷丙转氨酶", "结果": "88 U/L", "参考范围": "9-50", "异常状态": "偏高"}],
                      ensure_ascii=False)
    write_table(folder / "LTR_abnormalityQA.tsv", ["index", "question", "answer", "image"], [
        [0, LTR_ABN_Q, "[]", image],
        [1, LTR_ABN_Q, gold, image],
        [2, "", "[]", image],
    ], delimiter="\t")
    return Expect(2, "LTR_abnormalityQA/LTR_abnormalityQA.tsv", 3)


def build_meddocbench_gmd_simple(root: Path) -> Expect:
    folder = root / "meddocbench" / "GMD_simpleQA"
    png(folder / "images" / "d1.png")
    header = ["index", "question", "answer", "image_path", "doc_type", "dept_name", "system_prompt"]
    write_table(folder / "GMD_simpleQA.tsv", header, [
        [0, "该药品的规格是多少？", "0.25g*24粒", "images/d1.png", "Medication Packages", "药剂科", ""],
        [1, "患者姓名是什么？", "", "images/d1.png", "Outpatient Encounter Notes", "内科", ""],
        [2, "报告日期是哪天？", "2024-01-02", "images/d1.png", "Imaging Reports", "放射科", "你是影像科医生"],
    ], delimiter="\t")
    return Expect(2, "GMD_simpleQA/GMD_simpleQA.tsv", 2)


def build_meddocbench_gmd_complex(root: Path) -> Expect:
    folder = root / "meddocbench"
    png(folder / "GMD_complexQA" / "images" / "c1.png")
    png(folder / "shared" / "c2.png")  # relative to the MedDocBench folder, not the split folder
    write_table(folder / "GMD_complexQA" / "GMD_complexQA.tsv", ["index", "question", "answer", "image_path"], [
        [10, "总结该报告的主要结论。", "肝脏未见异常。", "images/c1.png"],
        [11, "该报告提示什么？", "建议复查。", "10"],  # reuses row 10's image (VLMEvalKit convention)
        [12, "出院诊断是什么？", "肺炎", "shared/c2.png"],
        [13, "坏行", "答案", "images/none.png"],
    ], delimiter="\t")
    return Expect(3, "GMD_complexQA/GMD_complexQA.tsv", 4)


def build_chexpert_plus(root: Path) -> Expect:
    folder = root / "chexpert_plus"
    png(folder / "images" / "valid" / "patient1" / "study1" / "view1_frontal.png")
    png(folder / "images" / "valid" / "patient2" / "study1" / "view1_frontal.png")
    study = {"frontal_lateral": ["Frontal"], "ap_pa": ["AP"]}
    text = json.dumps({
        "patient1_study1": {**study, "key_image_path": "valid/patient1/study1/view1_frontal.png",
                            "report": "Findings: None. Impression: 1. NO ACUTE\nDISEASE.",
                            "section_findings": float("nan"), "section_impression": "\n1. NO ACUTE\nDISEASE.\n"},
        "patient2_study1": {**study, "key_image_path": "valid/patient2/study1/view1_frontal.png",
                            "section_findings": "\nLungs are clear.\n", "section_impression": "Normal chest."},
        "patient3_study1": {**study, "key_image_path": "valid/patient3/study1/view1_frontal.png",
                            "section_findings": None, "section_impression": " \n "},  # skipped, not an error
        "patient4_study1": {**study, "key_image_path": "valid/patient4/study1/view1_frontal.png",
                            "section_findings": "Effusion.", "section_impression": "Effusion."},  # bad: no image
    })
    assert "NaN" in text  # the ReXrank file writes NaN literals
    (folder / "test.json").write_text(text, encoding="utf-8")
    return Expect(2, "test.json", 4)


def build_mecovqa_g_plus(root: Path) -> Expect:
    folder = root / "mecovqa_g_plus"
    png(folder / "images" / "ct_00--AMOS2022--amos_0001--x_0020.png")
    png(folder / "masks" / "ct_00--AMOS2022--amos_0001--x_0020--liver.png", (255, 255, 255))
    png(folder / "images" / "der_00--ISIC--isic_1.png")
    png(folder / "masks" / "der_00--ISIC--isic_1--lesion.png", (255, 255, 255))
    write_json(folder / "MeCoVQA_Grounding_test.json", [
        {"id": "ct_00--AMOS2022--amos_0001--x_0020", "image": "images/ct_00--AMOS2022--amos_0001--x_0020.png",
         "conversations": [{"from": "human", "value": "<image>\nPlease segment the liver."},
                           {"from": "gpt", "value": "<SEG><mask>masks/ct_00--AMOS2022--amos_0001--x_0020--liver.png</mask>"}]},
        {"id": "der_00--ISIC--isic_1", "image": "images/der_00--ISIC--isic_1.png",
         "conversations": [{"from": "human", "value": "<image>\nWhere is the lesion?"},
                           {"from": "gpt", "value": "It is here."}]},  # bad: no <mask>
        {"id": "der_00--ISIC--isic_1", "image": "images/der_00--ISIC--isic_1.png",
         "conversations": [{"from": "human", "value": "<image>\nSegment the skin lesion."},
                           {"from": "gpt", "value": "<SEG><mask>masks/der_00--ISIC--isic_1--lesion.png</mask>"}]},
    ])
    return Expect(2, "MeCoVQA_Grounding_test.json", 2)


def build_medsegbench(root: Path) -> Expect:
    folder = root / "medsegbench"
    png(folder / "images" / "a.png")
    png(folder / "masks" / "a.png", (255, 255, 255))
    row = {"id": "seg-1", "images": ["images/a.png"], "masks": ["masks/a.png"],
           "conversations": [{"from": "human", "value": "<image>\nSegment the polyp."}, {"from": "gpt", "value": "[SEG]"}],
           "metadata": {"dataset": "Kvasir", "region": "Gastrointestinal Tract"}}
    write_json(folder / "medseg_bench_test_2571_ENG.json", [
        row, {**row, "id": "seg-2", "metadata": {"dataset": "Kvasir"}},  # bad: no region
    ])
    return Expect(1, "medseg_bench_test_2571_ENG.json", 2)


def build_medsam2_detection(root: Path) -> Expect:
    folder = root / "medsam2_detection"
    image = png(folder / "images" / "k.png")
    write_jsonl(folder / "evaluation_dataset_with_id.jsonl", [
        {"id": "det-1", "image": str(image), "sentence": "left kidney", "bbox": [10, 20, 110, 140], "width": 512,
         "height": 400},
        {"id": "det-2", "image": "images/k.png", "sentence": "liver", "bbox": [1, 2, 3], "width": 512, "height": 400},
        {"image": "images/k.png", "sentence": "spleen", "bbox": [0.5, 1, 30, 40.5], "width": 512, "height": 400},
    ])
    return Expect(2, "evaluation_dataset_with_id.jsonl", 2)


BUILDERS = {name: globals()[f"build_{name}"] for name in BENCHMARKS}

"""Benchmark loaders on tiny fixtures written in each public format.

Every fixture builder writes good rows plus exactly one bad row and returns what to expect:
the number of items, the file and row number of the bad row. Prompt strings are spelled out
literally (not rebuilt with ``citrusv.eval.prompts``).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from citrusv.eval.benchmarks import (
    BENCHMARKS,
    get_benchmark,
    load_benchmark,
    missing_files,
)
from citrusv.eval.types import FAMILIES

CHOICE_EN = "Answer with the option's letter from the given choices directly."
CHOICE_ZH = "请直接使用给定选项中的选项字母来回答该问题。"
CLOSED_EN = "Answer the question using a single word or phrase."
CLOSED_ZH = "请用一个单词或者短语回答该问题。"
JUDGE_EN = "Please output 'yes' or 'no'(no extra output)."
OPEN_EN = "Please answer the question concisely."
OPEN_ZH = "请简要回答该问题。"


from benchmark_fixtures import (  # noqa: E402
    png_bytes,
    BUILDERS,
    IMAGE_SIZE,
    LTR_ABN_Q,
    LTR_FULL_Q,
    build_chexpert_plus,
    build_cmmlu_medical,
    build_mecovqa_g_plus,
    build_medbullets_op4,
    build_medbullets_op5,
    build_meddocbench_gmd_complex,
    build_meddocbench_gmd_simple,
    build_meddocbench_ltr_abnormal,
    build_meddocbench_ltr_full,
    build_meddocbench_ltr_simple,
    build_medmcqa,
    build_medqa_mcmle,
    build_medqa_usmle,
    build_medsam2_detection,
    build_medsegbench,
    build_medxpertqa_mm,
    build_medxpertqa_text,
    build_path_vqa,
    build_pmc_vqa,
    build_pubmedqa,
    build_slake,
    build_supergpqa_medicine,
    build_vqa_rad,
    write_json,
)


def load(name: str, root: Path, **kwargs):
    errors: list[str] = []
    items = load_benchmark(name, root, errors=errors, image_cache_dir=root / "_cache", **kwargs)
    return items, errors


def by_id(items):
    return {item.id: item for item in items}


# --------------------------------------------------------------------------------------------
# registry


def test_registry_names_and_specs():
    assert list(BENCHMARKS) == [
        "vqa_rad", "slake", "path_vqa", "pmc_vqa", "medxpertqa_mm", "medxpertqa_text", "pubmedqa", "medmcqa",
        "medqa_usmle", "medqa_mcmle", "cmmlu_medical", "medbullets_op4", "medbullets_op5", "supergpqa_medicine",
        "meddocbench_ltr_full", "meddocbench_ltr_simple", "meddocbench_ltr_abnormal", "meddocbench_gmd_simple",
        "meddocbench_gmd_complex", "chexpert_plus", "mecovqa_g_plus", "medsegbench", "medsam2_detection"]
    for name, spec in BENCHMARKS.items():
        assert spec.name == name and spec.family in FAMILIES and spec.required_files and spec.title
    assert get_benchmark("medxpertqa_mm").title == "MedXpertQA-MM"
    assert get_benchmark("vqa_rad").capability == "medical_vqa"


def test_unknown_benchmark_lists_known_names():
    with pytest.raises(ValueError, match="known: vqa_rad, slake"):
        get_benchmark("vqa-rad")


@pytest.mark.parametrize("name", list(BENCHMARKS))
def test_missing_files_are_all_named(name, tmp_path):
    spec = get_benchmark(name)
    missing = missing_files(name, tmp_path)
    assert len(missing) == len(spec.required_files)
    with pytest.raises(FileNotFoundError) as info:
        load_benchmark(name, tmp_path)
    for entry in spec.required_files:
        assert str(tmp_path / spec.folder / entry.split("|")[0].rstrip("/")) in str(info.value)


def test_missing_single_file_is_named(tmp_path):
    build_pubmedqa(tmp_path)
    (tmp_path / "pubmedqa" / "ori_pqal.json").unlink()
    assert missing_files("pubmedqa", tmp_path) == [str(tmp_path / "pubmedqa" / "ori_pqal.json")]
    with pytest.raises(FileNotFoundError, match="ori_pqal.json"):
        load_benchmark("pubmedqa", tmp_path)


def test_missing_image_folder_is_named_unless_image_root_given(tmp_path):
    build_slake(tmp_path)
    images = tmp_path / "slake" / "imgs"
    images.rename(tmp_path / "elsewhere")
    with pytest.raises(FileNotFoundError, match="imgs"):
        load_benchmark("slake", tmp_path)
    items = load_benchmark("slake", tmp_path, image_root=tmp_path / "elsewhere", errors=[])
    assert len(items) == 5 and items[0].images[0].startswith(str((tmp_path / "elsewhere").resolve()))


# --------------------------------------------------------------------------------------------
# every benchmark: load, bad row, raise mode, limit, unique ids


@pytest.mark.parametrize("name", list(BENCHMARKS))
def test_fixture_loads_with_bad_row_reported(name, tmp_path):
    expect = BUILDERS[name](tmp_path)
    items, errors = load(name, tmp_path)
    spec = get_benchmark(name)
    assert len(items) == expect.n_items
    assert len({item.id for item in items}) == len(items)
    assert len(errors) == 1, errors
    assert errors[0].startswith(f"{tmp_path / spec.folder / expect.bad_file}, row {expect.bad_row}: ")
    for item in items:
        assert item.benchmark == name and item.family == spec.family and item.prompt
        for image in item.images:
            assert Path(image).is_absolute() and Path(image).is_file()
    # ids are stable: a second load gives the same ones
    assert [item.id for item in load(name, tmp_path)[0]] == [item.id for item in items]


@pytest.mark.parametrize("name", list(BENCHMARKS))
def test_bad_row_raises_without_error_list(name, tmp_path):
    expect = BUILDERS[name](tmp_path)
    with pytest.raises(ValueError, match=rf"row {expect.bad_row}: ") as info:
        load_benchmark(name, tmp_path, image_cache_dir=tmp_path / "_cache")
    assert Path(expect.bad_file).name in str(info.value)


@pytest.mark.parametrize("name", list(BENCHMARKS))
def test_limit(name, tmp_path):
    BUILDERS[name](tmp_path)
    items = load_benchmark(name, tmp_path, limit=1, errors=[], image_cache_dir=tmp_path / "_cache")
    assert len(items) == 1
    assert load_benchmark(name, tmp_path, limit=0, image_cache_dir=tmp_path / "_cache") == []


def test_bad_options(tmp_path):
    build_vqa_rad(tmp_path)
    with pytest.raises(ValueError, match="limit"):
        load_benchmark("vqa_rad", tmp_path, limit=-1)
    with pytest.raises(ValueError, match="bbox_format"):
        load_benchmark("vqa_rad", tmp_path, bbox_format="xyz")


# --------------------------------------------------------------------------------------------
# medical VQA


def test_vqa_rad(tmp_path):
    build_vqa_rad(tmp_path)
    items = by_id(load("vqa_rad", tmp_path)[0])
    assert list(items) == ["0", "1", "3"]
    assert items["0"].prompt == f"Is there a fracture?\n{JUDGE_EN}"
    assert items["0"].answer_type == "closed" and items["0"].answer == "yes"
    assert items["1"].prompt == f"Where is the lesion?\n{OPEN_EN}"
    assert items["1"].answer_type == "open" and items["1"].question == "Where is the lesion?"
    # VQA-RAD lower-cases the gold before the yes/no test; the raw gold is kept
    assert items["3"].prompt == f"Is the heart enlarged?\n{JUDGE_EN}" and items["3"].answer == "No"


def test_path_vqa_keeps_case_quirk_and_embedded_images(tmp_path):
    build_path_vqa(tmp_path)
    items = by_id(load("path_vqa", tmp_path)[0])
    assert items["0"].prompt == f"Is this tissue inflamed?\n{JUDGE_EN}"
    assert items["1"].prompt == f"Is this benign?\n{OPEN_EN}" and items["1"].answer_type == "open"
    assert Path(items["1"].images[0]).parent == tmp_path / "_cache"
    assert Image.open(items["1"].images[0]).size == IMAGE_SIZE
    strict = by_id(load("path_vqa", tmp_path, strict=True)[0])
    assert strict["1"].prompt == f"Is this benign?\n{JUDGE_EN}" and strict["1"].answer_type == "closed"


def test_parquet_needs_pyarrow(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "pyarrow", None)  # as if it were not installed
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    folder = tmp_path / "path_vqa"
    folder.mkdir()
    (folder / "test.parquet").write_bytes(b"PAR1")
    with pytest.raises(ImportError, match="pyarrow"):
        load_benchmark("path_vqa", tmp_path)


def test_hugging_face_parquet_with_embedded_images(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    folder = tmp_path / "vqa_rad" / "data"
    folder.mkdir(parents=True)
    rows = [{"image": {"bytes": png_bytes((10 * i, 0, 0)), "path": f"{i}.png"}, "question": f"Q{i}?",
             "answer": "yes" if i == 0 else "left lung"} for i in range(2)]
    pq.write_table(pa.Table.from_pylist(rows), folder / "test-00000-of-00001.parquet")
    items = load_benchmark("vqa_rad", tmp_path, image_cache_dir=tmp_path / "_cache")
    assert [i.answer for i in items] == ["yes", "left lung"]
    assert items[0].prompt == f"Q0?\n{JUDGE_EN}" and items[1].prompt == f"Q1?\n{OPEN_EN}"
    assert Image.open(items[1].images[0]).getpixel((0, 0)) == (10, 0, 0)


def test_slake_prompts_and_capitalised_yes_no_quirk(tmp_path):
    build_slake(tmp_path)
    items = by_id(load("slake", tmp_path)[0])
    assert list(items) == ["11934", "11938", "11944", "12000", "12002"]
    assert items["11934"].prompt == f"What modality is used?\n{OPEN_EN}"
    assert items["11934"].answer_type == "open" and items["11934"].language == "en"
    # "Yes" is capitalised: the fork's lower-case yes/no test never fires -> CLOSED prompt
    assert items["11938"].prompt == f"Does the picture contain liver?\n{CLOSED_EN}"
    assert items["11938"].answer == "Yes" and items["11938"].answer_type == "closed"
    assert items["11944"].prompt == f"Which is bigger, lung or liver?\n{CLOSED_EN}"
    assert items["12000"].prompt == f"图中主要器官是什么？\n{OPEN_ZH}" and items["12000"].language == "zh"
    assert items["12002"].prompt == f"图片中有肝脏吗？\n{CLOSED_ZH}"
    assert items["11934"].tags == {"modality": "CT", "region": "Lung", "content_type": "Organ"}
    strict = by_id(load("slake", tmp_path, strict=True)[0])
    assert strict["11938"].prompt == f"Does the picture contain liver?\n{JUDGE_EN}"
    assert strict["12002"].prompt == f"图片中有肝脏吗？\n{CLOSED_ZH}"  # 是/否 are never yes/no in the fork


def test_pmc_vqa(tmp_path):
    build_pmc_vqa(tmp_path)
    items = by_id(load("pmc_vqa", tmp_path)[0])
    assert list(items) == ["0", "2"]
    item = items["0"]
    assert item.options == {"A": " A:CT ", "B": " B:MRI", "C": " C:X-ray", "D": " D:PET"}
    assert item.prompt == f"Question: What imaging is shown?\nOptions:  A:CT \n B:MRI\n C:X-ray\n D:PET\n{CHOICE_EN}"
    assert item.answer == "B" and items["2"].answer == "A"


def test_medxpertqa_mm(tmp_path):
    build_medxpertqa_mm(tmp_path)
    items = by_id(load("medxpertqa_mm", tmp_path)[0])
    item = items["MM-1"]
    assert item.question == "What is seen?"  # the fork cuts the inline "Answer Choices:" list
    assert item.prompt == ("Question: What is seen?\nOptions: A. Fracture\nB. Tumor\nC. Infection\nD. Normal\n"
                           f"E. Cyst\n{CHOICE_EN}")
    assert item.options["E"] == "E. Cyst" and item.answer == "B" and len(item.images) == 2
    assert item.tags == {"medical_task": "Diagnosis", "body_system": "Skeletal", "question_type": "Reasoning"}


# --------------------------------------------------------------------------------------------
# text QA


def test_medxpertqa_text(tmp_path):
    build_medxpertqa_text(tmp_path)
    item = load("medxpertqa_text", tmp_path)[0][0]
    options = "\n".join(f"{chr(65 + i)}. opt{i}" for i in range(10))
    assert item.prompt == f"Question: A 40-year-old man...\nOptions: {options}\n{CHOICE_EN}"
    assert item.answer == "J" and item.images == [] and len(item.options) == 10


def test_pubmedqa(tmp_path):
    build_pubmedqa(tmp_path)
    items = by_id(load("pubmedqa", tmp_path)[0])
    assert items["100"].prompt == ("Context: Background one.\nResults two.\nQuestion: Does X cause Y?\n"
                                   f"Options: A.yes\nB.no\nC.maybe\n{CHOICE_EN}")
    assert items["100"].options == {"A": "A.yes", "B": "B.no", "C": "C.maybe"}
    assert items["100"].answer == "A" and items["200"].answer == "C"


def test_medmcqa_closed_suffix_quirk(tmp_path):
    build_medmcqa(tmp_path)
    items = by_id(load("medmcqa", tmp_path)[0])
    item = items["mc-1"]
    assert item.prompt == f"Question: Which is an artery?\nOptions: A. Aorta\nB. Vein\nC. Nerve\nD. Bone\n{CLOSED_EN}"
    assert item.answer == "A" and items["mc-3"].answer == "D"
    assert item.tags == {"subject": "Anatomy", "topic": "Thorax", "choice_type": "single"}
    strict = by_id(load("medmcqa", tmp_path, strict=True)[0])
    assert strict["mc-1"].prompt.endswith(f"D. Bone\n{CHOICE_EN}")


def test_medqa_usmle(tmp_path):
    build_medqa_usmle(tmp_path)
    item = load("medqa_usmle", tmp_path)[0][0]
    assert item.prompt == ("Question: A 23-year-old woman... Which is the best treatment?\nOptions: A. Ampicillin\n"
                           f"B. Ceftriaxone\nC. Doxycycline\nD. Azithromycin\n{CLOSED_EN}")
    assert item.answer == "B" and item.id == "0" and item.tags == {"meta_info": "step2&3"}


def test_medqa_mcmle(tmp_path):
    build_medqa_mcmle(tmp_path)
    item = load("medqa_mcmle", tmp_path)[0][0]
    assert item.prompt == f"问题： 治疗糖尿病的药物是\n选项： 阿司匹林\n青霉素\n胰岛素\n肝素\n地高辛\n{CLOSED_ZH}"
    assert item.options == {"A": "阿司匹林", "B": "青霉素", "C": "胰岛素", "D": "肝素", "E": "地高辛"}
    assert item.answer == "C" and item.language == "zh"
    strict = load("medqa_mcmle", tmp_path, strict=True)[0][0]
    assert strict.prompt.endswith(f"地高辛\n{CHOICE_ZH}")


def test_cmmlu_medical(tmp_path):
    build_cmmlu_medical(tmp_path)
    items = by_id(load("cmmlu_medical", tmp_path)[0])
    assert list(items)[:3] == ["anatomy-0", "anatomy-1", "clinical_knowledge-0"]
    item = items["anatomy-1"]
    assert item.prompt == f"问题： 人体最大的器官是\n选项： A.皮肤\nB.肝\nC.肺\nD.心\n{CHOICE_ZH}"
    assert item.answer == "A" and item.tags == {"subject": "anatomy"} and item.language == "zh"


def test_medbullets(tmp_path):
    build_medbullets_op4(tmp_path)
    build_medbullets_op5(tmp_path)
    op4 = load("medbullets_op4", tmp_path)[0][0]
    assert op4.prompt == ("Question: A 12-year-old boy... What is the next step?\nOptions: A.Observation\nB.Surgery\n"
                          f"C.Antibiotics\nD.Casting\n{CHOICE_EN}")
    assert op4.answer == "D"
    op5 = load("medbullets_op5", tmp_path)[0][0]
    assert op5.prompt == ("Question: A 65-year-old man... Most likely diagnosis?\nOptions: A.MI\nB.PE\nC.Dissection\n"
                          f"D.GERD\nE.Pericarditis\n{CHOICE_EN}")
    assert op5.options["E"] == "E.Pericarditis" and op5.answer == "B"


def test_supergpqa_medicine_filter(tmp_path):
    build_supergpqa_medicine(tmp_path)
    items = by_id(load("supergpqa_medicine", tmp_path)[0])
    assert list(items) == ["u1", "u3"]  # the Engineering row is filtered, not an error
    assert items["u1"].prompt == f"Question: Which vitamin?\nOptions: A.A1\nB.B12\nC.C\nD.D\n{CHOICE_EN}"
    assert items["u3"].answer == "F" and len(items["u3"].options) == 6
    assert items["u1"].tags == {"field": "Basic Medicine", "subfield": "Nutrition", "difficulty": "easy"}


# --------------------------------------------------------------------------------------------
# MedDocBench


def test_meddoc_full_parsing(tmp_path):
    build_meddocbench_ltr_full(tmp_path)
    items = by_id(load("meddocbench_ltr_full", tmp_path)[0])
    item = items["0"]
    assert item.prompt == LTR_FULL_Q and item.system_prompt == "你是医学文档解析专家" and item.language == "zh"
    assert item.answer == [{"entryname": "白细胞", "result": "5.2", "unit": "10^9/L", "reference": "3.5-9.5"},
                           {"entryname": "尿蛋白", "result": "-", "unit": "", "reference": "阴性"}]
    assert items["1"].answer == [{"entryname": "血糖", "result": "6.1", "unit": "mmol/L", "reference": "3.9-6.1"}]
    assert items["1"].extra["answer_raw"].startswith("| 检验项目")
    assert items["0"].images == items["1"].images  # same embedded bytes -> one extracted file


def test_meddoc_simple(tmp_path):
    build_meddocbench_ltr_simple(tmp_path)
    items = by_id(load("meddocbench_ltr_simple", tmp_path)[0])
    assert items["0"].prompt == "图中显示血糖的测量结果是多少？如果有单位请同时包含单位"
    assert items["0"].answer == "6.1 mmol/L"
    assert items["0"].extra["field"] == "result" and items["0"].extra["entryname"] == "血糖"
    assert items["1"].extra["field"] == "reference"


def test_meddoc_abnormal(tmp_path):
    build_meddocbench_ltr_abnormal(tmp_path)
    items = by_id(load("meddocbench_ltr_abnormal", tmp_path)[0])
    assert items["0"].prompt == LTR_ABN_Q and items["0"].answer == []
    assert items["1"].answer == [{"entryname": "谷丙转氨酶", "result": "88 U/L", "reference": "9-50", "status": "偏高"}]


def test_meddoc_general(tmp_path):
    build_meddocbench_gmd_simple(tmp_path)
    build_meddocbench_gmd_complex(tmp_path)
    simple = by_id(load("meddocbench_gmd_simple", tmp_path)[0])
    assert simple["0"].answer == "0.25g*24粒" and simple["0"].prompt == "该药品的规格是多少？"
    assert simple["0"].extra["doc_type"] == "Medication Packages" and simple["0"].tags["department"] == "药剂科"
    assert simple["0"].system_prompt == "你是医学文档解析专家"
    assert simple["2"].system_prompt == "你是影像科医生"
    complex_ = by_id(load("meddocbench_gmd_complex", tmp_path)[0])
    assert complex_["11"].images == complex_["10"].images
    assert complex_["12"].images == [str((tmp_path / "meddocbench" / "shared" / "c2.png").resolve())]


def test_meddoc_several_tables_is_an_error(tmp_path):
    build_meddocbench_gmd_simple(tmp_path)
    folder = tmp_path / "meddocbench" / "GMD_simpleQA"
    (folder / "other.tsv").write_text((folder / "GMD_simpleQA.tsv").read_text(encoding="utf-8"), encoding="utf-8")
    with pytest.raises(ValueError, match="several"):
        load_benchmark("meddocbench_gmd_simple", tmp_path)


# --------------------------------------------------------------------------------------------
# report, segmentation, detection


def test_chexpert_plus(tmp_path):
    build_chexpert_plus(tmp_path)
    items = by_id(load("chexpert_plus", tmp_path)[0])
    assert list(items) == ["patient1_study1", "patient2_study1"]  # patient3 has no text: skipped silently
    first = items["patient1_study1"]
    assert first.prompt == ("You are a helpful assistant. Please generate a report for the given images, including "
                            "both findings and impressions. Return the report in the following format: Findings: {} "
                            "Impression: {}.")
    assert first.answer == "findings:  impression:  1. no acute disease. ."
    assert first.extra["report_field"] == "findings: none. impression: 1. no acute disease."
    assert items["patient2_study1"].answer == "findings:  lungs are clear.  impression: normal chest.."
    assert first.tags == {"view": "Frontal", "projection": "AP"} and len(first.images) == 1


def test_mecovqa_g_plus(tmp_path):
    build_mecovqa_g_plus(tmp_path)
    items = by_id(load("mecovqa_g_plus", tmp_path)[0])
    item = items["ct_00--AMOS2022--amos_0001--x_0020"]
    assert item.prompt == "<image>\nPlease segment the liver."
    folder = (tmp_path / "mecovqa_g_plus").resolve()
    assert item.answer == str(folder / "masks" / "ct_00--AMOS2022--amos_0001--x_0020--liver.png")
    assert item.tags == {"modality": "CT", "dataset": "AMOS2022"}
    assert items["der_00--ISIC--isic_1"].tags["modality"] == "DER"


def test_medsegbench(tmp_path):
    build_medsegbench(tmp_path)
    item = load("medsegbench", tmp_path)[0][0]
    assert item.prompt == "<image>\nSegment the polyp." and item.family == "segmentation"
    assert item.tags == {"dataset": "Kvasir", "region": "Gastrointestinal Tract"}
    assert item.answer == str((tmp_path / "medsegbench" / "masks" / "a.png").resolve())


def test_medsam2_detection(tmp_path):
    build_medsam2_detection(tmp_path)
    items = by_id(load("medsam2_detection", tmp_path)[0])
    assert list(items) == ["det-1", "2"]
    item = items["det-1"]
    assert item.prompt == "<image>\nLocate the left kidney, output its bbox coordinates using JSON format."
    assert item.answer == [10.0, 20.0, 110.0, 140.0] and item.extra == {"width": 512, "height": 400}
    standard = load("medsam2_detection", tmp_path, bbox_format="standard")[0][0]
    assert standard.prompt == "<image>Please detect the left kidney in the given image using bounding box."


def test_duplicate_ids_get_a_suffix(tmp_path):
    build_medsegbench(tmp_path)
    path = tmp_path / "medsegbench" / "medseg_bench_test_2571_ENG.json"
    rows = json.loads(path.read_text())
    rows[1] = rows[0]
    write_json(path, rows)
    assert [item.id for item in load("medsegbench", tmp_path)[0]] == ["seg-1", "seg-1~2"]

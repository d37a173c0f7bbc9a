"""The benchmark registry and ``load_benchmark``.

Every benchmark lives in its own sub-folder of a data root (``--data-root``); ``docs/eval-data.md``
gives the layout, where to get the files, licences and expected row counts.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from ..prompts import DETECTION_TEMPLATES
from ..types import FAMILIES, EvalItem
from ._io import LoadContext, describe_missing, resolve_required
from .grounding import load_mecovqa_g_plus, load_medsam2_detection, load_medsegbench
from .meddoc import MEDDOC_SPLITS, load_meddocbench
from .report import load_chexpert_plus
from .text_qa import (
    CMMLU_MEDICAL_SUBJECTS,
    load_cmmlu_medical,
    load_medbullets,
    load_medmcqa,
    load_medqa_mcmle,
    load_medqa_usmle,
    load_pubmedqa,
    load_supergpqa_medicine,
)
from .vqa import load_medxpertqa, load_path_vqa, load_pmc_vqa, load_slake, load_vqa_rad

logger = logging.getLogger(__name__)

__all__ = ["BENCHMARKS", "CAPABILITIES", "BenchmarkSpec", "get_benchmark", "load_benchmark", "missing_files"]

#: Capability groups, in the order of the paper's tables.
CAPABILITIES = ("medical_vqa", "text_qa", "document", "report", "grounding")


@dataclass(frozen=True)
class BenchmarkSpec:
    """One benchmark of the suite.

    Attributes:
        name: registry key (``"vqa_rad"``).
        title: column title as in the paper's tables (``"VQA-RAD"``).
        capability: one of ``CAPABILITIES``.
        family: the ``EvalItem`` family (selects the scorer).
        folder: sub-folder of the data root.
        required_files: paths relative to ``folder`` that must exist. Globs are allowed, ``a|b``
            means either (the first alternative that exists is read), a trailing ``/`` means a
            folder.
        description: what the benchmark is and which subset is used.
        format: the on-disk format read.
        expected_rows: items of the full public release (``None`` where not pinned down).
    """

    name: str
    title: str
    capability: str
    family: str
    folder: str
    required_files: tuple[str, ...]
    description: str
    format: str = ""
    expected_rows: int | None = None

    def __post_init__(self) -> None:
        if self.capability not in CAPABILITIES:
            raise ValueError(f"{self.name}: capability {self.capability!r} not in {CAPABILITIES}")
        if self.family not in FAMILIES:
            raise ValueError(f"{self.name}: family {self.family!r} not in {FAMILIES}")


_HF_TEST = "test.jsonl|test.parquet|data/test-*.parquet"
_HF_VQA_FORMAT = ("Hugging Face test split exported to test.jsonl ({image, question, answer}, image paths "
                  "relative to the folder) or its Parquet file(s) (embedded image bytes; needs pyarrow)")

_SPECS = [
    BenchmarkSpec("vqa_rad", "VQA-RAD", "medical_vqa", "vqa", "vqa_rad", (_HF_TEST,),
                  "Radiology VQA (flaviagiammarino/vqa-rad, test): yes/no golds closed, the rest open.",
                  _HF_VQA_FORMAT, 451),
    BenchmarkSpec("slake", "SLAKE", "medical_vqa", "vqa", "slake", ("test.json", "imgs/"),
                  "SLAKE test, English and Chinese questions together (en 1061, zh 1033).",
                  "SLAKE 1.0 test.json (list) + imgs/xmlab*/source.jpg", 2094),
    BenchmarkSpec("path_vqa", "PathVQA", "medical_vqa", "vqa", "path_vqa", (_HF_TEST,),
                  "Pathology VQA (flaviagiammarino/path-vqa, test): yes/no golds closed, the rest open.",
                  _HF_VQA_FORMAT, 6719),
    BenchmarkSpec("pmc_vqa", "PMC-VQA", "medical_vqa", "mcq", "pmc_vqa", ("test_2.csv", "figures/"),
                  "PMC-VQA test_2 (cleaned test set), 4-option multiple choice on figures.",
                  "test_2.csv (index, Figure_path, Caption, Question, Choice A-D, Answer, split) + figures/", None),
    BenchmarkSpec("medxpertqa_mm", "MedXpertQA-MM", "medical_vqa", "mcq", "medxpertqa", ("MM/test.jsonl", "images/"),
                  "MedXpertQA multimodal test, 5 options, 1-6 images per question.",
                  "TsinghuaC3I/MedXpertQA MM/test.jsonl + images/ (from images.zip)", 2000),
    BenchmarkSpec("medxpertqa_text", "MedXpertQA-Text", "text_qa", "mcq", "medxpertqa", ("Text/test.jsonl",),
                  "MedXpertQA text test, 10 options.", "TsinghuaC3I/MedXpertQA Text/test.jsonl", 2450),
    BenchmarkSpec("pubmedqa", "PubMedQA", "text_qa", "mcq", "pubmedqa", ("ori_pqal.json", "test_ground_truth.json"),
                  "PubMedQA PQA-L official test (500 PMIDs), options yes / no / maybe.",
                  "pubmedqa/pubmedqa data/ori_pqal.json + data/test_ground_truth.json", 500),
    BenchmarkSpec("medmcqa", "MedMCQA", "text_qa", "mcq", "medmcqa",
                  ("validation.jsonl|validation.parquet|data/validation-*.parquet",),
                  "MedMCQA validation split (the usual test set; the official test has no answers).",
                  "openlifescienceai/medmcqa validation exported to JSONL (cop 0-3) or its Parquet file", 4183),
    BenchmarkSpec("medqa_usmle", "MedQA-USMLE", "text_qa", "mcq", "medqa_usmle",
                  ("phrases_no_exclude_test.jsonl|test.jsonl|test.parquet|data/test-*.parquet",),
                  "MedQA US 4-option test.",
                  "MedQA US/4_options phrases_no_exclude_test.jsonl (= GBaker/MedQA-USMLE-4-options test)", 1273),
    BenchmarkSpec("medqa_mcmle", "MedQA-MCMLE", "text_qa", "mcq", "medqa_mcmle",
                  ("test.jsonl|train.jsonl|test.parquet|data/train-*.parquet",),
                  "MedQA Mainland (Chinese) test, 5 options rendered without letters.",
                  "MedQA Mainland/test.jsonl (= shuyuej/MedQA-MCMLE-Benchmark)", 3426),
    BenchmarkSpec("cmmlu_medical", "CMMLU", "text_qa", "mcq", "cmmlu",
                  tuple(f"test/{subject}.csv" for subject in CMMLU_MEDICAL_SUBJECTS),
                  "CMMLU, the 7 medical subjects only (" + ", ".join(CMMLU_MEDICAL_SUBJECTS) + ").",
                  "haonan-li/CMMLU data/test/{subject}.csv (Question, A-D, Answer)", 1333),
    BenchmarkSpec("medbullets_op4", "Medbullets-op4", "text_qa", "mcq", "medbullets",
                  ("medbullets_op4.jsonl|medbullets_op4.csv|medbullets_op4.parquet",),
                  "Medbullets USMLE-style questions, 4 options.",
                  "export of tuenguyen/Medical-Eval-MedBullets_op4 (train) or the original medbullets_op4.csv", 308),
    BenchmarkSpec("medbullets_op5", "Medbullets-op5", "text_qa", "mcq", "medbullets",
                  ("medbullets_op5.jsonl|medbullets_op5.csv|medbullets_op5.parquet",),
                  "Medbullets USMLE-style questions, 5 options.",
                  "export of LangAGI-Lab/medbullets_op5 (train) or the original medbullets_op5.csv", 308),
    BenchmarkSpec("supergpqa_medicine", "SuperGPQA", "text_qa", "mcq", "supergpqa", ("SuperGPQA-all.jsonl",),
                  "SuperGPQA, rows with discipline == Medicine (up to 10 options).",
                  "m-a-p/SuperGPQA SuperGPQA-all.jsonl", 2755),
]

_MEDDOC_TEXT = {
    "ltr_full": ("LTR Full extract", "Laboratory test reports (hard): full table extraction, field F1.", 100),
    "ltr_simple": ("LTR Simple QA", "Laboratory test reports (hard): one result / reference value.", 200),
    "ltr_abnormal": ("LTR Complex QA", "Laboratory test reports (hard): list the abnormal items.", 100),
    "gmd_simple": ("GMD Simple QA", "All document categories (hard): simple questions, judge-scored.", 100),
    "gmd_complex": ("GMD Complex QA", "All document categories (hard): complex questions, judge-scored.", 100),
}
for _key, (_split, _family) in MEDDOC_SPLITS.items():
    _title, _description, _rows = _MEDDOC_TEXT[_key]
    _SPECS.append(BenchmarkSpec(
        f"meddocbench_{_key}", _title, "document", _family, "meddocbench", (f"{_split}/*.tsv|{_split}/*.parquet",),
        f"MedDocBench {_split}. {_description}",
        f"jdh-algo/MedDocBench {_split}: VLMEvalKit TSV (base64 image or image_path) or the Parquet file", _rows))

_SPECS += [
    BenchmarkSpec("chexpert_plus", "CheXpert Plus", "report", "report", "chexpert_plus",
                  ("test.json|ReXRank_CheXpertPlus.json", "images/"),
                  "CheXpert Plus report generation, ReXrank test studies (200; studies without findings and "
                  "impression are skipped); ROUGE-L, CIDEr, RaTEScore.",
                  "ReXrank JSON (study id -> key_image_path, section_findings, section_impression) + images/", None),
    BenchmarkSpec("mecovqa_g_plus", "MeCoVQA-G+", "grounding", "segmentation", "mecovqa_g_plus",
                  ("test.json|MeCoVQA*.json",),
                  "MeCoVQA-G+ referring segmentation (Dice, by modality: DER, CT, PET, X-RAY, END, MR, US, FP).",
                  "JSON list {id, image, conversations} (mask in <mask>...</mask>); paths relative to the "
                  "SA-Med2D-20M root (the folder, or image_root)", None),
    BenchmarkSpec("medsegbench", "MedSegBench", "grounding", "segmentation", "medsegbench",
                  ("medseg_bench_test_2571_ENG.json",),
                  "MedSegBench segmentation test (Dice overall, by dataset and region).",
                  "JSON list {id, images, masks, conversations, metadata{dataset, region}}", 2571),
    BenchmarkSpec("medsam2_detection", "MedSAM2 (eval)", "grounding", "detection", "medsam2_detection",
                  ("evaluation_dataset_with_id.jsonl",),
                  "Box grounding on the MedSAM2 evaluation set (Precision@1 at IoU >= 0.5).",
                  "JSONL {image, sentence, bbox [x1,y1,x2,y2] original pixels, width, height}", None),
]

#: Every benchmark by registry name, in table order.
BENCHMARKS: dict[str, BenchmarkSpec] = {spec.name: spec for spec in _SPECS}

_LOADERS: dict[str, Callable[[LoadContext], None]] = {
    "vqa_rad": load_vqa_rad,
    "slake": load_slake,
    "path_vqa": load_path_vqa,
    "pmc_vqa": load_pmc_vqa,
    "medxpertqa_mm": partial(load_medxpertqa, split="MM"),
    "medxpertqa_text": partial(load_medxpertqa, split="Text"),
    "pubmedqa": load_pubmedqa,
    "medmcqa": load_medmcqa,
    "medqa_usmle": load_medqa_usmle,
    "medqa_mcmle": load_medqa_mcmle,
    "cmmlu_medical": load_cmmlu_medical,
    "medbullets_op4": partial(load_medbullets, n_options=4),
    "medbullets_op5": partial(load_medbullets, n_options=5),
    "supergpqa_medicine": load_supergpqa_medicine,
    **{f"meddocbench_{key}": partial(load_meddocbench, key=key) for key in MEDDOC_SPLITS},
    "chexpert_plus": load_chexpert_plus,
    "mecovqa_g_plus": load_mecovqa_g_plus,
    "medsegbench": load_medsegbench,
    "medsam2_detection": load_medsam2_detection,
}
assert set(_LOADERS) == set(BENCHMARKS), "every registered benchmark needs a loader"


def get_benchmark(name: str) -> BenchmarkSpec:
    """The spec of ``name``.

    Raises:
        ValueError: unknown name (the message lists the known ones).
    """
    try:
        return BENCHMARKS[name]
    except KeyError:
        raise ValueError(f"unknown benchmark {name!r}; known: {', '.join(BENCHMARKS)}") from None


def missing_files(name: str, data_root: str | os.PathLike[str]) -> list[str]:
    """Required files of ``name`` that are absent under ``data_root`` (human-readable paths)."""
    spec = get_benchmark(name)
    folder = Path(data_root) / spec.folder
    return [describe_missing(folder, entry) for entry in spec.required_files
            if not resolve_required(folder, entry)[1]]


def load_benchmark(name: str, data_root: str | os.PathLike[str], *, limit: int | None = None,
                   errors: list[str] | None = None, strict: bool = False, bbox_format: str = "json",
                   image_root: str | os.PathLike[str] | None = None,
                   image_cache_dir: str | os.PathLike[str] | None = None) -> list[EvalItem]:
    """Load one benchmark from its public release files, with the reference prompts applied.

    Args:
        name: registry name (see ``BENCHMARKS``).
        data_root: folder holding one sub-folder per benchmark (``docs/eval-data.md``).
        limit: return at most this many items (the first ones in file order).
        errors: bad rows (missing field, bad option, missing image, …) are appended here as
            ``"{file}, row {n}: {reason}"`` and skipped. ``None`` raises on the first bad row.
        strict: fix the reference quirks instead of reproducing them: the yes/no test on the
            lower-cased gold (SLAKE "Yes"/"No" get the yes/no prompt), the option-letter
            instruction for MedMCQA and MedQA.
        bbox_format: detection prompt template, ``"json"`` (reference default) or ``"standard"``.
        image_root: resolve relative image / mask paths against this folder instead of the
            benchmark's default (e.g. the SA-Med2D-20M root for MeCoVQA-G+); required image
            folders (``imgs/``, ``images/``, ``figures/``) are then not checked.
        image_cache_dir: where images embedded in Parquet / TSV files are written (default
            ``<folder>/_extracted_images``).

    Returns:
        The items, ids unique and stable for the same files.

    Raises:
        ValueError: unknown benchmark or option, or a bad row when ``errors`` is ``None``.
        FileNotFoundError: required files are missing (the message names every one).
        ImportError: a Parquet file was selected and pyarrow is not installed.
    """
    spec = get_benchmark(name)
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise ValueError(f"limit must be a non-negative integer or None, got {limit!r}")
    if bbox_format not in DETECTION_TEMPLATES:
        raise ValueError(f"bbox_format must be one of {', '.join(DETECTION_TEMPLATES)}, got {bbox_format!r}")
    folder = Path(data_root) / spec.folder
    missing = [describe_missing(folder, entry) for entry in spec.required_files
               if not (image_root is not None and entry.endswith("/")) and not resolve_required(folder, entry)[1]]
    if missing:
        raise FileNotFoundError(f"{name}: missing required file(s): " + "; ".join(missing)
                                + " (see docs/eval-data.md)")
    ctx = LoadContext(
        benchmark=name, folder=folder, limit=limit, errors=errors, strict=strict,
        image_root=Path(image_root) if image_root is not None else None,
        image_cache_dir=Path(image_cache_dir) if image_cache_dir is not None else None, bbox_format=bbox_format,
    )
    errors_before = len(errors) if errors is not None else 0
    if limit != 0:
        _LOADERS[name](ctx)
    bad = (len(errors) - errors_before) if errors is not None else 0
    logger.info("%s: %d items loaded, %d bad rows skipped", name, len(ctx.items), bad)
    return ctx.items

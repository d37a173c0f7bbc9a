"""The document pipeline over folders: render -> normalize -> parse -> build-qa (what the CLI runs).

File layout (all paths in manifests are relative to the manifest's folder):

* ``render_corpus(out, ...)`` writes ``out/images/<id>.png`` (the capture), ``out/clean/<id>.png``
  (the upright page) and ``out/manifest.jsonl``: ``{"id", "kind" ("lab" / "general"), "language",
  "image", "clean_image", "doc" (the report or document, the ground truth), "artefacts"}``.
* ``normalize_corpus(manifest, out)`` writes ``out/<id>.png`` and ``out/geometry.jsonl`` (the
  steps per image) and, when the manifest has artefacts, returns orientation accuracy and skew
  residuals against them.
* ``parse_corpus(manifest, out, parser_a, parser_b, judge)`` writes ``out/consensus.jsonl``:
  lab reports through ``consensus`` (bucket, agreed entries, both agreements, geometry steps;
  hard documents' normalised image under ``out/normalized/``); general documents are normalised
  and, with ``general_qa`` given, questioned and answered (kept QA in ``"qa"``).
* ``build_qa(consensus, out_jsonl, meddoc_out)`` writes sample-schema rows (full parse, simple
  QA, abnormality QA; general QA) and optionally the MedDocBench export.

Each function takes ``progress(iterable, description, total)`` for progress bars (the CLI passes
tqdm) and returns counts read / kept / dropped.
"""

from __future__ import annotations

import json
import logging
import random
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from PIL import Image

from ...data.jsonl import JsonlAppender
from .artefacts import Artefacts, apply_artefacts, random_artefacts
from .consensus import EquivalenceJudge, OracleParser, TableParser, consensus
from .export import GeneralQAItem, LabDoc, export_meddocbench
from .geometry import normalize_page
from .qa import (
    _sample,
    abnormality_qa,
    full_parse_sample,
    simple_qa,
    template_general_qa,
)
from .render import (
    GeneralDocument,
    LabReport,
    random_general_document,
    random_lab_report,
    render_general_document,
    render_lab_report,
)

__all__ = ["build_qa", "normalize_corpus", "parse_corpus", "read_manifest", "render_corpus"]

logger = logging.getLogger(__name__)

Progress = Callable[[Iterable[Any], str, int], Iterable[Any]]


def _no_progress(items: Iterable[Any], description: str, total: int) -> Iterable[Any]:
    return items


def read_manifest(path: str | Path) -> Iterator[dict[str, Any]]:
    """Rows of a JSONL manifest, with ``image`` / ``clean_image`` resolved against its folder.

    Raises:
        ValueError: a line that is not a JSON object with ``id`` and ``image``.
    """
    path = Path(path)
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            row = json.loads(line)
            if not isinstance(row, dict) or "id" not in row or "image" not in row:
                raise ValueError(f"{path}:{number}: a manifest row needs 'id' and 'image'")
            for key in ("image", "clean_image", "normalized_image"):
                if row.get(key):
                    row[key] = str((path.parent / row[key]).resolve())
            yield row


def render_corpus(out: str | Path, n: int, *, kinds: tuple[str, ...] = ("lab",), languages: tuple[str, ...] = ("en", "zh"),
                  seed: int = 0, width: int = 900, artefacts: str = "random", max_skew_deg: float = 10.0,
                  progress: Progress = _no_progress) -> dict[str, int]:
    """Render ``n`` documents (kinds and languages round-robin) with random or no artefacts.

    Raises:
        ValueError: unknown kind or artefacts mode, or ``n`` < 1.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if set(kinds) - {"lab", "general"}:
        raise ValueError(f"kinds must be lab and/or general, got {kinds}")
    if artefacts not in ("random", "none", "rotate"):
        raise ValueError(f"artefacts must be random, rotate or none, got {artefacts!r}")
    out = Path(out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "clean").mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    counts: Counter[str] = Counter()
    with open(out / "manifest.jsonl", "w", encoding="utf-8") as manifest:
        for i in progress(range(n), "render", n):
            kind, language = kinds[i % len(kinds)], languages[(i // len(kinds)) % len(languages)]
            doc_id = f"{kind}{i:06d}"
            doc: LabReport | GeneralDocument
            if kind == "lab":
                doc = random_lab_report(rng, language, doc_id=doc_id)
                page = render_lab_report(doc, width=width, rng=rng)
            else:
                doc = random_general_document(rng, language, doc_id=doc_id)
                page = render_general_document(doc, width=width, rng=rng)
            if artefacts == "random":
                art = random_artefacts(rng, max_skew_deg=max_skew_deg)
            elif artefacts == "rotate":
                art = Artefacts(rotation=rng.choice((0, 90, 180, 270)), skew_deg=rng.uniform(-max_skew_deg, max_skew_deg))
            else:
                art = Artefacts()
            page.save(out / "clean" / f"{doc_id}.png")
            apply_artefacts(page, art).save(out / "images" / f"{doc_id}.png")
            manifest.write(json.dumps({"id": doc_id, "kind": kind, "language": language, "image": f"images/{doc_id}.png",
                                       "clean_image": f"clean/{doc_id}.png", "doc": doc.to_dict(),
                                       "artefacts": art.to_dict()}, ensure_ascii=False) + "\n")
            counts[kind] += 1
    return {"rendered": n, **counts}


def _inputs(source: str | Path) -> list[dict[str, Any]]:
    source = Path(source)
    if source.is_dir():
        suffixes = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}
        return [{"id": p.stem, "image": str(p)} for p in sorted(source.iterdir()) if p.suffix.lower() in suffixes]
    return list(read_manifest(source))


def normalize_corpus(source: str | Path, out: str | Path, *, progress: Progress = _no_progress) -> dict[str, Any]:
    """Normalise every image of a manifest or folder; with known artefacts, score the orientation."""
    rows = _inputs(source)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    correct = known = 0
    residuals: list[float] = []
    with open(out / "geometry.jsonl", "w", encoding="utf-8") as log:
        for row in progress(rows, "normalize", len(rows)):
            page = normalize_page(Image.open(row["image"]))
            page.image.save(out / f"{row['id']}.png")
            steps = page.report()
            log.write(json.dumps({"id": row["id"], "image": f"{row['id']}.png", "steps": steps}) + "\n")
            truth = row.get("artefacts")
            if truth and not truth.get("perspective"):
                found = next(s for s in steps if s["name"] == "orientation")["params"]
                known += 1
                correct += found["orientation"] == truth["rotation"]
                residuals.append(abs(found["skew_deg"] - truth["skew_deg"]))
    summary: dict[str, Any] = {"images": len(rows)}
    if known:
        summary.update(orientation_accuracy=correct / known, scored=known,
                       max_skew_residual_deg=max(residuals), mean_skew_residual_deg=sum(residuals) / known)
    return summary


def parse_corpus(manifest: str | Path, out: str | Path, parser_a: TableParser | None, parser_b: TableParser | None, *,
                 judge: EquivalenceJudge | None = None,
                 general_qa: Callable[[Image.Image, str], list[dict[str, Any]]] | None = None,
                 progress: Progress = _no_progress) -> dict[str, int]:
    """Dual-parse every lab report of ``manifest`` (``parser_a`` / ``parser_b`` ``None``: oracle
    parsers reading the manifest's truth) and question the general documents; writes
    ``out/consensus.jsonl`` (resumable: ids already there are skipped)."""
    rows = list(read_manifest(manifest))
    out = Path(out)
    (out / "normalized").mkdir(parents=True, exist_ok=True)
    counts: Counter[str] = Counter()
    with JsonlAppender(out / "consensus.jsonl") as sink:
        done = set(sink.done_ids)
        for row in progress(rows, "parse", len(rows)):
            if row["id"] in done:
                counts["skipped"] += 1
                continue
            image = Image.open(row["image"]).convert("RGB")
            kind = row.get("kind", "lab")
            record: dict[str, Any] = {"id": row["id"], "kind": kind, "language": row.get("language", "zh"),
                                      "image": row["image"]}
            if kind == "lab":
                a, b = parser_a, parser_b
                if a is None or b is None:
                    truth = [{k: e[k] for k in ("entryname", "result", "unit", "reference")} for e in row["doc"]["entries"]]
                    a = b = OracleParser(lambda _image, truth=truth: truth)
                result = consensus(image, a, b, judge=judge)
                record.update(result.to_dict())
                if result.bucket == "hard" and result.image is not None:
                    path = out / "normalized" / f"{row['id']}.png"
                    result.image.save(path)
                    record["normalized_image"] = str(path.resolve())
                counts[result.bucket] += 1
            else:
                page = normalize_page(image)
                path = out / "normalized" / f"{row['id']}.png"
                page.image.save(path)
                doc_type = row.get("doc", {}).get("doc_type", "document")
                if general_qa is not None:
                    qa = general_qa(page.image, doc_type)
                elif row.get("doc"):  # oracle: questions from the rendered truth
                    qa = template_general_qa(GeneralDocument(**row["doc"]))
                else:
                    qa = []
                    counts["general_without_qa"] += 1
                record.update(bucket="general", geometry=page.report(), normalized_image=str(path.resolve()),
                              doc_type=doc_type, department=row.get("doc", {}).get("department", ""), qa=qa)
                counts["general"] += 1
            sink.write(record)
    return {"documents": len(rows), **counts}


def build_qa(consensus_path: str | Path, out_jsonl: str | Path, *, meddoc_out: str | Path | None = None,
             seed: int = 0, simple_per_doc: int = 3, compare_per_doc: int = 2,
             progress: Progress = _no_progress) -> dict[str, int]:
    """Sample-schema QA rows from ``consensus.jsonl`` (rejected documents are dropped), plus the
    MedDocBench export when ``meddoc_out`` is given. Image paths in the rows are absolute."""
    rows = list(read_manifest(consensus_path))
    rng = random.Random(seed)
    counts: Counter[str] = Counter()
    lab_docs: list[LabDoc] = []
    general: list[GeneralQAItem] = []
    Path(out_jsonl).parent.mkdir(parents=True, exist_ok=True)
    with open(out_jsonl, "w", encoding="utf-8") as sink:
        for row in progress(rows, "build-qa", len(rows)):
            bucket = row.get("bucket")
            if bucket == "rejected":
                counts["rejected"] += 1
                continue
            image = row.get("normalized_image") or row["image"]
            language = row.get("language", "zh")
            samples: list[dict[str, Any]]
            if row.get("kind", "lab") == "lab":
                entries = row["entries"]
                samples = [full_parse_sample(row["id"], image, entries, bucket=bucket, language=language),
                           *simple_qa(row["id"], image, entries, rng, per_doc=simple_per_doc, bucket=bucket,
                                      language=language),
                           *abnormality_qa(row["id"], image, entries, rng, per_doc=compare_per_doc, bucket=bucket,
                                           language=language)]
                lab_docs.append(LabDoc(row["id"], Path(image), entries, bucket))
            else:
                samples = []
                for k, qa in enumerate(row.get("qa", [])):
                    samples.append(_sample(f"{row['id']}--{qa['kind']}{k}", image, qa["question"], qa["answer"],
                                           {"doc_task": f"general_{qa['kind']}_qa", "language": language,
                                            "doc_type": row.get("doc_type", "")}))
                    general.append(GeneralQAItem(row["id"], Path(image), qa["kind"], qa["question"], qa["answer"],
                                                 row.get("doc_type", ""), row.get("department", "")))
            sink.writelines(json.dumps(sample, ensure_ascii=False) + "\n" for sample in samples)
            counts["samples"] += len(samples)
            counts[f"docs_{bucket}"] += 1
    result = dict(counts)
    if meddoc_out is not None:
        result.update({f"meddoc_{k}": v for k, v in export_meddocbench(meddoc_out, lab_docs, general, seed=seed).items()})
    return result

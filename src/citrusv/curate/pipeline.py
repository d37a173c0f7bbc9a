"""The curation pipeline: sources → shards → stages in worker processes → deduplication in the main
process (in shard order) → atomically written shards, committed by a manifest line.

Output folder::

    shards/<shard>.jsonl    kept rows
    dropped/<shard>.jsonl   one line per dropped row: id, source, stage, reason, detail
    audit/<shard>.jsonl     DICOM de-identification audit, one line per file
    state/<shard>.npz       the shard's kept rows as the deduplication index needs them (ids, hashes)
    state/<shard>.sig.npy   their MinHash signatures (memory-mapped to verify candidates)
    dicom/                  de-identified DICOM files (<study>/<series>/<sop>.dcm)
    manifest.jsonl          one line per committed shard, with its counts
    run.json                the configuration of the run (a resume must use the same one)
    report.json / report.md / *.png   statistics (``report.write_report``)
    private/deid.key        the de-identification secret (default location; do not share)

Resume: a shard is done when its manifest line exists; every file it needs is written (atomically)
before that line is appended and fsynced, so a killed run restarts after the last committed shard,
rebuilds the deduplication index from ``state/`` of committed shards, and produces the same output
as an uninterrupted run: no row lost, none duplicated.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import pickle
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._fileio import atomic_write_bytes
from .config import CurationConfig
from .dedup import Deduplicator, fingerprints
from .sources import SchemaStage, ShardSpec, plan_shards, read_shard, strip_internal
from .stage import Drop, Row, RowStage, Stage

__all__ = ["FingerprintStage", "ShardResult", "TextDeidStage", "build_stages", "run_curation"]

logger = logging.getLogger(__name__)


class TextDeidStage(RowStage):
    """Scrubs PHI from every message with ``citrusv.curate.phi.scrub_phi`` (never drops); counts of
    replaced spans per kind go to ``row["_phi"]``."""

    name = "text_deid"

    def check(self, row: Row) -> tuple[str, str] | None:
        from .phi import scrub_phi

        counts: Counter[str] = Counter()
        for message in row.get("messages", []):
            text, spans = scrub_phi(message.get("content", ""))
            message["content"] = text
            counts.update(getattr(span, "kind", "phi") for span in spans)
        if counts:
            row["_phi"] = dict(counts)
        return None


class FingerprintStage(Stage):
    """Computes each row's deduplication ``Fingerprint`` (text MinHash, image pHashes) into ``_fp``;
    signatures for the whole shard at once. A row whose image cannot be read is dropped."""

    name = "fingerprint"

    def __init__(self, config):
        self.config = config

    def process(self, rows: list[Row]) -> tuple[list[Row], list[Drop]]:
        from .phash import phash_file

        kept, hashes, dropped = [], [], []
        for row in rows:
            row_hashes = []
            for i, path in enumerate(row.get("images", [])):
                try:
                    row_hashes.append(phash_file(path))
                except (OSError, ValueError) as err:
                    dropped.append(Drop(row, self.name, "image_unreadable", f"images[{i}]: {type(err).__name__}"))
                    break
            else:
                kept.append(row)
                hashes.append(row_hashes)
        for row, fp in zip(kept, fingerprints(kept, self.config, hashes)):
            row["_fp"] = fp
        return kept, dropped


def build_stages(config: CurationConfig, out_dir: str | Path) -> list[Stage]:
    """The worker-side stages of ``config``, in order."""
    from .filters import (
        ImageSizeFilter,
        RegexFilter,
        TextLengthFilter,
        load_token_counter,
    )

    stages: list[Stage] = [SchemaStage(), ImageSizeFilter(config.filters.min_image_pixels),
                           TextLengthFilter(config.filters.min_tokens, config.filters.max_tokens,
                                            load_token_counter(config.filters.tokenizer))]
    if config.filters.regex_rules:
        stages.append(RegexFilter(config.filters.regex_rules))
    if config.llm_deid is not None:
        from ..enhance.deid import DialogueDeidentifier
        from .llm_deid import LLMDeidStage

        deidentifier = DialogueDeidentifier(config.llm_deid.client(), prompt_version=config.llm_deid.prompt_version)
        stages.append(LLMDeidStage(deidentifier, config.llm_deid.only_with_phi))
    if config.text_deid:
        stages.append(TextDeidStage())
    from .deid_dicom import DeidKeys
    from .dicom_stage import DicomSeriesStage

    keys = None
    if config.dicom_deid:
        keys = DeidKeys.load_or_create(config.deid_secret_file or Path(out_dir) / "private" / "deid.key")
    stages.append(DicomSeriesStage(config.dicom_qc, Path(out_dir) / "dicom" if keys else None, keys, config.deid))
    if config.tagging.enabled:
        from .tagging import RuleTagger, TaggingStage

        stages.append(TaggingStage(RuleTagger(config.tagging.extra_rules, config.tagging.overwrite)))
        if config.tagging.modality_model:
            from .modality_classifier import ModalityClassifier, ModalityClassifierStage

            stages.append(ModalityClassifierStage(ModalityClassifier.load(config.tagging.modality_model),
                                                  config.tagging.modality_min_confidence))
        llm = config.tagging.llm
        if llm is not None:
            from .llm_tagging import LLMTagger, LLMTaggingStage

            stages.append(LLMTaggingStage(LLMTagger(llm.client(), tuple(llm.kinds)), llm.overwrite))
    if config.dedup.enabled:
        stages.append(FingerprintStage(config.dedup))
    return stages


@dataclass
class ShardResult:
    """What the stages made of one shard (before deduplication)."""

    name: str
    rows_in: int
    kept: list[Row]
    dropped: list[dict[str, Any]]


def _run_stages(stages: list[Stage], name: str, rows: list[Row]) -> ShardResult:
    rows_in = len(rows)
    dropped: list[Drop] = []
    for stage in stages:
        rows, out = stage.process(rows)
        dropped.extend(out)
    return ShardResult(name, rows_in, rows, [d.record() for d in dropped])


_WORKER: dict[str, Any] = {}  # per worker process: its stages, built once by _init_worker


def _init_worker(config_dict: dict[str, Any], out_dir: str) -> None:
    _WORKER["stages"] = build_stages(CurationConfig.from_dict(config_dict), out_dir)


def _work(spec: ShardSpec) -> ShardResult:
    """One shard in a worker process: the worker reads the rows itself, so only the small spec and
    the result cross the process boundary and the driver never holds a shard's input."""
    return _run_stages(_WORKER["stages"], spec.name, read_shard(spec))


class _RayShardWorker:
    """The callable class of the Ray Data ``map``: each actor of the pool builds the stages once
    (tokenizer, models, de-identification keys) and then reads and processes the shards it is given.

    The result travels pickled (one ``bytes`` column) because its rows are free-form nested dicts
    that Arrow would otherwise try to unify into one schema across shards.
    """

    def __init__(self, config_dict: dict[str, Any], out_dir: str):
        self.stages = build_stages(CurationConfig.from_dict(config_dict), out_dir)

    def __call__(self, item: dict[str, Any]) -> dict[str, Any]:
        spec: ShardSpec = pickle.loads(item["spec"])
        result = _run_stages(self.stages, spec.name, read_shard(spec))
        return {"name": spec.name, "result": pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL)}


def _run_on_ray(config: CurationConfig, out: Path, todo: Iterable[ShardSpec],
                commit: Callable[[ShardResult], bool]) -> None:
    """The shards of ``todo`` through Ray Data: a dataset of shard specs mapped by an actor pool of
    ``config.workers`` ``_RayShardWorker`` s, results streamed back in shard order (``preserve_order``)
    and committed here, in the driver. ``RAY_ADDRESS`` joins a cluster (whose workers must see the
    sources and ``out`` at the same paths), else a local Ray instance is started and stopped again.
    """
    try:
        import ray
        import ray.data
    except ImportError as err:
        raise ImportError("--engine ray needs Ray Data (pip install 'citrusv[ray]')") from err
    # from_items takes a list; specs are a few hundred bytes each (no rows), so the plan fits
    items = [{"spec": pickle.dumps(spec, protocol=pickle.HIGHEST_PROTOCOL)} for spec in todo]
    if not items:
        return
    started = not ray.is_initialized()
    if started:
        address = os.environ.get("RAY_ADDRESS")
        ray.init(address=address, num_cpus=None if address else max(config.workers, 1), include_dashboard=False,
                 log_to_driver=False)
    context = ray.data.DataContext.get_current()
    preserve_order = context.execution_options.preserve_order
    context.execution_options.preserve_order = True  # commits (and deduplication) must see shards in order
    try:
        dataset = ray.data.from_items(items, override_num_blocks=len(items)).map(  # a block per shard: even spread
            _RayShardWorker, fn_constructor_kwargs={"config_dict": config.to_dict(), "out_dir": str(out)},
            # no more actors than shards: an actor without input would only build its stages
            compute=ray.data.ActorPoolStrategy(size=min(max(config.workers, 1), len(items))), num_cpus=1)
        results = iter(dataset.iter_rows())
        try:
            for row in results:
                if commit(pickle.loads(row["result"])):
                    return
        finally:  # stopping early or failing: end the execution, so its actors free their CPUs
            close = getattr(results, "close", None)
            if close is not None:
                close()
    finally:
        context.execution_options.preserve_order = preserve_order
        if started:
            ray.shutdown()


def _atomic_write_lines(path: Path, lines: list[dict[str, Any]]) -> None:
    atomic_write_bytes(path, "".join(json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n"
                                     for line in lines).encode("utf-8"))


def read_manifest(out_dir: str | Path) -> list[dict[str, Any]]:
    """Committed shard entries in commit order; a partial last line (a crash mid-append) is ignored."""
    path = Path(out_dir) / "manifest.jsonl"
    if not path.exists():
        return []
    entries = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            entries.append(json.loads(line))
        except json.JSONDecodeError:
            break
    return entries


def _append_manifest(out_dir: Path, entry: dict[str, Any]) -> None:
    path = out_dir / "manifest.jsonl"
    if path.exists():  # drop a partial trailing line left by a crash
        data = path.read_bytes()
        end = data.rfind(b"\n") + 1
        if end < len(data):
            with open(path, "r+b") as handle:
                handle.truncate(end)
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(entry, separators=(",", ":")) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def _check_run_config(out_dir: Path, config: CurationConfig) -> None:
    settings = {k: v for k, v in config.to_dict().items() if k not in ("workers", "engine")}
    path = out_dir / "run.json"
    if path.exists():
        previous = json.loads(path.read_text(encoding="utf-8"))
        if previous != json.loads(json.dumps(settings)):
            changed = sorted(k for k in set(previous) | set(settings) if previous.get(k) != json.loads(json.dumps(settings.get(k))))
            raise ValueError(f"{out_dir} holds a run with different settings ({', '.join(changed)}); "
                             "use a new output folder or the same config to resume")
    else:
        atomic_write_bytes(path, json.dumps(settings, indent=2).encode())


def _commit(out_dir: Path, dedup: Deduplicator | None, result: ShardResult) -> dict[str, Any]:
    kept, dropped, audits = [], list(result.dropped), []
    fps = [row.pop("_fp", None) for row in result.kept]
    checked = [i for i, fp in enumerate(fps) if fp is not None] if dedup is not None else []
    verdicts = dict(zip(checked, dedup.process([str(result.kept[i]["id"]) for i in checked],
                                               [fps[i] for i in checked]))) if dedup is not None else {}
    for i, row in enumerate(result.kept):
        verdict = verdicts.get(i)
        if verdict is not None:
            dropped.append(Drop(row, "dedup", verdict[0], f"duplicate_of={verdict[1]}").record())
        else:
            kept.append(row)
    tags: dict[str, Counter[str]] = {}
    phi: Counter[str] = Counter()
    llm_untagged = sum(row.get("_llm_untagged", 0) for row in kept)
    llm_rewritten = sum(row.get("_llm_deid", 0) for row in kept)
    for row in kept:
        for kind, values in (row.get("tags") or {}).items():
            tags.setdefault(kind, Counter()).update(values)
        phi.update(row.get("_phi", {}))
        audits.extend(row.get("_audit", []))
    reasons: dict[str, Counter[str]] = {}
    for record in dropped:
        reasons.setdefault(record["stage"], Counter())[record["reason"]] += 1
    _atomic_write_lines(out_dir / "shards" / f"{result.name}.jsonl", [strip_internal(r) for r in kept])
    _atomic_write_lines(out_dir / "dropped" / f"{result.name}.jsonl", dropped)
    if audits:
        _atomic_write_lines(out_dir / "audit" / f"{result.name}.jsonl", audits)
    if dedup is not None:
        dedup.save_state(out_dir / "state" / f"{result.name}.npz")
    entry = {"shard": result.name, "rows_in": result.rows_in, "kept": len(kept), "dropped": len(dropped),
             "reasons": {s: dict(c) for s, c in reasons.items()}, "tags": {k: dict(c) for k, c in tags.items()},
             "phi": dict(phi), "dicom_files": len(audits), "llm_untagged": llm_untagged, "llm_rewritten": llm_rewritten, "time": time.time()}
    _append_manifest(out_dir, entry)
    return entry


def run_curation(config: CurationConfig, out_dir: str | Path, max_shards: int | None = None,
                 on_commit: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Run (or resume) the pipeline into ``out_dir`` and write the report.

    Args:
        config: the run's settings (a resume must use the same ones, ``workers`` and ``engine`` aside).
        out_dir: output folder (see the module docstring).
        max_shards: stop after committing this many new shards (the run can be resumed).
        on_commit: called with each manifest entry after it is committed (progress display).

    Returns:
        The report's totals (``report.summarize``).

    Raises:
        ValueError: ``out_dir`` holds a run with different settings, or a bad config.
    """
    from .report import write_report

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _check_run_config(out, config)
    if config.dicom_deid:  # create the secret once, before workers start
        from .deid_dicom import DeidKeys

        DeidKeys.load_or_create(config.deid_secret_file or out / "private" / "deid.key")
    done = read_manifest(out)
    done_names = {e["shard"] for e in done}
    dedup = Deduplicator(config.dedup) if config.dedup.enabled else None
    if dedup is not None:
        dedup.load_state([out / "state" / f"{entry['shard']}.npz" for entry in done])
    if done:
        logger.info("resuming: %d shard(s) already committed, %d deduplication keys restored", len(done), len(dedup or []))
    # workers read their own shards: only the plan (shard locations) is made here, and no more of it
    # than max_shards, so a run told to stop reads no shard it will not commit (``commit`` stops after
    # the first shard even for max_shards <= 0, hence at least 1)
    todo: Iterator[ShardSpec] = (spec for spec in plan_shards(config.sources, config.shard_size)
                                 if spec.name not in done_names)
    if max_shards is not None:
        todo = itertools.islice(todo, max(max_shards, 1))
    committed = 0

    def commit(result: ShardResult) -> bool:
        nonlocal committed
        entry = _commit(out, dedup, result)
        committed += 1
        logger.info("shard %s: %d in, %d kept, %d dropped", entry["shard"], entry["rows_in"], entry["kept"], entry["dropped"])
        if on_commit is not None:
            on_commit(entry)
        return max_shards is not None and committed >= max_shards

    if config.engine == "ray":
        _run_on_ray(config, out, todo, commit)
    elif config.workers == 0:
        stages = build_stages(config, out)
        for spec in todo:
            if commit(_run_stages(stages, spec.name, read_shard(spec))):
                break
    else:
        import multiprocessing

        context = multiprocessing.get_context("spawn")
        window: list[Future[ShardResult]] = []
        with ProcessPoolExecutor(config.workers, mp_context=context, initializer=_init_worker,
                                 initargs=(config.to_dict(), str(out))) as pool:
            try:
                stop = False
                for spec in todo:
                    window.append(pool.submit(_work, spec))
                    if len(window) >= 2 * config.workers and commit(window.pop(0).result()):
                        stop = True
                        break
                while window and not stop:
                    if commit(window.pop(0).result()):
                        break
            finally:  # stopping early or failing: queued shards are not started
                for future in window:
                    future.cancel()
    return write_report(out, charts=config.charts)

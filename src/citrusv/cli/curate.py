"""``citrusv curate``: run the curation pipeline, rebuild its report, check or de-identify DICOM."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "curate", help="curate raw sources into clean shards (filters, dedup, DICOM QC / de-id, tags, report)",
        description="Curation pipeline. Settings come from configs/curate/default.yaml (or --config); "
                    "any field can be overridden with --set key=value.")
    sub = parser.add_subparsers(dest="curate_command", required=True, metavar="ACTION")

    run = sub.add_parser("run", help="run or resume the pipeline into --out")
    run.add_argument("config_file", type=Path, nargs="?", default=None, metavar="CONFIG.yaml",
                     help="YAML CurationConfig (same as --config)")
    run.add_argument("--config", type=Path, default=None, help="YAML CurationConfig (default: built-in defaults)")
    run.add_argument("--source", action="append", default=[], metavar="PATH",
                     help="JSONL / Parquet file, image folder or DICOM folder (repeatable; adds to the config's)")
    run.add_argument("--out", type=Path, required=True, help="output folder (a rerun resumes it)")
    run.add_argument("--workers", type=int, default=None, help="worker processes (0: in-process)")
    run.add_argument("--shard-size", type=int, default=None)
    run.add_argument("--engine", choices=["local", "ray"], default=None,
                     help="local processes (default) or Ray actors (RAY_ADDRESS joins a cluster)")
    run.add_argument("--max-shards", type=int, default=None, help="stop after this many new shards (resumable)")
    run.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                     help="override a config field, e.g. --set dedup.text_threshold=0.9 (repeatable)")
    run.set_defaults(run=_run)

    report = sub.add_parser("report", help="rewrite report.json / report.md / charts of an output folder")
    report.add_argument("out", type=Path)
    report.add_argument("--no-charts", action="store_true")
    report.set_defaults(run=_report)

    qc = sub.add_parser("dicom-qc", aliases=["qc-dicom"], help="check the series in a DICOM folder; prints one JSON line per series")
    qc.add_argument("folder", type=Path)
    qc.set_defaults(run=_dicom_qc)

    train = sub.add_parser("train-modality", help="train the small modality classifier on tagged image rows")
    train.add_argument("--data", type=Path, nargs="+", required=True, help="JSONL files whose rows have images and a modality tag")
    train.add_argument("--out", type=Path, required=True, help="model file (.npz) for tagging.modality_model")
    train.set_defaults(run=_train_modality)

    deid = sub.add_parser("dicom-deid", aliases=["deid-dicom"], help="de-identify every DICOM file under a folder (PS3.15 Basic Profile)")
    deid.add_argument("folder", type=Path)
    deid.add_argument("out", type=Path)
    deid.add_argument("--secret-file", type=Path, required=True, help="hex secret (created if absent); keep it private")
    deid.add_argument("--keep-burned-in", action="store_true", help="write files with BurnedInAnnotation=YES too")
    deid.set_defaults(run=_dicom_deid)


def _run(args: argparse.Namespace) -> int:
    import yaml

    from ..curate.config import load_config
    from ..curate.pipeline import run_curation
    from ._common import show_progress

    overrides = {}
    for item in args.set:
        if "=" not in item:
            raise ValueError(f"--set expects KEY=VALUE, got {item!r}")
        key, raw = item.split("=", 1)
        overrides[key.strip()] = yaml.safe_load(raw)
    for flag, key in (("workers", "workers"), ("shard_size", "shard_size"), ("engine", "engine")):
        if getattr(args, flag) is not None:
            overrides[key] = getattr(args, flag)
    if args.config_file is not None and args.config is not None and args.config_file != args.config:
        raise ValueError(f"two configs given: {args.config_file} and --config {args.config}")
    config = load_config(args.config_file or args.config, overrides)
    if args.source:
        from ..curate.sources import SourceSpec

        config.sources = list(config.sources) + [SourceSpec(str(p)) for p in args.source]
    if not config.sources:
        raise ValueError("no sources: pass --source or list them in the config")
    verbose = show_progress()

    def progress(entry: dict) -> None:
        if verbose:
            print(f"\r{entry['shard']}: {entry['kept']}/{entry['rows_in']} kept", end="", file=sys.stderr)

    summary = run_curation(config, args.out, max_shards=args.max_shards, on_commit=progress)
    if verbose:
        print(file=sys.stderr)
    print(f"{summary['rows_in']} rows in, {summary['kept']} kept, {summary['dropped']} dropped "
          f"({summary['shards']} shards); report: {args.out / 'report.md'}")
    return 0


def _report(args: argparse.Namespace) -> int:
    from ..curate.report import write_report

    if not (args.out / "manifest.jsonl").exists():
        raise FileNotFoundError(f"{args.out / 'manifest.jsonl'} not found: not a curation output folder")
    summary = write_report(args.out, charts=not args.no_charts)
    print(f"{summary['rows_in']} rows in, {summary['kept']} kept; wrote {args.out / 'report.md'}")
    return 0


def _dicom_qc(args: argparse.Namespace) -> int:
    import os

    from ..curate.dicom_qc import check_series
    from ..curate.dicom_stage import read_headers

    if not args.folder.is_dir():
        raise FileNotFoundError(f"{args.folder} is not a folder")
    rejected = 0
    for folder, dirs, files in os.walk(args.folder):
        dirs.sort()
        groups, _ = read_headers([str(Path(folder) / f) for f in sorted(files)])
        for uid, members in sorted(groups.items()):
            result = check_series([ds for _, ds in members])
            rejected += not result.accepted
            print(json.dumps({"folder": str(Path(folder).relative_to(args.folder)), "files": len(members),
                              "accepted": result.accepted, "reasons": result.reasons, "warnings": result.warnings,
                              "metrics": result.metrics}))
    return 1 if rejected else 0


def _train_modality(args: argparse.Namespace) -> int:
    from ..curate.modality_classifier import train_from_rows
    from ..data.jsonl import iter_samples

    rows = [sample.resolve_paths(path.parent).to_dict() for path in args.data for sample in iter_samples(path)]
    model = train_from_rows(rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    model.save(args.out)
    print(f"trained on {len(rows)} rows, classes {model.labels}; saved {args.out}")
    return 0


def _dicom_deid(args: argparse.Namespace) -> int:
    import os

    import pydicom
    from pydicom.errors import InvalidDicomError

    from ..curate.deid_dicom import DeidConfig, DeidKeys, deidentify_file

    keys = DeidKeys.load_or_create(args.secret_file)
    config = DeidConfig(drop_burned_in=not args.keep_burned_in)
    args.out.mkdir(parents=True, exist_ok=True)
    written = skipped = 0
    with open(args.out / "audit.jsonl", "a", encoding="utf-8") as audit_log:
        for folder, dirs, files in os.walk(args.folder):
            dirs.sort()
            for name in sorted(files):
                path = Path(folder) / name
                try:
                    pydicom.dcmread(path, stop_before_pixels=True)
                except (InvalidDicomError, OSError, ValueError, EOFError):
                    skipped += 1
                    continue
                audit = deidentify_file(path, args.out, keys, config)
                written += audit["output"] is not None
                audit_log.write(json.dumps(audit) + "\n")
    print(f"{written} file(s) de-identified into {args.out}, {skipped} non-DICOM skipped; audit: {args.out / 'audit.jsonl'}")
    return 0

"""``citrusv eval``: run benchmarks on our model or an endpoint, re-score predictions, write tables."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ._common import add_runtime_args, show_progress


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("eval", help="evaluate on the paper's benchmarks (scored like the reference evaluators)",
                                 description="Evaluate on the paper's benchmarks. Scoring follows the reference "
                                             "evaluators, bugs included; --strict fixes the documented bugs. "
                                             "See docs/evaluation.md and docs/eval-data.md.")
    sub = parser.add_subparsers(dest="eval_command", required=True, metavar="ACTION")

    run = sub.add_parser("run", help="answer benchmarks, score them, write tables")
    source = run.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", help="our checkpoint folder (native or released layout)")
    source.add_argument("--endpoint", help="OpenAI-compatible API root, e.g. http://host:8000/v1")
    run.add_argument("--served-model", help="model name at the endpoint (required with --endpoint)")
    run.add_argument("--api-key", default=None, help="endpoint key (default: $OPENAI_API_KEY)")
    run.add_argument("--name", default=None, help="model name in tables (default: folder or served name)")
    run.add_argument("--benchmarks", default="all",
                     help="comma-separated benchmark names or capabilities (medical_vqa, text_qa, document, "
                          "report, grounding), or 'all'; see `citrusv eval list`")
    run.add_argument("--data-root", type=Path, required=True, help="folder holding one sub-folder per benchmark")
    run.add_argument("--out", type=Path, required=True, help="output folder (predictions, scores, tables)")
    run.add_argument("--limit", type=int, default=None, help="first N items of each benchmark (smoke runs)")
    run.add_argument("--batch-size", type=int, default=8, help="items per model batch / concurrent requests")
    run.add_argument("--max-new-tokens", type=int, default=None,
                     help="override the reference token budget (8192; detection 512; segmentation 1024)")
    run.add_argument("--concurrency", type=int, default=8, help="concurrent endpoint requests")
    run.add_argument("--cache", type=Path, default=None, help="disk cache for endpoint answers")
    add_runtime_args(run)
    _add_scoring_args(run)
    run.set_defaults(run=_run)

    score = sub.add_parser("score", help="score a predictions JSONL offline")
    score.add_argument("--benchmark", required=True, help="registry name (see `citrusv eval list`)")
    score.add_argument("--predictions", type=Path, required=True,
                       help="JSONL rows with id, question, options, answer, prediction (+ family fields)")
    score.add_argument("--output", type=Path, required=True, help="OUT.json: overall 0-100 and per-row scores")
    score.add_argument("--model-name", default=None, help="model name recorded in OUT.json")
    _add_scoring_args(score)
    score.set_defaults(run=_score)

    report = sub.add_parser("report", help="rebuild the tables and charts from every *.score.json under a folder")
    report.add_argument("--out", type=Path, required=True, help="the folder of `eval run` (tables go to OUT/tables)")
    report.set_defaults(run=_report)

    listing = sub.add_parser("list", help="list benchmarks; with --data-root, check their files")
    listing.add_argument("--data-root", type=Path, default=None)
    listing.set_defaults(run=_list)


def _add_scoring_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("scoring")
    group.add_argument("--strict", action="store_true", help="fix the reference evaluators' documented bugs")
    group.add_argument("--judge-endpoint", default=None,
                       help="OpenAI-compatible API root of the LLM judge (open VQA, SLAKE, MedDocBench); "
                            "without it open VQA is scored by exact match and marked non-comparable")
    group.add_argument("--judge-model", default="gpt-4.1", help="judge model (reference: gpt-4.1)")
    group.add_argument("--judge-temperature", type=float, default=0.5, help="judge temperature (reference: 0.5)")
    group.add_argument("--judge-api-key", default=None, help="judge key (default: $OPENAI_API_KEY)")
    group.add_argument("--judge-cache", type=Path, default=None,
                       help="folder caching judge verdicts (default: <out>/judge-cache or next to --output)")
    group.add_argument("--cider-df", default="auto",
                       help="CIDEr document frequencies: the path of cidereval's coco-val.p (the reference's), "
                            "'coco-val' (from an installed cidereval), 'corpus', or 'auto' (coco-val when "
                            "installed, else corpus, marked not comparable)")
    group.add_argument("--ratescore-models", nargs=2, metavar=("NER_DIR", "BIOLORD_DIR"), default=None,
                       help="local RaTE-NER-Deberta and BioLORD-2023-C folders; RaTEScore is skipped without them")
    group.add_argument("--matching", choices=["greedy", "hungarian"], default="greedy",
                       help="MedDocBench entry matching (reference: greedy)")


def _options(args: argparse.Namespace, cache_default: Path):
    from ..eval.scoring import ScoringOptions

    judge = None
    if args.judge_endpoint:
        from ..eval.judge import make_llm_judge

        judge = make_llm_judge(args.judge_endpoint, args.judge_model, temperature=args.judge_temperature,
                               api_key=args.judge_api_key, cache_dir=args.judge_cache or cache_default)
    ratescore = None
    if args.ratescore_models:
        from ..eval.metrics.report import RaTEScorer

        ratescore = RaTEScorer(*args.ratescore_models)
    return ScoringOptions(judge=judge, strict=args.strict, cider_df=args.cider_df, ratescore=ratescore,
                          matching=args.matching)


def _run(args: argparse.Namespace) -> int:
    from ..eval.runner import EndpointAnswerer, PipelineAnswerer
    from ..eval.suite import evaluate, select_benchmarks

    benchmarks = select_benchmarks(args.benchmarks)
    if not args.data_root.is_dir():
        raise FileNotFoundError(f"--data-root {args.data_root} is not a folder")
    options = _options(args, args.out / "judge-cache")
    if args.endpoint:
        if not args.served_model:
            raise ValueError("--endpoint needs --served-model (the model name the server expects)")
        from ..llm import LLMClient

        client = LLMClient(args.endpoint, args.served_model, api_key=args.api_key, max_concurrency=args.concurrency,
                           cache_dir=args.cache)
        answerer = EndpointAnswerer(client, name=args.name or args.served_model, max_new_tokens=args.max_new_tokens)
    else:
        from ..inference import CitrusVPipeline

        pipeline = CitrusVPipeline.from_pretrained(args.model, device=args.device, dtype=args.dtype,
                                                   min_pixels=args.min_pixels, max_pixels=args.max_pixels,
                                                   progress=show_progress())
        answerer = PipelineAnswerer(pipeline, name=args.name or Path(args.model).name,
                                    max_new_tokens=args.max_new_tokens)
    result = evaluate(answerer, benchmarks, args.data_root, args.out, options=options, limit=args.limit,
                      batch_size=args.batch_size, strict_load=args.strict, progress=show_progress())
    for name, missing in result.missing.items():
        print(f"skipped {name}: missing {', '.join(missing)}", file=sys.stderr)
    for score in result.scores:
        mark = "" if score.comparable else "  (not comparable: " + "; ".join(score.notes) + ")"
        value = "     –" if score.score is None else f"{score.score:6.2f}"
        print(f"{score.title:<28} {score.metric:<14} {value}  n={score.count}{mark}")
    if result.tables:
        print(f"tables: {args.out / 'tables'}")
    return 0 if result.scores else 1


def _score(args: argparse.Namespace) -> int:
    from ..eval.suite import rescore

    if not args.predictions.is_file():
        raise FileNotFoundError(f"--predictions {args.predictions} does not exist")
    options = _options(args, args.output.parent / "judge-cache")
    score = rescore(args.benchmark, args.predictions, args.output, options=options, model=args.model_name)
    print(json.dumps({"benchmark": score.benchmark, "metric": score.metric,
                      "score": None if score.score is None else round(score.score, 4),
                      "metrics": score.metrics, "count": score.count, "errors": len(score.errors),
                      "comparable": score.comparable}, ensure_ascii=False))
    for error in score.errors[:20]:
        print(f"warning: {error}", file=sys.stderr)
    return 0


def _report(args: argparse.Namespace) -> int:
    from ..eval.report import write_reports
    from ..eval.results import load_scores

    scores = load_scores(args.out)
    if not scores:
        raise FileNotFoundError(f"no *.score.json under {args.out}")
    written = write_reports(scores, args.out / "tables")
    print(f"wrote {len(written)} file(s) to {args.out / 'tables'}")
    return 0


def _list(args: argparse.Namespace) -> int:
    from ..eval.benchmarks import BENCHMARKS, missing_files

    for name, spec in BENCHMARKS.items():
        line = f"{name:<28} {spec.capability:<12} {spec.family:<16} {spec.title}"
        if args.data_root is not None:
            missing = missing_files(name, args.data_root)
            line += "  ok" if not missing else f"  MISSING: {', '.join(missing)}"
        print(line)
    return 0

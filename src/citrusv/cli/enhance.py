"""``citrusv enhance consolidate | reason | deid-dialogue IN OUT``: model-based data enhancement."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", type=Path, metavar="IN", help="JSONL in the sample schema")
    parser.add_argument("output", type=Path, metavar="OUT",
                        help="JSONL of kept rows; OUT's stem + .dropped.jsonl / .summary.json / .usage.jsonl beside it")
    parser.add_argument("--endpoint", required=True, help="OpenAI-compatible base URL, e.g. http://host:8000/v1")
    parser.add_argument("--model", required=True, help="model name at the endpoint")
    parser.add_argument("--judge-model", default=None, help="judge model at the same endpoint (default: --model)")
    parser.add_argument("--api-key-env", default="OPENAI_API_KEY",
                        help="environment variable holding the API key (empty: send none)")
    parser.add_argument("--cache-dir", type=Path, default=None, help="LLM response cache (default: OUT's folder/llm_cache)")
    parser.add_argument("--no-cache", action="store_true", help="do not cache LLM answers")
    parser.add_argument("--workers", type=int, default=4, help="rows processed concurrently")
    parser.add_argument("--requests-per-minute", type=float, default=None, help="rate limit per model")
    parser.add_argument("--max-retries", type=int, default=5)
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per HTTP request")
    parser.add_argument("--temperature", type=float, default=0.0)
    parser.add_argument("--prompt-dir", type=Path, default=None, help="prompt folder (default configs/prompts/enhance)")


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "enhance", help="improve existing data with LLMs / VLMs (consolidate, reason, deid-dialogue)",
        description="Model-based enhancement (paper §3.1.2, §3.2.1). Resumable: rows already in OUT or in its "
                    ".dropped.jsonl are skipped on rerun.")
    sub = parser.add_subparsers(dest="enhance_command", required=True, metavar="STEP")
    consolidate = sub.add_parser("consolidate", help="merge short questions about one image into holistic ones")
    _common(consolidate)
    consolidate.add_argument("--min-questions", type=int, default=2, help="short QA pairs an image needs")
    consolidate.add_argument("--max-short-words", type=int, default=5, help="answers up to this long are short")
    consolidate.add_argument("--max-merge-words", type=int, default=60,
                             help="longer answers up to this long are merged too (checked by the judge)")
    consolidate.add_argument("--max-questions", type=int, default=3, help="holistic questions per image")
    reason = sub.add_parser("reason", help="synthesize verified visual-reasoning QA (<think>/<answer>)")
    _common(reason)
    reason.add_argument("--answer-model", default=None, help="answering model (default: --model)")
    reason.add_argument("--formats", default="mcq,tf,short,open", help="comma-separated: mcq, tf, short, open")
    reason.add_argument("--tasks", default=None, help="comma-separated task tags to use (default: all)")
    reason.add_argument("--max-response-words", type=int, default=30)
    reason.add_argument("--min-difficulty", type=int, default=1, help="0-3 (see question_difficulty)")
    deid = sub.add_parser("deid-dialogue", help="rewrite dialogues without personal information")
    _common(deid)
    for step in (consolidate, reason, deid):
        step.set_defaults(run=run)


def _client(args: argparse.Namespace, model: str):
    from ..llm import LLMClient

    out_dir = args.output.parent
    cache = None if args.no_cache else (args.cache_dir or out_dir / "llm_cache")
    stem = args.output.name.removesuffix(".jsonl")
    return LLMClient(args.endpoint, model, api_key=os.environ.get(args.api_key_env, "") if args.api_key_env else "",
                     timeout=args.timeout, max_retries=args.max_retries, requests_per_minute=args.requests_per_minute,
                     max_concurrency=max(1, args.workers), cache_dir=cache, usage_log=out_dir / f"{stem}.usage.jsonl")


def run(args: argparse.Namespace) -> int:
    from ..data.jsonl import read_samples
    from ..enhance import (
        ConsolidateConfig,
        Consolidator,
        DialogueDeidentifier,
        ReasonConfig,
        ReasoningSynthesizer,
        group_by_image,
        output_paths,
        run_units,
        select_candidates,
        select_dialogues,
    )

    if not args.input.exists():
        raise FileNotFoundError(f"no input file {args.input}")
    if args.workers < 1:
        raise ValueError(f"--workers must be >= 1, got {args.workers}")
    samples = read_samples(args.input)
    root, out_dir = args.input.resolve().parent, args.output.resolve().parent
    out_dir.mkdir(parents=True, exist_ok=True)
    model = _client(args, args.model)
    clients = [model]
    judge = model if args.judge_model in (None, args.model) else _client(args, args.judge_model)
    clients.append(judge)
    step = args.enhance_command
    if step == "consolidate":
        config = ConsolidateConfig(min_questions=args.min_questions, max_short_words=args.max_short_words,
                                   max_merge_words=args.max_merge_words, max_questions=args.max_questions,
                                   temperature=args.temperature)
        units, skipped = group_by_image(samples, root, config)
        process = Consolidator(model, out_dir, judge=judge, config=config, prompt_root=args.prompt_dir)
    elif step == "reason":
        answerer = model if args.answer_model in (None, args.model) else _client(args, args.answer_model)
        clients.append(answerer)
        config = ReasonConfig(formats=tuple(f.strip() for f in args.formats.split(",") if f.strip()),
                              tasks=tuple(t.strip() for t in args.tasks.split(",")) if args.tasks else None,
                              max_response_words=args.max_response_words, min_difficulty=args.min_difficulty,
                              temperature=args.temperature)
        units, skipped = select_candidates(samples, config)
        process = ReasoningSynthesizer(model, root, out_dir, answerer=answerer, judge=judge, config=config,
                                       prompt_root=args.prompt_dir)
    else:
        units, skipped = select_dialogues(samples)
        process = DialogueDeidentifier(model, root=root, out_dir=out_dir, temperature=args.temperature,
                                       prompt_root=args.prompt_dir)
    unique = {id(c): c for c in clients}.values()
    try:
        summary = run_units(step, units, process, args.output, workers=args.workers, progress=sys.stderr.isatty(),
                            not_candidates=skipped,
                            usage=lambda: {c.model: c.usage.to_dict() for c in unique})
    finally:
        for client in unique:
            client.close()
    print(summary)
    _, dropped_path, summary_path = output_paths(args.output)
    print(f"wrote {args.output} (+ {dropped_path.name}, {summary_path.name}); "
          f"usage: {json.dumps({m: u['calls'] for m, u in summary.usage.items()})} calls")
    return 0

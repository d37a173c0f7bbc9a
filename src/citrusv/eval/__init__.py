"""Evaluation: metrics (pure functions), benchmark loaders, runners, judges, tables and plots.

Scoring follows the reference evaluators recorded in ``docs/evaluation.md`` (JD Health's
MedEvalKit fork and MedDocBench scorers, the Citrus-V ``eval/`` scripts), including their bugs;
``strict=True`` fixes each documented bug.
"""

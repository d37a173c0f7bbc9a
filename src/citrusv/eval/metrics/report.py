"""Report-generation metrics (CheXpert Plus): ROUGE-L, CIDEr, RaTEScore.

Scored like the reference evaluator, JD Health's MedEvalKit fork (``jdh-algo/JoyMed``,
``evaluation/MedEvalKit_local``), see ``docs/evaluation.md`` section 4:

* text preparation: :func:`prepare_report_prediction` (model output) and
  :func:`format_report_reference` (gold report);
* ROUGE-L: :func:`rouge_l`, the pltrdy ``rouge`` 1.0.1 package's summary-level ROUGE-L F;
* CIDEr: :func:`cider_scores` / :func:`cider` (in :mod:`citrusv.eval.metrics.report_cider`),
  ``cidereval``'s plain CIDEr with COCO-val IDF by default;
* RaTEScore: :class:`RaTEScorer`, optional, with two local model directories;
* all of it over a benchmark: :func:`score_reports` -> :class:`ReportScores` (0-100 scale).
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from citrusv.eval.metrics._ptb import PTB_PUNCTUATION, cider_tokenize, ptb_tokenize
from citrusv.eval.metrics.report_cider import (
    COCO_VAL_DF,
    CiderDF,
    DocumentFrequency,
    _cider_from_tokens,
    cider,
    cider_scores,
    resolve_document_frequency,
)

__all__ = [
    "COCO_VAL_DF",
    "JD_MAX_PREDICTION_CHARS",
    "PTB_PUNCTUATION",
    "CiderDF",
    "DocumentFrequency",
    "RaTEScorer",
    "ReportScores",
    "cider",
    "cider_scores",
    "cider_tokenize",
    "format_report_reference",
    "is_empty_report",
    "prepare_report_prediction",
    "ptb_tokenize",
    "resolve_document_frequency",
    "rouge_l",
    "score_reports",
]

logger = logging.getLogger(__name__)

#: The JD fork truncates the hypothesis to this many characters before ROUGE (a workaround for
#: the recursion limit of the ``rouge`` package's LCS); :func:`score_reports` does the same.
JD_MAX_PREDICTION_CHARS = 2048

#: Closing tags of reasoning blocks; the JD fork keeps only the text after the last one.
_THINK_END_TAGS = ("</think>", "</Thought>", "</Thoughts>")
_ANSWER_RE = re.compile(r"<answer>(.*?)</answer>")


# ---------------------------------------------------------------------------------------------
# Text preparation
# ---------------------------------------------------------------------------------------------


def prepare_report_prediction(text: str) -> str:
    """Turn a model output into the report text that the JD fork scores.

    Steps, in the reference's order: keep what follows the last ``</think>`` (then
    ``</Thought>``, ``</Thoughts>``; case-sensitive, stripped); newlines -> spaces; lower-case;
    the content of the first ``<answer>...</answer>`` if there is one, else the whole text;
    strip surrounding whitespace.

    Args:
        text: raw model output.

    Returns:
        The prepared prediction; may be empty (see :func:`is_empty_report`).

    Raises:
        TypeError: ``text`` is not a string.

    Example:
        >>> prepare_report_prediction("<think>hmm</think><answer>Lungs clear.\\nNo effusion.</answer>")
        'lungs clear. no effusion.'
    """
    if not isinstance(text, str):
        raise TypeError(f"a prediction must be a string, got {type(text).__name__}")
    for tag in _THINK_END_TAGS:
        if tag in text:
            text = text.split(tag)[-1].strip()
    text = text.replace("\n", " ").lower()
    match = _ANSWER_RE.search(text)
    return match.group(1).strip() if match else text.strip()


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return type(value).__name__ in ("NAType", "NaTType")  # pandas.NA / NaT without importing pandas


def format_report_reference(findings: str | float | None, impression: str | float | None) -> str:
    """The JD fork's gold report: ``"Findings: {findings} Impression: {impression}."``.

    Missing sections (``None``, NaN, ``pandas.NA``) become empty strings (the text is not
    stripped and an empty findings section stays empty, not "None"); newlines become spaces and
    the result is lower-cased. A study with both sections empty is skipped by the reference
    loader, not here.

    Raises:
        TypeError: a section is neither a string nor missing.

    Example:
        >>> format_report_reference(float("nan"), "No acute\\nprocess")
        'findings:  impression: no acute process.'
    """
    parts = []
    for name, value in (("findings", findings), ("impression", impression)):
        if _is_missing(value):
            value = ""
        if not isinstance(value, str):
            raise TypeError(f"{name} must be a string or missing, got {type(value).__name__}")
        parts.append(value)
    return f"Findings: {parts[0]} Impression: {parts[1]}.".replace("\n", " ").lower()


def is_empty_report(prepared: str) -> bool:
    """True when a prepared prediction has no ROUGE sentence: empty or only ``"."`` characters.

    These are exactly the predictions that the JD fork skips (``""``) or crashes on (``"   "``,
    ``"\\n"``, ``"..."``, ``"<answer></answer>"`` after :func:`prepare_report_prediction`).
    """
    return not prepared.strip().replace(".", "")


# ---------------------------------------------------------------------------------------------
# ROUGE-L (pltrdy rouge 1.0.1)
# ---------------------------------------------------------------------------------------------


def _rouge_sentences(text: str) -> list[list[str]]:
    """``rouge``'s split: on every "."; each piece whitespace-normalised, then split on " "."""
    sentences = [" ".join(piece.split()) for piece in text.split(".") if len(piece) > 0]
    return [s.split(" ") for s in sentences]


def _lcs_tokens(x: Sequence[str], y: Sequence[str]) -> set[str]:
    """Tokens of the LCS of ``x`` and ``y`` that ``rouge``'s backtrack reconstructs.

    Same table and tie-break as the package (diagonal on a match, else up when the upper cell is
    strictly larger, else left), but built and walked with loops instead of recursion.
    """
    if not set(x) & set(y):
        return set()
    rows, cols = len(x), len(y)
    table = [[0] * (cols + 1) for _ in range(rows + 1)]
    for i in range(1, rows + 1):
        xi, prev, cur = x[i - 1], table[i - 1], table[i]
        for j in range(1, cols + 1):
            if xi == y[j - 1]:
                cur[j] = prev[j - 1] + 1
            else:
                up, left = prev[j], cur[j - 1]
                cur[j] = max(left, up)
    out: set[str] = set()
    i, j = rows, cols
    while i > 0 and j > 0:
        if x[i - 1] == y[j - 1]:
            out.add(x[i - 1])
            i, j = i - 1, j - 1
        elif table[i - 1][j] > table[i][j - 1]:
            i -= 1
        else:
            j -= 1
    return out


def rouge_l(prediction: str, reference: str, *, max_prediction_chars: int | None = None) -> float:
    """ROUGE-L F of ``prediction`` against ``reference``, as pltrdy ``rouge`` 1.0.1 computes it.

    Equal to ``Rouge().get_scores(prediction, reference)[0]["rouge-l"]["f"]``:

    * both texts are split into "sentences" on every ``"."``; each sentence is
      whitespace-normalised and split into words on ``" "``; no other punctuation is removed
      ("normal," keeps its comma), no stemming, case-sensitive;
    * summary level: the LCS of every reference sentence with every prediction sentence is
      reconstructed, and ``llcs`` is the number of *distinct* words in the union of all of them;
    * ``m`` / ``n`` are the numbers of *distinct* words of reference / prediction (the package's
      set-based n-grams), ``R = llcs / m``, ``P = llcs / n``, ``F = 2PR / (P + R + 1e-8)``.

    The LCS is computed iteratively, so long texts need no recursion-limit workaround.

    Args:
        prediction: hypothesis text (already prepared, e.g. by :func:`prepare_report_prediction`).
        reference: reference text.
        max_prediction_chars: cut the prediction to this many characters first (the JD fork
            uses :data:`JD_MAX_PREDICTION_CHARS`); ``None`` (default) keeps it whole, as the
            package does.

    Returns:
        F in [0, 1]. When either text has no sentence (empty or only ``"."``), where the package
        raises ``ValueError``, the score is 0.

    Example:
        >>> round(rouge_l("the heart is normal. no effusion.", "heart is normal. no effusion."), 6)
        0.909091
    """
    if max_prediction_chars is not None:
        if max_prediction_chars < 0:
            raise ValueError(f"max_prediction_chars must be >= 0, got {max_prediction_chars}")
        prediction = prediction[:max_prediction_chars]
    hyp = _rouge_sentences(prediction)
    ref = _rouge_sentences(reference)
    if not hyp or not ref:
        return 0.0
    m = len({w for s in ref for w in s})
    n = len({w for s in hyp for w in s})
    union: set[str] = set()
    for ref_sentence in ref:
        for hyp_sentence in hyp:
            union |= _lcs_tokens(ref_sentence, hyp_sentence)
    llcs = len(union)
    r_lcs = llcs / m
    p_lcs = llcs / n
    return 2.0 * ((p_lcs * r_lcs) / (p_lcs + r_lcs + 1e-8))


# ---------------------------------------------------------------------------------------------
# RaTEScore (optional)
# ---------------------------------------------------------------------------------------------

_RATE_MODELS = (
    ("ner_model_dir", "RaTE-NER-Deberta", "Angelakeke/RaTE-NER-Deberta"),
    ("embedding_model_dir", "BioLORD-2023-C", "FremyCompany/BioLORD-2023-C"),
)


def _load_ratescore_class() -> type:
    """Import ``RaTEScore.RaTEScore`` (PyPI ``ratescore``); kept separate so tests can replace it."""
    try:
        from RaTEScore import RaTEScore  # type: ignore[import-not-found]
    except ImportError as exc:
        raise ImportError(
            "RaTEScore needs the optional package `ratescore` (PyPI ratescore==0.6.0, import name "
            "RaTEScore) and the dependencies it does not declare: torch, transformers, pandas and "
            "medspacy. Install them with `pip install ratescore==0.6.0 medspacy pandas`; "
            f"the import failed with: {exc}"
        ) from exc
    return RaTEScore


class RaTEScorer:
    """RaTEScore (``ratescore`` package) on two local model directories, never the network.

    The reference evaluators call ``RaTEScore(bert_model=<RaTE-NER-Deberta dir>,
    eval_model=<BioLORD-2023-C dir>).compute_score(predictions, references)`` and average the
    per-report scores. RaTEScore splits reports into sentences (medspacy), tags five entity
    types with the DeBERTa NER model, embeds entities with BioLORD and returns a type-weighted
    F1 with a negation weight. Note its degenerate case: **a report pair in which either side
    has no entity scores 0.5**, not 0 (so an empty prediction would get 0.5; :func:`score_reports`
    does not send empty predictions).

    Args:
        ner_model_dir: local copy of Hugging Face ``Angelakeke/RaTE-NER-Deberta``.
        embedding_model_dir: local copy of ``FremyCompany/BioLORD-2023-C``.
        device: ``"cpu"`` or ``"cuda"`` (RaTEScore knows only these two).
        batch_size: NER batch size.

    Raises:
        FileNotFoundError: a model directory (or its ``config.json``) is missing; the message
            names each one and how to get it.
        ImportError: the ``ratescore`` package (or one of its dependencies) cannot be imported.
        ValueError: unknown ``device``.
    """

    def __init__(
        self,
        ner_model_dir: str | os.PathLike[str],
        embedding_model_dir: str | os.PathLike[str],
        *,
        device: str = "cpu",
        batch_size: int = 1,
    ) -> None:
        if device not in ("cpu", "cuda"):
            raise ValueError(f"device must be 'cpu' or 'cuda', got {device!r}")
        dirs = {"ner_model_dir": Path(ner_model_dir), "embedding_model_dir": Path(embedding_model_dir)}
        problems = []
        for arg, name, hub_id in _RATE_MODELS:
            path = dirs[arg]
            if not path.is_dir():
                problems.append(f"{arg}: the {name} model directory {path} does not exist")
            elif not (path / "config.json").is_file():
                problems.append(f"{arg}: {path} has no config.json, so it is not a {name} model directory")
            else:
                continue
            problems[-1] += (
                f" (download {hub_id} on a machine with Hugging Face Hub access, e.g. "
                f"`huggingface-cli download {hub_id} --local-dir <dir>`, copy it here and pass <dir>)"
            )
        if problems:
            raise FileNotFoundError("RaTEScore cannot run offline: " + "; ".join(problems))
        ratescore_cls = _load_ratescore_class()
        self.ner_model_dir = dirs["ner_model_dir"]
        self.embedding_model_dir = dirs["embedding_model_dir"]
        self.device = device
        self._scorer = ratescore_cls(
            bert_model=str(self.ner_model_dir),
            eval_model=str(self.embedding_model_dir),
            batch_size=batch_size,
            use_gpu=device == "cuda",
        )

    def __call__(self, predictions: Sequence[str], references: Sequence[str]) -> list[float]:
        """Per-report RaTEScore in [0, 1] (0.5 when either report has no entity)."""
        if len(predictions) != len(references):
            raise ValueError(f"{len(predictions)} predictions but {len(references)} references")
        if not predictions:
            return []
        return [float(s) for s in self._scorer.compute_score(list(predictions), list(references))]


# ---------------------------------------------------------------------------------------------
# Aggregation
# ---------------------------------------------------------------------------------------------


@dataclass
class ReportScores:
    """Report-generation scores of one benchmark, all on the 0-100 scale (raw values × 100).

    Attributes:
        rouge_l: mean ROUGE-L F × 100.
        cider: mean CIDEr × 100 (raw CIDEr is about 0..10, so this is about 0..1000); NaN when
            no row is averaged (default mode with only empty predictions).
        ratescore: mean RaTEScore × 100, or ``None`` when RaTE was not computed.
        rouge_l_per_row: ROUGE-L F × 100 per row (0 for empty predictions).
        cider_per_row: CIDEr × 100 per row; ``None`` for rows left out of the mean.
        ratescore_per_row: RaTEScore × 100 per row; ``None`` where not computed.
        empty_rows: indices of predictions that are empty after preparation
            (:func:`is_empty_report`).
        strict: the averaging mode used.
        cider_df: where the CIDEr IDF came from (``"corpus"`` or the pickle path).
        n_rows: number of rows.
    """

    rouge_l: float
    cider: float
    ratescore: float | None
    rouge_l_per_row: list[float]
    cider_per_row: list[float | None]
    ratescore_per_row: list[float | None]
    empty_rows: list[int]
    strict: bool
    cider_df: str
    n_rows: int = field(init=False)

    def __post_init__(self) -> None:
        self.n_rows = len(self.rouge_l_per_row)

    def as_dict(self) -> dict[str, float | None]:
        """The headline numbers: ``{"rouge_l": ..., "cider": ..., "ratescore": ...}``."""
        return {"rouge_l": self.rouge_l, "cider": self.cider, "ratescore": self.ratescore}


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else math.nan


def score_reports(
    predictions: Sequence[str],
    references: Sequence[str],
    *,
    strict: bool = False,
    cider_df: CiderDF = COCO_VAL_DF,
    ratescore: Callable[[list[str], list[str]], Sequence[float]] | None = None,
    prepare: bool = True,
    max_prediction_chars: int | None = JD_MAX_PREDICTION_CHARS,
) -> ReportScores:
    """Score generated reports against gold reports like the JD fork (``strict=False``).

    Each prediction goes through :func:`prepare_report_prediction` (unless ``prepare=False``);
    each reference has its newlines replaced by spaces and is lower-cased (as the fork does to
    the output of :func:`format_report_reference`). A prediction is *empty* when nothing but
    whitespace and ``"."`` is left (:func:`is_empty_report`).

    Default mode (reference behaviour):

    * ROUGE-L: mean over **all** rows; empty predictions count 0. The prediction is cut to
      ``max_prediction_chars`` characters first (2048, as the fork does).
    * CIDEr: mean over the **non-empty** rows only (the fork leaves empty predictions out of
      its CIDEr call). With ``cider_df="corpus"`` the IDF is counted on the references of those
      rows. NaN if every prediction is empty.
    * RaTEScore (when ``ratescore`` is given): computed and averaged over the non-empty rows,
      like CIDEr.
    * Predictions that are empty only after stripping (``"   "``, ``"\\n"``, ``"..."``,
      ``"<answer></answer>"``) crash the fork (its ROUGE raises and its handler raises the
      recursion limit until it overflows). Here they are treated like the ``""`` that the fork
      skips: 0 in ROUGE-L, left out of CIDEr and RaTE, listed in ``empty_rows``.

    ``strict=True`` differs only in the denominators:

    * CIDEr and RaTEScore are averaged over **all** rows, empty predictions scoring 0 (with
      ``cider_df="corpus"`` the IDF then comes from all references);
    * ROUGE-L is unchanged (the reference already averages it over all rows).

    Independent of ``strict``: pass ``max_prediction_chars=None`` to score ROUGE-L on the
    whole prediction (CIDEr and RaTE always see the whole prediction, as in the fork).

    Args:
        predictions: model outputs (raw; or prepared texts with ``prepare=False``).
        references: gold reports, e.g. from :func:`format_report_reference`.
        strict: average CIDEr (and RaTE) over all rows.
        cider_df: CIDEr document frequencies: ``"coco-val"`` (the reference's; needs the
            ``coco-val.p`` file, see :mod:`citrusv.eval.metrics.report_cider`), ``"corpus"``,
            a pickle path or a :class:`DocumentFrequency`.
        ratescore: a callable ``(predictions, references) -> per-report scores in [0, 1]``,
            e.g. a :class:`RaTEScorer`; ``None`` skips RaTE.
        prepare: apply :func:`prepare_report_prediction` to the predictions.
        max_prediction_chars: ROUGE-L hypothesis truncation (``None``: none).

    Returns:
        :class:`ReportScores` on the 0-100 scale.

    Raises:
        ValueError: no rows, different lengths, or a RaTE callable returning the wrong number
            of scores.
        TypeError: a prediction or reference is not a string.
        FileNotFoundError: ``cider_df`` points to a missing document-frequency file.
    """
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions but {len(references)} references")
    if not predictions:
        raise ValueError("score_reports needs at least one prediction")
    for i, (p, r) in enumerate(zip(predictions, references)):
        if not isinstance(p, str) or not isinstance(r, str):
            raise TypeError(f"row {i}: predictions and references must be strings, got {type(p).__name__}, {type(r).__name__}")

    preds = [prepare_report_prediction(p) if prepare else p for p in predictions]
    refs = [r.replace("\n", " ").lower() for r in references]
    empty = [i for i, p in enumerate(preds) if is_empty_report(p)]
    empty_set = set(empty)
    if empty:
        logger.info("%d of %d report predictions are empty after preparation", len(empty), len(preds))

    rouge_rows = [
        0.0 if i in empty_set else 100.0 * rouge_l(p, r, max_prediction_chars=max_prediction_chars)
        for i, (p, r) in enumerate(zip(preds, refs))
    ]

    scored = list(range(len(preds))) if strict else [i for i in range(len(preds)) if i not in empty_set]
    cider_rows: list[float | None] = [None] * len(preds)
    df_source = "none"
    if scored:
        ref_tokens = [[cider_tokenize(refs[i])] for i in scored]
        stats = resolve_document_frequency(cider_df, corpus=ref_tokens)
        df_source = stats.source
        hyp_tokens = [cider_tokenize(preds[i]) for i in scored]
        raw = _cider_from_tokens(hyp_tokens, ref_tokens, stats, clipped=False, n=4, sigma=6.0)
        for i, value in zip(scored, raw):
            cider_rows[i] = 0.0 if i in empty_set else 100.0 * value

    rate_rows: list[float | None] = [None] * len(preds)
    rate_mean: float | None = None
    if ratescore is not None:
        rated = [i for i in range(len(preds)) if i not in empty_set]
        values = list(ratescore([preds[i] for i in rated], [refs[i] for i in rated])) if rated else []
        if len(values) != len(rated):
            raise ValueError(f"the RaTEScore callable returned {len(values)} scores for {len(rated)} reports")
        for i, value in zip(rated, values):
            rate_rows[i] = 100.0 * float(value)
        if strict:
            for i in empty:
                rate_rows[i] = 0.0
        rate_mean = _mean([v for v in rate_rows if v is not None])

    return ReportScores(
        rouge_l=_mean(rouge_rows),
        cider=_mean([v for v in cider_rows if v is not None]),
        ratescore=rate_mean,
        rouge_l_per_row=rouge_rows,
        cider_per_row=cider_rows,
        ratescore_per_row=rate_rows,
        empty_rows=empty,
        strict=strict,
        cider_df=df_source,
    )

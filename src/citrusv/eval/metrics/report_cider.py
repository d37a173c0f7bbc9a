"""CIDEr and CIDEr-D for report generation, scored like ``cidereval`` and ``pycocoevalcap``.

Two scorers of the same family:

* **CIDEr** (``variant="cider"``), what the reference report evaluator uses (``cidereval``'s
  ``cider()``, GitHub ``michelecafagna26/cider``): for n = 1..4 the hypothesis and each reference
  become tf-idf vectors over their n-grams (raw n-gram count × idf); the score of an image is the
  cosine similarity averaged over n, then over its references, times 10.
* **CIDEr-D** (``variant="cider-d"``), what ``pycocoevalcap``'s ``Cider`` computes: the same with
  the hypothesis weight clipped at the reference weight (``min(h, r) * r`` in the dot product) and
  a gaussian length penalty ``exp(-delta**2 / (2 * sigma**2))``, ``sigma = 6``. As in both
  reference implementations ``delta`` is the difference in the number of *bigrams* (hypothesis
  minus reference), not of words.

The idf of an n-gram is ``log_num_docs - log(max(1, df))`` where ``df`` counts the images whose
references contain it. It comes from a :class:`DocumentFrequency`:

* ``"coco-val"``: the COCO-val document frequencies that ``cidereval`` ships
  (``cidereval/data/coco-val.p``); the reference's default, so the only way to match its numbers.
  The file is not on PyPI: pass its path, or install ``cidereval`` from GitHub.
* ``"corpus"``: document frequencies of the evaluated references (``pycocoevalcap``'s only mode);
  ``log_num_docs`` is the log of the number of images, so a single image scores 0.
* a path to any pickle in the ``cidereval`` format, or a :class:`DocumentFrequency`.

Scale: the functions return raw CIDEr (about 0..10); the report tables show it × 100.
"""

from __future__ import annotations

import logging
import math
import os
import pickle
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal, Union

from citrusv.eval.metrics._ptb import cider_tokenize

__all__ = [
    "COCO_VAL_DF",
    "CiderDF",
    "DocumentFrequency",
    "cider",
    "cider_scores",
    "resolve_document_frequency",
]

logger = logging.getLogger(__name__)

NGram = tuple[str, ...]

#: Name of the reference's default document frequencies (``cidereval/data/coco-val.p``).
COCO_VAL_DF = "coco-val"

#: Where the document frequencies come from: ``"coco-val"``, ``"corpus"``, a pickle path or an
#: already loaded :class:`DocumentFrequency`.
CiderDF = Union[str, "os.PathLike[str]", "DocumentFrequency"]

_COCO_VAL_HELP = (
    "The reference CIDEr (cidereval) takes its IDF from the COCO-val document-frequency pickle "
    "'cidereval/data/coco-val.p' of the GitHub repository michelecafagna26/cider (a Git LFS file; "
    "cidereval is not on PyPI). Get it with `git clone https://github.com/michelecafagna26/cider "
    "&& cd cider && git lfs pull` (or `pip install git+https://github.com/michelecafagna26/cider`) "
    "and pass its path as the document frequencies, e.g. df='/path/to/coco-val.p'. Alternatively "
    "pass df='corpus' to take the IDF from the evaluated references (pycocoevalcap's convention; "
    "the numbers are then not comparable to the paper's)."
)


@dataclass(frozen=True)
class DocumentFrequency:
    """N-gram document frequencies, the IDF statistics of CIDEr.

    Attributes:
        counts: n-gram (tuple of tokens) -> number of images whose references contain it.
            N-grams not listed count 0.
        log_num_docs: natural log of the number of images the counts were taken from
            (``ref_len`` in the reference code).
        source: where the statistics come from (for reports and logs).
    """

    counts: Mapping[NGram, float]
    log_num_docs: float
    source: str = "custom"

    @classmethod
    def from_references(
        cls, references: Sequence[Sequence[Sequence[str]]], *, n: int = 4, source: str = "corpus"
    ) -> DocumentFrequency:
        """Count, for each n-gram (1..``n``), the images whose references contain it.

        Args:
            references: per image, its references, each a list of tokens.
            n: longest n-gram.
            source: label stored in :attr:`source`.

        Raises:
            ValueError: ``references`` is empty (the log of 0 images is undefined).
        """
        if not references:
            raise ValueError("document frequencies need at least one image with references")
        counts: defaultdict[NGram, float] = defaultdict(float)
        for refs in references:
            for ngram in {g for ref in refs for g in _ngram_counts(ref, n)}:
                counts[ngram] += 1
        return cls(counts=dict(counts), log_num_docs=math.log(float(len(references))), source=source)

    @classmethod
    def from_pickle(cls, path: str | os.PathLike[str]) -> DocumentFrequency:
        """Load a ``cidereval``-format pickle: ``{"df": {ngram: count}, "ref_len": log(#images)}``.

        Only a restricted set of types is unpickled (dicts, ``collections.defaultdict``, tuples,
        strings, numbers and numpy scalars), so a hostile file cannot run code. Python 2 pickles
        (like ``coco-val.p``) are read with the reference's ``iso-8859-1`` encoding.

        Raises:
            FileNotFoundError: no file at ``path`` (the message says where to get coco-val.p).
            ValueError: the file is a Git LFS pointer or does not hold the two keys.
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"CIDEr document-frequency file not found: {path}. {_COCO_VAL_HELP}")
        with path.open("rb") as fh:
            head = fh.read(64)
            if head.startswith(b"version https://git-lfs"):
                raise ValueError(
                    f"{path} is a Git LFS pointer, not the pickle itself; run `git lfs pull` in the "
                    "cider repository first."
                )
            fh.seek(0)
            data = _RestrictedUnpickler(fh, encoding="iso-8859-1").load()
        if not isinstance(data, Mapping) or "df" not in data or "ref_len" not in data:
            keys = sorted(map(str, data)) if isinstance(data, Mapping) else type(data).__name__
            raise ValueError(
                f"{path}: expected a dict with keys 'df' (n-gram -> document count) and 'ref_len' "
                f"(log of the number of images), the cidereval format; got {keys}"
            )
        counts = {_as_ngram(k): float(v) for k, v in data["df"].items()}
        return cls(counts=counts, log_num_docs=float(data["ref_len"]), source=str(path))

    def to_pickle(self, path: str | os.PathLike[str]) -> None:
        """Write the statistics in the ``cidereval`` format (readable by ``cidereval`` too)."""
        payload = {"ref_len": self.log_num_docs, "df": defaultdict(float, self.counts)}
        with Path(path).open("wb") as fh:
            pickle.dump(payload, fh)

    def idf(self, ngram: NGram) -> float:
        """``log_num_docs - log(max(1, df))``: the weight of one occurrence of ``ngram``."""
        return self.log_num_docs - math.log(max(1.0, self.counts.get(ngram, 0.0)))


class _RestrictedUnpickler(pickle.Unpickler):
    _ALLOWED: ClassVar[frozenset[tuple[str, str]]] = frozenset({
        ("builtins", "dict"),
        ("builtins", "float"),
        ("builtins", "int"),
        ("builtins", "str"),
        ("builtins", "tuple"),
        ("builtins", "list"),
        ("builtins", "object"),
        ("_codecs", "encode"),  # bytes in protocol-2 pickles (numpy scalars)
        ("collections", "defaultdict"),
        ("copyreg", "_reconstructor"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
    })

    _PY2_MODULES: ClassVar[dict[str, str]] = {"__builtin__": "builtins", "copy_reg": "copyreg"}

    def find_class(self, module: str, name: str) -> object:
        if (self._PY2_MODULES.get(module, module), name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a document-frequency file")
        return super().find_class(module, name)


def _as_ngram(key: object) -> NGram:
    if isinstance(key, tuple):
        return tuple(k.decode("iso-8859-1") if isinstance(k, bytes) else str(k) for k in key)
    raise ValueError(f"document-frequency keys must be n-gram tuples, got {key!r}")


def resolve_document_frequency(
    df: CiderDF, *, corpus: Sequence[Sequence[Sequence[str]]] | None = None, n: int = 4
) -> DocumentFrequency:
    """Turn a ``df`` argument into :class:`DocumentFrequency`.

    Args:
        df: ``"coco-val"`` (the ``coco-val.p`` of an installed ``cidereval`` package),
            ``"corpus"`` (counted on ``corpus``), a path to a ``cidereval``-format pickle, or a
            :class:`DocumentFrequency` (returned as is).
        corpus: tokenised references per image, needed for ``"corpus"``.
        n: longest n-gram (``"corpus"`` only).

    Raises:
        FileNotFoundError: ``"coco-val"`` without an installed ``cidereval`` data file, or a
            path that does not exist; the message says where to get the file.
        ValueError: ``"corpus"`` without references.
    """
    if isinstance(df, DocumentFrequency):
        return df
    if isinstance(df, str) and df == "corpus":
        if corpus is None:
            raise ValueError("df='corpus' needs the tokenised references")
        return DocumentFrequency.from_references(corpus, n=n)
    if isinstance(df, str) and df == COCO_VAL_DF:
        path = _installed_coco_val()
        if path is None:
            raise FileNotFoundError(f"no CIDEr document frequencies 'coco-val' available. {_COCO_VAL_HELP}")
        return DocumentFrequency.from_pickle(path)
    if isinstance(df, (str, os.PathLike)):
        return DocumentFrequency.from_pickle(df)
    raise TypeError(f"df must be 'coco-val', 'corpus', a path or a DocumentFrequency, got {type(df).__name__}")


def _installed_coco_val() -> Path | None:
    """``cidereval/data/coco-val.p`` of an installed ``cidereval``, if any (no import of it)."""
    import importlib.util

    spec = importlib.util.find_spec("cidereval")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "data" / "coco-val.p"
        if candidate.is_file():
            return candidate
    return None


def _ngram_counts(tokens: Sequence[str], n: int) -> dict[NGram, int]:
    """Counts of all 1..n-grams, in the reference's order (by n, then position)."""
    counts: dict[NGram, int] = {}
    for k in range(1, n + 1):
        for i in range(len(tokens) - k + 1):
            gram = tuple(tokens[i : i + k])
            counts[gram] = counts.get(gram, 0) + 1
    return counts


def _tfidf(
    counts: Mapping[NGram, int], df: DocumentFrequency, n: int
) -> tuple[list[dict[NGram, float]], list[float], int]:
    """Per-order tf-idf vectors, their norms and the number of bigrams (the reference's 'length')."""
    vec: list[dict[NGram, float]] = [{} for _ in range(n)]
    sq_norm = [0.0] * n
    n_bigrams = 0
    for gram, tf in counts.items():
        order = len(gram) - 1
        weight = float(tf) * df.idf(gram)
        vec[order][gram] = weight
        sq_norm[order] += weight**2
        if order == 1:
            n_bigrams += tf
    return vec, [math.sqrt(s) for s in sq_norm], n_bigrams


def _similarity(
    hyp: tuple[list[dict[NGram, float]], list[float], int],
    ref: tuple[list[dict[NGram, float]], list[float], int],
    *,
    clipped: bool,
    sigma: float,
) -> list[float]:
    (vec_h, norm_h, len_h), (vec_r, norm_r, len_r) = hyp, ref
    delta = float(len_h - len_r)
    out = []
    for order, (hv, rv) in enumerate(zip(vec_h, vec_r)):
        val = 0.0
        for gram, w in hv.items():
            wr = rv.get(gram, 0.0)
            val += (min(w, wr) if clipped else w) * wr
        if norm_h[order] != 0 and norm_r[order] != 0:
            val /= norm_h[order] * norm_r[order]
        if clipped:
            val *= math.e ** (-(delta**2) / (2 * sigma**2))
        out.append(val)
    return out


def _as_reference_lists(references: Sequence[str | Sequence[str]]) -> list[list[str]]:
    out = []
    for i, refs in enumerate(references):
        refs_list = [refs] if isinstance(refs, str) else list(refs)
        if not refs_list or not all(isinstance(r, str) for r in refs_list):
            raise TypeError(f"reference {i} must be a string or a non-empty list of strings, got {refs!r}")
        out.append(refs_list)
    return out


def cider_scores(
    predictions: Sequence[str],
    references: Sequence[str | Sequence[str]],
    *,
    df: CiderDF = COCO_VAL_DF,
    variant: Literal["cider", "cider-d"] = "cider",
    n: int = 4,
    sigma: float = 6.0,
    tokenize: bool = True,
) -> list[float]:
    """Per-image CIDEr (raw scale, about 0..10) of each prediction against its references.

    With the defaults this is ``cidereval.cider(predictions, [[r] for r in references])["scores"]``
    (plain CIDEr, COCO-val IDF, PTB tokenisation); ``variant="cider-d", df="corpus"`` is
    ``pycocoevalcap``'s ``Cider``.

    Args:
        predictions: one hypothesis per image.
        references: per image, a reference string or a list of them.
        df: document frequencies (see the module notes): ``"coco-val"``, ``"corpus"``, a pickle
            path or a :class:`DocumentFrequency`.
        variant: ``"cider"`` (plain, the report reference) or ``"cider-d"`` (clipped and
            length-penalised, pycocoevalcap).
        n: longest n-gram.
        sigma: width of the CIDEr-D length penalty (ignored for plain CIDEr).
        tokenize: run the reference tokenisation (PTB tokenizer, lower case, punctuation
            tokens dropped; :func:`citrusv.eval.metrics._ptb.cider_tokenize`). ``False`` means
            the texts are already tokenised and are split on whitespace.

    Returns:
        One score per image; an image whose hypothesis has no tokens scores 0.

    Raises:
        ValueError: lengths differ, unknown ``variant`` or ``n < 1``.
        TypeError: a prediction or reference is not a string.
        FileNotFoundError: see :func:`resolve_document_frequency`.

    Example:
        >>> round(cider_scores(["no pleural effusion"], ["no pleural effusion"], df="corpus")[0], 6)
        0.0
    """
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions but {len(references)} references")
    if variant not in ("cider", "cider-d"):
        raise ValueError(f"variant must be 'cider' or 'cider-d', got {variant!r}")
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    for i, p in enumerate(predictions):
        if not isinstance(p, str):
            raise TypeError(f"prediction {i} must be a string, got {type(p).__name__}")
    ref_lists = _as_reference_lists(references)
    if not predictions:
        return []
    split = cider_tokenize if tokenize else str.split
    hyp_tokens = [split(p) for p in predictions]
    ref_tokens = [[split(r) for r in refs] for refs in ref_lists]
    stats = resolve_document_frequency(df, corpus=ref_tokens, n=n)
    return _cider_from_tokens(hyp_tokens, ref_tokens, stats, clipped=variant == "cider-d", n=n, sigma=sigma)


def _cider_from_tokens(
    hyp_tokens: Iterable[Sequence[str]],
    ref_tokens: Iterable[Sequence[Sequence[str]]],
    df: DocumentFrequency,
    *,
    clipped: bool,
    n: int,
    sigma: float,
) -> list[float]:
    scores = []
    for hyp, refs in zip(hyp_tokens, ref_tokens):
        hyp_vec = _tfidf(_ngram_counts(hyp, n), df, n)
        total = [0.0] * n
        for ref in refs:
            sim = _similarity(hyp_vec, _tfidf(_ngram_counts(ref, n), df, n), clipped=clipped, sigma=sigma)
            total = [t + s for t, s in zip(total, sim)]
        scores.append(sum(total) / n / len(refs) * 10.0)
    return scores


def cider(
    predictions: Sequence[str],
    references: Sequence[str | Sequence[str]],
    *,
    df: CiderDF = COCO_VAL_DF,
    variant: Literal["cider", "cider-d"] = "cider",
    n: int = 4,
    sigma: float = 6.0,
    tokenize: bool = True,
) -> float:
    """Mean of :func:`cider_scores` over the images (``avg_score`` of the references), raw scale.

    Raises:
        ValueError: no predictions (the mean is undefined), plus the errors of
            :func:`cider_scores`.
    """
    scores = cider_scores(
        predictions, references, df=df, variant=variant, n=n, sigma=sigma, tokenize=tokenize
    )
    if not scores:
        raise ValueError("CIDEr of an empty set of predictions is undefined")
    return sum(scores) / len(scores)

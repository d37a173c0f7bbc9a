"""Pure checks behind the enhancement pipelines: is an original fact still stated by a
consolidated answer, does a final answer match a standard answer, what kind of answer is this.

Rules decide where they can (yes/no facts, short answers, closed question formats); everything
else returns ``"needs_judge"`` / ``None`` and the pipeline asks an LLM judge.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass
from typing import Any

__all__ = [
    "FORMATS",
    "FactCheck",
    "answer_kind",
    "check_fact",
    "content_terms",
    "extract_choice",
    "judge_verdict",
    "match_closed",
    "normalize_text",
    "parse_bool",
    "yes_no",
]

#: Question formats of reasoning synthesis: multiple choice, true/false, short answer, open.
FORMATS = ("mcq", "tf", "short", "open")

_CJK = re.compile(r"[\u4e00-\u9fff]")
_YES = {"yes", "y", "true", "correct", "right", "present", "positive", "是", "是的", "有", "对", "正确", "存在", "阳性"}
_NO = {"no", "n", "false", "incorrect", "wrong", "absent", "negative", "否", "不是", "没有", "无", "错", "错误",
       "不正确", "不存在", "阴性"}
_STOP = {
    "a", "an", "the", "is", "are", "was", "were", "be", "been", "there", "this", "that", "these", "those", "it", "its",
    "of", "in", "on", "at", "to", "for", "with", "by", "from", "and", "or", "any", "some", "does", "do", "did", "can",
    "could", "image", "picture", "photo", "scan", "shown", "show", "shows", "seen", "visible", "evidence", "what",
    "which", "where", "how", "who", "whom", "whose", "why", "when", "has", "have", "had", "into", "than", "not", "no",
    "yes", "present", "appear", "appears", "see", "you", "we", "i", "here", "given", "type", "kind",
}
_ZH_STOP = re.compile(r"[是否有吗呢的了在中这那个该图像片显示存在哪里什么怎样如何请问么吧图影中上下内为与和及或所示可见]")
_NEGATION_EN = re.compile(r"\b(?:no|not|without|absent|absence|negative|none|neither|nor|free of|ruled out|"
                          r"rules out|lack|lacks|lacking)\b|n't\b", re.IGNORECASE)
_NEGATION_ZH = re.compile(r"无|没有|未|不|否|阴性|排除")
_CLAUSES = re.compile(r"(?i)(?<!\d)[.](?!\d)|[;!?。；！？\n]+|\b(?:but|however|whereas|although|while)\b|但是|但|然而|而且?")


def normalize_text(text: str) -> str:
    """Casefold, NFKC, punctuation to spaces, articles dropped, whitespace collapsed."""
    text = unicodedata.normalize("NFKC", str(text)).casefold()
    text = re.sub(r"[^\w\s.%/+-]|(?<!\d)[.]|[.](?!\d)", " ", text)
    words = [w for w in text.split() if w not in ("a", "an", "the")]
    return " ".join(words)


def parse_bool(text: str) -> bool | None:
    """``True`` / ``False`` for yes / true / 是 / 对 ... and no / false / 否 / 错 ..., else ``None``.

    The whole text or its first word decides ("Yes, the lesion ..." is ``True``).
    """
    norm = normalize_text(text)
    if not norm:
        return None
    for candidate in (norm, norm.split()[0]):
        if candidate in _YES:
            return True
        if candidate in _NO:
            return False
    return None


def yes_no(answer: str) -> bool | None:
    """The polarity of a bare yes/no answer ("Yes.", "否"), or ``None`` for other answers."""
    norm = normalize_text(answer)
    if norm in _YES:
        return True
    if norm in _NO:
        return False
    return None


def _length(text: str) -> int:
    """Words of Latin text plus CJK characters / 2 (two characters per word, roughly)."""
    cjk = len(_CJK.findall(text))
    return len(_CJK.sub(" ", text).split()) + math.ceil(cjk / 2)


def answer_kind(answer: str, max_short_words: int = 5) -> str:
    """``"yes_no"``, ``"short"`` (at most ``max_short_words`` words) or ``"long"``."""
    if yes_no(answer) is not None:
        return "yes_no"
    return "short" if _length(answer) <= max_short_words else "long"


def content_terms(text: str) -> list[str]:
    """The content words of a question or answer: Latin words that are not stop words, and CJK
    runs of two or more characters left after removing function characters."""
    norm = normalize_text(text)
    terms = [w for w in re.findall(r"[a-z0-9][a-z0-9.%/+-]*", norm) if w not in _STOP and (len(w) > 2 or w.isdigit())]
    for run in re.findall(r"[\u4e00-\u9fff]+", norm):
        terms.extend(piece for piece in _ZH_STOP.split(run) if len(piece) >= 2)
    return list(dict.fromkeys(terms))


def _term_in(term: str, clause: str) -> bool:
    if _CJK.search(term):
        return term in clause
    stem = term[:max(4, len(term) - 2)] if len(term) > 4 else term
    return any(word.startswith(stem) for word in re.findall(r"[a-z0-9][a-z0-9.%/+-]*", clause))


def _negated(clause: str) -> bool:
    return bool(_NEGATION_EN.search(clause) or _NEGATION_ZH.search(clause))


@dataclass(frozen=True)
class FactCheck:
    """The verdict on one original question / answer pair.

    Attributes:
        status: ``"entailed"``, ``"missing"`` (not stated), ``"contradicted"`` (stated with the
            opposite polarity) or ``"needs_judge"`` (a long answer: rules cannot decide).
        reason: a short explanation for the drop log.
    """

    status: str
    reason: str = ""


def check_fact(question: str, answer: str, text: str, max_short_words: int = 5) -> FactCheck:
    """Whether ``text`` (the consolidated answers) still states the fact ``question`` → ``answer``.

    * yes/no answers: the clauses of ``text`` that mention at least half of the question's content
      words must exist ("missing" otherwise), and one of them must carry the answer's polarity:
      a negation cue (no, not, without, 无, 未, ...) for "no", none for "yes".
    * short answers: the normalized answer is a substring of the normalized text, or each of its
      content words is there.
    * long answers: ``"needs_judge"``.
    """
    norm_text = normalize_text(text)
    kind = answer_kind(answer, max_short_words)
    if kind == "yes_no":
        polarity = yes_no(answer)
        terms = content_terms(question)
        if not terms:
            return FactCheck("needs_judge", "no content words in the question")
        needed = max(1, math.ceil(len(terms) / 2))
        clauses = [normalize_text(c) for c in _CLAUSES.split(text) if c and c.strip()]
        relevant = [c for c in clauses if sum(_term_in(t, c) for t in terms) >= needed]
        if not relevant:
            return FactCheck("missing", f"no sentence mentions {terms}")
        if any(_negated(c) != polarity for c in relevant):
            return FactCheck("entailed")
        said = "negated" if polarity else "affirmed"
        return FactCheck("contradicted", f"the answer is {'yes' if polarity else 'no'} but {terms} is {said}")
    if kind == "short":
        norm_answer = normalize_text(answer)
        if norm_answer and (norm_answer in norm_text if _CJK.search(norm_answer)
                            else re.search(rf"(?<!\w){re.escape(norm_answer)}(?!\w)", norm_text)):
            return FactCheck("entailed")
        terms = content_terms(answer) or norm_answer.split()
        if terms and all(_term_in(t, norm_text) for t in terms):
            return FactCheck("entailed")
        return FactCheck("missing", f"answer {answer!r} not found")
    return FactCheck("needs_judge", "long answer")


def extract_choice(text: str, options: dict[str, str] | None = None) -> str | None:
    """The option letter a final answer picks ("B", "(B)", "B. Pneumonia", "The answer is B",
    "选B", or an option's exact text), or ``None``."""
    stripped = unicodedata.normalize("NFKC", str(text)).strip()
    letters = "".join(sorted(options)) if options else "ABCDEFGH"
    cls = f"[{re.escape(letters)}]"
    for pattern in (rf"^\(?({cls})\)?[.)]?$", rf"^\(?({cls})\)?[.):、\s]",
                    rf"(?i)(?:answer|option|choice)\s*(?:is|:)?\s*\(?({cls})\b", rf"选(?:项)?\s*({cls})"):
        match = re.search(pattern, stripped)
        if match:
            return match.group(1)
    if options:
        norm = normalize_text(stripped)
        hits = [letter for letter, option in options.items() if normalize_text(option) == norm]
        if len(hits) == 1:
            return hits[0]
    return None


def match_closed(answer: str, standard: str, fmt: str, options: dict[str, str] | None = None) -> bool | None:
    """Whether a final answer matches the standard answer of a closed question.

    Args:
        answer: the answering model's final answer.
        standard: the standard answer (an option letter for ``"mcq"``, true/false for ``"tf"``).
        fmt: one of ``FORMATS``.
        options: the options of a multiple-choice question.

    Returns:
        ``True`` / ``False``; ``None`` for ``"open"`` (a judge decides).

    Raises:
        ValueError: an unknown format.
    """
    if fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {FORMATS}, got {fmt!r}")
    if fmt == "mcq":
        picked = extract_choice(answer, options)
        return picked is not None and picked == extract_choice(standard, options)
    if fmt == "tf":
        got, want = parse_bool(answer), parse_bool(standard)
        return got is not None and got == want
    if fmt == "short":
        return bool(normalize_text(answer)) and normalize_text(answer) == normalize_text(standard)
    return None


def judge_verdict(reply: Any, key: str) -> bool | None:
    """A judge's boolean verdict ``reply[key]`` (``true``, ``"yes"``, ``"true"``), or ``None``
    when the reply does not hold one."""
    if not isinstance(reply, dict) or key not in reply:
        return None
    value = reply[key]
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return parse_bool(value)
    return None

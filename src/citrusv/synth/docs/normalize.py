"""Rule-based normalisation of lab-report table cells (before two parses are compared).

Pure functions. Each turns one cell into a canonical string so that two parses that differ only in
presentation compare equal:

* ``to_halfwidth``: full-width ASCII, ideographic space and Chinese punctuation -> ASCII;
* ``fix_decimal_comma``: ``3,5`` -> ``3.5``; ``1,234`` (thousands) -> ``1234``;
* ``canonical_unit``: unit synonyms -> a UCUM code (``µmol/L`` / ``umol/l`` -> ``umol/L``,
  ``×10^9/L`` -> ``10*9/L``, ``IU/L`` -> ``[IU]/L``); unknown units are returned cleaned, not
  rejected (``UNIT_SYNONYMS`` is the table);
* ``parse_reference`` / ``canonical_reference``: ``3.5-5.5``, ``3.5~5.5``, ``3.5–5.5``, ``<5``,
  ``≤5``, ``<=5``, ``≥1.0``, ``>1``, ``阴性`` / ``Negative`` / ``(-)`` -> a ``ReferenceInterval``
  and its canonical text (``3.5-5.5``, ``<5``, ``<=5``, ``>=1``, ``negative``);
* ``parse_result``: value plus an arrow or H / L flag (``5.6↑``, ``5.6 H``, ``↓3.1``) -> value and
  flag (``"H"``, ``"L"`` or ``""``); numbers lose trailing zeros (``5.60`` -> ``5.6``);
* ``canonical_entry_name``: entry-name synonyms (``WBC``, ``白细胞``, ``白细胞计数``, ``White blood
  cells``) -> one key (``wbc``), else the cleaned lower-case name;
* ``abnormality``: the result against its reference interval -> ``high`` / ``low`` / ``normal`` /
  ``abnormal`` (qualitative) or ``None`` when it cannot be decided.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ENTRY_NAME_SYNONYMS",
    "UNIT_SYNONYMS",
    "NormalizedEntry",
    "ReferenceInterval",
    "abnormality",
    "canonical_entry_name",
    "canonical_number",
    "canonical_reference",
    "canonical_result",
    "canonical_unit",
    "fix_decimal_comma",
    "normalize_entry",
    "parse_reference",
    "parse_result",
    "to_halfwidth",
]

_PUNCT = {
    "\u3000": " ", "，": ",", "；": ";", "：": ":", "（": "(", "）": ")", "～": "~", "。": ".", "、": ",",
    "【": "[", "】": "]", "“": '"', "”": '"', "‘": "'", "’": "'", "－": "-", "—": "-", "–": "-", "−": "-",
    "‐": "-", "〜": "~", "＜": "<", "＞": ">", "≦": "≤", "≧": "≥", "µ": "u", "μ": "u",
}


def to_halfwidth(text: str) -> str:
    """Full-width ASCII (U+FF01..U+FF5E) and Chinese punctuation -> ASCII; µ / μ -> u."""
    out = []
    for ch in str(text):
        code = ord(ch)
        if 0xFF01 <= code <= 0xFF5E and ch not in _PUNCT:
            out.append(chr(code - 0xFEE0))
        else:
            out.append(_PUNCT.get(ch, ch))
    return "".join(out)


_THOUSANDS = re.compile(r"(?<![\d.,])(\d{1,3})((?:,\d{3})+)(?![\d,])(?!\.\d)")
_DECIMAL_COMMA = re.compile(r"(?<=\d),(?=\d)")


def fix_decimal_comma(text: str) -> str:
    """``3,5`` -> ``3.5``; a thousands-grouped integer (``1,234``, ``12,345,678``) loses its commas.

    A comma followed by exactly three digits after one to three leading digits is read as a
    thousands separator (``1,234`` -> ``1234``); any other comma between digits is a decimal comma.
    """
    text = _THOUSANDS.sub(lambda m: m.group(1) + m.group(2).replace(",", ""), text)
    return _DECIMAL_COMMA.sub(".", text)


def _clean(text: Any) -> str:
    return re.sub(r"\s+", " ", fix_decimal_comma(to_halfwidth("" if text is None else str(text)))).strip()


# ----------------------------------------------------------------------------------- numbers

_NUMBER = r"[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?"


def canonical_number(text: str) -> str:
    """``5.60`` -> ``5.6``, ``012`` -> ``12``, ``-0`` -> ``0``; non-numbers returned unchanged."""
    try:
        value = float(text)
    except ValueError:
        return text
    if not math.isfinite(value):
        return text
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


# ----------------------------------------------------------------------------------- units

#: canonical UCUM code -> synonyms (compared case-insensitively after ``to_halfwidth`` and with
#: spaces, ``×`` / ``x`` multipliers and ``^`` / ``E`` exponents unified).
UNIT_SYNONYMS: dict[str, tuple[str, ...]] = {
    "10*9/L": ("10^9/L", "x10^9/L", "×10^9/L", "10E9/L", "10*9/L", "G/L", "10⁹/L", "10^3/uL", "K/uL", "10*3/uL"),
    "10*12/L": ("10^12/L", "x10^12/L", "×10^12/L", "10E12/L", "10*12/L", "T/L", "10¹²/L", "10^6/uL", "M/uL"),
    "mmol/L": ("mmol/L", "mmol/l", "mM"),
    "umol/L": ("umol/L", "µmol/L", "μmol/L", "umol/l", "micromol/L"),
    "nmol/L": ("nmol/L",),
    "pmol/L": ("pmol/L",),
    "g/L": ("g/L", "g/l"),
    "g/dL": ("g/dL", "g/dl"),
    "mg/dL": ("mg/dL", "mg/dl", "mg%"),
    "mg/L": ("mg/L", "mg/l"),
    "ug/L": ("ug/L", "µg/L", "μg/L"),
    "ng/mL": ("ng/mL", "ng/ml"),
    "pg/mL": ("pg/mL", "pg/ml"),
    "U/L": ("U/L", "u/l", "units/L"),
    "[IU]/L": ("IU/L", "iu/l", "[IU]/L"),
    "m[IU]/mL": ("mIU/mL", "miu/ml", "m[IU]/mL"),
    "u[IU]/mL": ("uIU/mL", "µIU/mL", "μIU/mL", "u[IU]/mL"),
    "%": ("%", "percent"),
    "fL": ("fL", "fl", "um3"),
    "pg": ("pg",),
    "mm/h": ("mm/h", "mm/hr", "mm/H"),
    "s": ("s", "sec", "秒"),
    "mL/min/{1.73_m2}": ("mL/min/1.73m2", "ml/min/1.73m^2", "mL/min/1.73 m2", "mL/min/{1.73_m2}"),
    "/[HPF]": ("/HPF", "个/HP", "/HP", "个/HPF", "/[HPF]"),
    "/uL": ("/uL", "/µL", "个/uL", "个/µL"),
}


def _unit_key(text: str) -> str:
    key = to_halfwidth(text).replace(" ", "").replace("×", "x").replace("⁹", "^9").replace("¹²", "^12")
    key = re.sub(r"(?i)^x?10[e*]", "10^", key.lower())
    return key.replace("x10^", "10^")


_UNIT_INDEX: dict[str, str] = {}
for _code, _synonyms in UNIT_SYNONYMS.items():
    for _synonym in (_code, *_synonyms):
        _UNIT_INDEX.setdefault(_unit_key(_synonym), _code)


def canonical_unit(text: Any) -> str:
    """The UCUM code of a unit written any of the ways in ``UNIT_SYNONYMS``; otherwise the cleaned
    text (half-width, no spaces). Empty and dash-only units give ``""``."""
    cleaned = _clean(text).replace(" ", "")
    if not cleaned or set(cleaned) <= {"-", "/"}:
        return ""
    return _UNIT_INDEX.get(_unit_key(cleaned), cleaned)


# ----------------------------------------------------------------------------------- reference

_NEGATIVE = ("阴性", "negative", "neg", "(-)", "-", "阴性(-)", "阴性-", "nonreactive", "non-reactive", "未检出",
             "not detected")
_POSITIVE = ("阳性", "positive", "pos", "(+)", "+", "阳性(+)", "阳性+", "reactive", "检出", "detected")
_QUALITATIVE = {**{w: "negative" for w in _NEGATIVE}, **{w: "positive" for w in _POSITIVE}}
_RANGE = re.compile(rf"^({_NUMBER})\s*(?:-|~|to|至|—)\s*({_NUMBER})$", re.IGNORECASE)
_BOUND = re.compile(rf"^(<=|>=|≤|≥|<|>)\s*({_NUMBER})$")


@dataclass(frozen=True)
class ReferenceInterval:
    """A parsed reference interval.

    Attributes:
        low / high: bounds (``None`` when open); ``low_inclusive`` / ``high_inclusive`` say whether
            the bound itself is normal (``3.5-5.5``: both inclusive; ``<5``: high exclusive).
        qualitative: ``"negative"`` / ``"positive"`` for qualitative references, else ``None``.
        text: the canonical text (``3.5-5.5``, ``<5``, ``<=5``, ``>=1``, ``negative``), or the cleaned
            input when it could not be parsed.
        parsed: whether the input matched a known form.
    """

    low: float | None = None
    high: float | None = None
    low_inclusive: bool = True
    high_inclusive: bool = True
    qualitative: str | None = None
    text: str = ""
    parsed: bool = False


def parse_reference(text: Any) -> ReferenceInterval:
    """Parse ``3.5-5.5`` / ``3.5~5.5`` / ``3.5 to 5.5`` / ``<5`` / ``≤5`` / ``≥1.0`` / ``阴性`` / ``(-)``.

    Unparsed forms keep their cleaned text with ``parsed=False`` (never raises).
    """
    cleaned = _clean(text).replace(" ", "")
    lowered = cleaned.lower()
    for prefix in ("参考范围:", "参考区间:", "reference:", "ref:"):
        if lowered.startswith(prefix):
            cleaned, lowered = cleaned[len(prefix):], lowered[len(prefix):]
    if lowered in _QUALITATIVE:
        quality = _QUALITATIVE[lowered]
        return ReferenceInterval(qualitative=quality, text=quality, parsed=True)
    match = _RANGE.match(cleaned)
    if match:
        low, high = float(match[1]), float(match[2])
        return ReferenceInterval(low, high, True, True, None,
                                 f"{canonical_number(match[1])}-{canonical_number(match[2])}", True)
    match = _BOUND.match(cleaned)
    if match:
        op = {"≤": "<=", "≥": ">="}.get(match[1], match[1])
        value = float(match[2])
        number = canonical_number(match[2])
        if op.startswith("<"):
            return ReferenceInterval(None, value, True, op == "<=", None, f"{op}{number}", True)
        return ReferenceInterval(value, None, op == ">=", True, None, f"{op}{number}", True)
    return ReferenceInterval(text=cleaned, parsed=False)


def canonical_reference(text: Any) -> str:
    """The canonical text of a reference interval (see ``parse_reference``)."""
    return parse_reference(text).text


# ----------------------------------------------------------------------------------- results

_UP = ("↑", "⬆", "▲")
_DOWN = ("↓", "⬇", "▼")
_FLAG_SUFFIX = re.compile(r"^(.*?)\s*(?:\(?(?<![A-Za-z])([HL])\)?|(偏高|偏低|高|低))$")


def parse_result(text: Any) -> tuple[str, str]:
    """A result cell -> (canonical value, flag ``"H"`` / ``"L"`` / ``""``).

    Arrows anywhere in the cell and a trailing ``H`` / ``L`` / ``(H)`` / ``偏高`` / ``偏低`` become
    the flag; numeric values lose trailing zeros; qualitative values map to ``negative`` /
    ``positive``; anything else is returned cleaned (half-width, single spaces).
    """
    cleaned = _clean(text)
    flag = ""
    if any(a in cleaned for a in _UP):
        flag = "H"
    elif any(a in cleaned for a in _DOWN):
        flag = "L"
    for arrow in (*_UP, *_DOWN, "*"):
        cleaned = cleaned.replace(arrow, "")
    cleaned = cleaned.strip()
    match = _FLAG_SUFFIX.match(cleaned)
    if match and match[1].strip() and re.search(r"\d", match[1]):
        word = match[2] or match[3]
        flag = flag or ("H" if word in ("H", "高", "偏高") else "L")
        cleaned = match[1].strip()
    value = cleaned.replace(" ", "")
    if value.lower() in _QUALITATIVE:
        return _QUALITATIVE[value.lower()], flag
    if re.fullmatch(_NUMBER, value):
        return canonical_number(value), flag
    return cleaned, flag


def canonical_result(text: Any) -> str:
    """The canonical value of a result cell (flags dropped; see ``parse_result``)."""
    return parse_result(text)[0]


# ----------------------------------------------------------------------------------- names

#: canonical key -> synonyms (English and Chinese; compared lower-case without spaces).
ENTRY_NAME_SYNONYMS: dict[str, tuple[str, ...]] = {
    "wbc": ("WBC", "白细胞", "白细胞计数", "White blood cells", "White blood cell count", "Leukocytes"),
    "rbc": ("RBC", "红细胞", "红细胞计数", "Red blood cells", "Red blood cell count", "Erythrocytes"),
    "hgb": ("HGB", "Hb", "血红蛋白", "Hemoglobin", "Haemoglobin"),
    "hct": ("HCT", "红细胞压积", "红细胞比容", "Hematocrit"),
    "plt": ("PLT", "血小板", "血小板计数", "Platelets", "Platelet count"),
    "mcv": ("MCV", "平均红细胞体积", "Mean corpuscular volume"),
    "mch": ("MCH", "平均红细胞血红蛋白量", "Mean corpuscular hemoglobin"),
    "neut_pct": ("NEUT%", "中性粒细胞百分比", "Neutrophils %", "Neutrophils"),
    "lymph_pct": ("LYMPH%", "淋巴细胞百分比", "Lymphocytes %", "Lymphocytes"),
    "glu": ("GLU", "葡萄糖", "血糖", "空腹血糖", "Glucose", "Fasting glucose"),
    "alt": ("ALT", "GPT", "丙氨酸氨基转移酶", "谷丙转氨酶", "Alanine aminotransferase"),
    "ast": ("AST", "GOT", "天门冬氨酸氨基转移酶", "谷草转氨酶", "Aspartate aminotransferase"),
    "tbil": ("TBIL", "总胆红素", "Total bilirubin"),
    "alb": ("ALB", "白蛋白", "Albumin"),
    "crea": ("CREA", "Cr", "肌酐", "Creatinine"),
    "bun": ("BUN", "UREA", "尿素", "尿素氮", "Urea", "Blood urea nitrogen"),
    "ua": ("UA", "尿酸", "Uric acid"),
    "tc": ("TC", "CHOL", "总胆固醇", "Total cholesterol"),
    "tg": ("TG", "甘油三酯", "Triglycerides"),
    "ldl": ("LDL-C", "LDL", "低密度脂蛋白胆固醇", "LDL cholesterol"),
    "hdl": ("HDL-C", "HDL", "高密度脂蛋白胆固醇", "HDL cholesterol"),
    "k": ("K", "K+", "钾", "Potassium"),
    "na": ("Na", "Na+", "钠", "Sodium"),
    "crp": ("CRP", "C反应蛋白", "C-reactive protein"),
    "tsh": ("TSH", "促甲状腺激素", "Thyroid stimulating hormone"),
    "hba1c": ("HbA1c", "糖化血红蛋白", "Glycated hemoglobin"),
    "esr": ("ESR", "血沉", "红细胞沉降率", "Erythrocyte sedimentation rate"),
    "pro": ("PRO", "尿蛋白", "Urine protein", "Protein (urine)"),
    "hbsag": ("HBsAg", "乙肝表面抗原", "Hepatitis B surface antigen"),
}


def _name_key(text: str) -> str:
    return re.sub(r"[\s_]+", "", to_halfwidth(text).lower())


_NAME_INDEX: dict[str, str] = {}
for _key, _synonyms in ENTRY_NAME_SYNONYMS.items():
    for _synonym in (_key, *_synonyms):
        _NAME_INDEX.setdefault(_name_key(_synonym), _key)
_ABBREVIATION = re.compile(r"^(.*?)\s*[(\[]\s*([A-Za-z][A-Za-z0-9%+\-]*)\s*[)\]]$")


def canonical_entry_name(text: Any) -> str:
    """The synonym key of an entry name (``白细胞计数(WBC)`` -> ``wbc``), else the cleaned name
    lower-cased without spaces."""
    cleaned = _clean(text)
    key = _name_key(cleaned)
    if key in _NAME_INDEX:
        return _NAME_INDEX[key]
    match = _ABBREVIATION.match(cleaned)
    if match:
        for part in (match[2], match[1]):
            if _name_key(part) in _NAME_INDEX:
                return _NAME_INDEX[_name_key(part)]
    return key


# ----------------------------------------------------------------------------------- entries


@dataclass(frozen=True)
class NormalizedEntry:
    """One table row after normalisation (all fields canonical strings; ``flag`` from the result)."""

    entryname: str
    result: str
    unit: str
    reference: str
    flag: str = ""

    def key(self) -> tuple[str, str, str, str]:
        """The four compared fields (the flag is derived, not compared)."""
        return (self.entryname, self.result, self.unit, self.reference)


def normalize_entry(entry: dict[str, Any]) -> NormalizedEntry:
    """Normalise an ``{entryname, result, unit, reference}`` dict (missing keys read as ``""``)."""
    value, flag = parse_result(entry.get("result", ""))
    return NormalizedEntry(canonical_entry_name(entry.get("entryname", "")), value,
                           canonical_unit(entry.get("unit", "")), canonical_reference(entry.get("reference", "")), flag)


# ----------------------------------------------------------------------------------- abnormality


def abnormality(result: Any, reference: Any) -> str | None:
    """Compare a result with its reference interval.

    Returns:
        ``"high"`` / ``"low"`` / ``"normal"`` for a numeric result and a numeric interval (bounds
        as ``parse_reference`` says: ``3.5-5.5`` includes both ends, ``<5`` excludes 5);
        ``"normal"`` / ``"abnormal"`` for a qualitative result against a qualitative reference;
        ``None`` when either side cannot be read (no guess).
    """
    interval = parse_reference(reference)
    value = canonical_result(result)
    if not interval.parsed:
        return None
    if interval.qualitative is not None:
        if value in ("negative", "positive"):
            return "normal" if value == interval.qualitative else "abnormal"
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    if interval.low is not None and (number < interval.low or (number == interval.low and not interval.low_inclusive)):
        return "low"
    if interval.high is not None and (number > interval.high or (number == interval.high and not interval.high_inclusive)):
        return "high"
    return "normal"

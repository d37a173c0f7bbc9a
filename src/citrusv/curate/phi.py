"""Rule-based PHI (protected health information) finder and scrubber for English and Chinese text.

Pure functions over strings: ``find_phi`` returns typed spans, ``scrub_phi`` replaces each span
with a typed placeholder (``[PHONE]``, ``[NAME]``, ...). The rules aim at what doctor–patient
dialogues and reports carry:

=========  ===============================================================================
kind       what is found
=========  ===============================================================================
NAME       names after titles (Mr / Mrs / Ms / Dr / Prof; 先生 / 女士 / 小姐 / 医生 / 大夫 /
           主任 / 教授 / 护士 after a common surname) and after "Name:" / "姓名："
PHONE      Chinese mobiles (``1[3-9]`` + 9 digits, optional +86), landlines (``010-12345678``),
           North-American numbers with separators, any number after "phone / tel / 电话 / 手机"
ID         Chinese resident ID cards (17 digits + digit or X), US SSNs (``123-45-6789``)
MRN        record numbers after a label (MRN, medical record no., 住院号, 病历号, 门诊号, ...);
           only the number is replaced, the label stays
DATE       ``2024年3月5日``, ``3月5日``, ISO ``2024-03-05``, US ``03/05/2024``, ``March 5, 2024``
ADDRESS    Chinese province / city / district chains and ``…路12号`` street numbers; English
           ``12 Main Street`` with optional unit, city, state and ZIP; ``Boston, MA 02115``
EMAIL      e-mail addresses
AGE        ages over 89 ("age 92", "92 years old", "92岁", "年龄：95"); the number is replaced
=========  ===============================================================================

Lab values ("3.5-5.5 mmol/L"), blood pressure ("120/80"), doses ("500 mg") and sequence names
("T2 weighted") are not matched; ``tests/curate/test_phi.py`` pins these false-positive cases.
Rules miss names without a title and places without an administrative suffix: the scrubber is a
check, not a complete de-identifier.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["PHI_KINDS", "PHISpan", "find_phi", "has_phi", "scrub_phi"]

#: Every kind ``find_phi`` reports, in overlap priority order (earlier wins on equal length).
PHI_KINDS = ("EMAIL", "ID", "MRN", "PHONE", "DATE", "ADDRESS", "AGE", "NAME")
_LANGS = ("auto", "en", "zh")


@dataclass(frozen=True)
class PHISpan:
    """One piece of PHI: ``text == source[start:end]``."""

    kind: str
    start: int
    end: int
    text: str


# ----------------------------------------------------------------------------- patterns

_CJK = "\u4e00-\u9fff"
_MONTHS = (r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|"
           r"Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)")
# Common surnames (the most frequent ~100 cover the large majority of people).
_SURNAMES = ("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任"
             "沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔"
             "向汤常温康施文牛樊葛邢安齐易乔伍庞颜倪庄聂章鲁岳翟殷詹申欧耿关兰焦俞左柳甘祝包宁尚符舒阮柯纪梅童凌"
             "毕单季裴霍涂成苗谷盛曲翁冉骆蓝路游辛靳管柴蒙鲍华喻祁蒲房滕屈饶解牟艾尤阳时穆农司卓古吉缪简车项连芦"
             "麦褚娄窦戚岑景党宫费卜冷晏席卫米柏宗瞿桂全佟应臧闵苟邬边卞姬师和仇栾隋商刁沙荣巫寇桑郎甄丛仲虞敖巩"
             "明佘池查麻苑迟邝")
_ZH_TITLES = "先生|女士|小姐|医生|大夫|主任|教授|护士|老师|阿姨|师傅"
# Words that end right before a title but are not names ("谢谢医生", "请问大夫").
_ZH_NOT_NAMES = {"谢谢", "感谢", "请问", "您好", "你好", "主治", "住院", "实习", "值班", "管床", "责任", "副主任",
                 "主任", "专科", "门诊", "各位", "这位", "那位", "哪位", "全科", "家庭", "主管", "护理", "麻醉",
                 "外科", "内科", "儿科", "眼科", "牙科", "妇科", "急诊", "接诊", "首诊", "多谢", "明白", "好的"}
_PROVINCES = ("北京|天津|上海|重庆|河北|山西|辽宁|吉林|黑龙江|江苏|浙江|安徽|福建|江西|山东|河南|湖北|湖南|广东|海南|"
              "四川|贵州|云南|陕西|甘肃|青海|台湾|内蒙古|广西|西藏|宁夏|新疆|香港|澳门")

# (kind, language, compiled pattern, group holding the PHI: 0 for the whole match, what a match needs)
_RULES: list[tuple[str, str, re.Pattern[str], int, str]] = []


def _rule(kind: str, lang: str, pattern: str, group: int = 0, flags: int = 0, needs: str = "") -> None:
    """Register a rule; ``needs`` lists what any match must contain (``d`` a digit, ``c`` a CJK
    character, or literal characters such as ``@``), so texts without them skip the rule: each
    full pattern costs a scan of the text, and most texts have no digit or no CJK."""
    _RULES.append((kind, lang, re.compile(pattern, flags), group, needs))


# EMAIL
_rule("EMAIL", "any", r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}", needs="@")
# ID: Chinese resident ID card, US SSN
_rule("ID", "zh", r"(?<![\dA-Za-z])[1-9]\d{5}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[\dXx](?![\dA-Za-z])", needs="d")
_rule("ID", "en", r"(?<![\d-])\d{3}-\d{2}-\d{4}(?![\d-])", needs="d")
_rule("ID", "en", r"(?i)\b(?:SSN|social security (?:number|no\.?))\s*[:#]?\s*(\d[\d -]{6,}\d)", 1, needs="d")
# MRN: the number after a record label
_rule("MRN", "en", r"(?i)\b(?:MRN|medical record (?:number|no\.?|#)|record (?:number|no\.?|#)|patient id|"
                   r"hospital (?:number|no\.?)|account (?:number|no\.?)|case (?:number|no\.?))\s*[:#]?\s*"
                   r"([A-Z]{0,3}-?\d[\dA-Z-]{3,})", 1, needs="d")
_rule("MRN", "zh", r"(?:住院号|病历号|门诊号|病案号|就诊号|就诊卡号|医保卡号|医保号|社保卡号|登记号|ID号|患者ID|检查号|影像号)"
                   r"\s*[:：#]?\s*([A-Za-z]{0,3}-?\d[\dA-Za-z-]{2,})", 1, needs="d")
# PHONE
_rule("PHONE", "zh", r"(?<![\d.])(?:\+?86[-\s]?)?1[3-9]\d(?:[-\s]?\d{4}){2}(?!\d|\.\d)", needs="d")
_rule("PHONE", "zh", r"(?<![\d.-])0\d{2,3}-\d{7,8}(?!\d|\.\d)", needs="d")
_rule("PHONE", "en", r"(?<![\d/.-])(?:\+?1[-.\s])?(?:\(\d{3}\)\s?|\d{3}[-.\s])\d{3}[-.\s]\d{4}(?![\d/-]|\.\d)", needs="d")
_rule("PHONE", "any", r"(?i)(?:\b(?:phone|tel|telephone|mobile|cell|fax|contact)\b|电话|手机|联系方式|座机|微信)"
                      r"(?:\s*(?:number|no\.?|号码?))?\s*[:：#]?\s*(\+?\d[\d\s()-]{5,}\d)", 1, needs="d")
# DATE
_rule("DATE", "zh", r"(?:\d{4}|[一二三四五六七八九〇零]{4})\s*年\s*\d{1,2}\s*月(?:\s*\d{1,2}\s*[日号])?", needs="c")
_rule("DATE", "zh", r"(?<![\d.])\d{1,2}\s*月\s*\d{1,2}\s*[日号]", needs="cd")
_rule("DATE", "any", r"(?<![\d./-])(?:19|20)\d{2}[-/.](?:0?[1-9]|1[0-2])[-/.](?:0?[1-9]|[12]\d|3[01])(?![\d/-]|\.\d)", needs="d")
_rule("DATE", "en", r"(?<![\d./-])(?:0?[1-9]|1[0-2])/(?:0?[1-9]|[12]\d|3[01])/(?:\d{4}|\d{2})(?![\d/-]|\.\d)", needs="d")
_rule("DATE", "en", rf"\b{_MONTHS}\.?\s+\d{{1,2}}(?:st|nd|rd|th)?(?:,?\s+\d{{4}})?\b", needs="d")
_rule("DATE", "en", rf"\b\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTHS}\.?,?\s+\d{{4}}\b", needs="d")
_rule("DATE", "en", rf"\b{_MONTHS}\.?,?\s+(?:19|20)\d{{2}}\b", needs="d")
# ADDRESS
_ZH_ADMIN = rf"[{_CJK}]{{1,7}}?(?:市|州|盟|地区)"
_ZH_DIST = rf"[{_CJK}]{{1,7}}?(?:区|县|旗|镇|乡|街道)"
_ZH_ROAD = rf"[{_CJK}\d]{{1,10}}?(?:路|街|巷|大道|胡同|弄)(?:\d+号)?(?:\d+(?:栋|幢|号楼|单元|楼|层|室|号))*"
_rule("ADDRESS", "zh", rf"(?:{_PROVINCES})(?:省|市|自治区|特别行政区|壮族自治区|回族自治区|维吾尔自治区)?"
                       rf"(?:{_ZH_ADMIN})?(?:{_ZH_DIST})?(?:{_ZH_ROAD})?", needs="c")
_rule("ADDRESS", "zh", rf"[{_CJK}]{{2,5}}市(?:{_ZH_DIST})(?:{_ZH_ROAD})?", needs="c")
_rule("ADDRESS", "zh", rf"[{_CJK}]{{1,10}}?(?:路|街|巷|大道|胡同|弄)\d+号(?:\d+(?:栋|幢|号楼|单元|楼|层|室|号))*", needs="cd")
_rule("ADDRESS", "zh", rf"(?:住址|地址)\s*[:：]\s*([{_CJK}\d\-]{{3,30}})", 1, needs="c")
_rule("ADDRESS", "en", r"\b\d{1,5}\s+(?:[A-Z][a-z]+\s+){1,3}(?:Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|"
                       r"Drive|Dr|Court|Ct|Way|Place|Pl|Terrace|Highway|Hwy)\b\.?"
                       r"(?:,?\s*(?:Apt|Apartment|Suite|Unit|#)\.?\s*\w+)?"
                       r"(?:,\s*[A-Z][a-z]+(?:\s[A-Z][a-z]+)?)?(?:,\s*[A-Z]{2}(?:\s+\d{5}(?:-\d{4})?)?)?", needs="d")
_US_STATES = ("AL|AK|AZ|AR|CA|CO|CT|DE|FL|GA|HI|ID|IL|IN|IA|KS|KY|LA|ME|MD|MA|MI|MN|MS|MO|MT|NE|NV|NH|NJ|NM|NY|NC|"
              "ND|OH|OK|OR|PA|RI|SC|SD|TN|TX|UT|VT|VA|WA|WV|WI|WY|DC")
_rule("ADDRESS", "en", rf"\b[A-Z][a-z]+(?:\s[A-Z][a-z]+)?,\s*\b(?:{_US_STATES})\s+\d{{5}}(?:-\d{{4}})?\b", needs="d")
# AGE over 89 (the number only)
_rule("AGE", "en", r"(?i)\bage[d]?\s*(?:of\s*)?[:=]?\s*(\d{2,3})\b", 1, needs="d")
_rule("AGE", "en", r"(?i)\b(\d{2,3})\s*(?:-\s*)?(?:years?|yrs?|y/o|yo)\b", 1, needs="d")
_rule("AGE", "zh", r"(\d{2,3})\s*(?:周岁|岁)", 1, needs="cd")
_rule("AGE", "zh", r"年龄\s*[:：]?\s*(\d{2,3})", 1, needs="cd")
# NAME after titles
_rule("NAME", "en", r"\b(?:Mr|Mrs|Ms|Mx|Miss|Dr|Prof|Doctor|Professor|Nurse)\.?\s+([A-Z][a-zA-Z'-]+(?:\s+[A-Z][a-zA-Z'-]+)?)", 1)
_rule("NAME", "en", r"(?<!drug )(?<!brand )(?<!generic )(?<!trade )(?<!file )(?<!product )(?<!test )"
                   r"(?i:\b(?:patient(?:'s)? name|full name|name))\s*:\s*([A-Z][a-zA-Z'-]+(?:\s+[A-Z][a-zA-Z'-]+){0,2})", 1, needs=":")
_rule("NAME", "zh", rf"(?:姓名|患者姓名)\s*[:：]\s*([{_CJK}]{{2,4}})", 1, needs="c")

_ZH_TITLE_RE = re.compile(_ZH_TITLES)
_DIGIT = re.compile(r"\d")
_CJK_CHAR = re.compile(f"[{_CJK}]")
_CJK_RUN_END = re.compile(rf"[{_CJK}]{{1,3}}$")
# Surname characters that are more often function words right before a title ("和医生", "向医生").
_ZH_FUNCTION_SURNAMES = set("和向于时万成应全从与及而也还就都能")

# Words in front of a place that a leftmost match can swallow ("家在杭州市西湖区").
_ZH_PLACE_LEAD = re.compile(r"^(?:我|他|她|家|现|目前|现在|老家)?(?:住在|家在|来自|位于|住|在|是)")

_EN_NOT_NAMES = {"The", "This", "That", "And", "Or", "Please", "Thank", "Thanks", "Yes", "No", "Hello", "Hi"}


def _zh_title_names(text: str) -> list[tuple[int, int]]:
    """Spans of Chinese names right before a title: the longest 1-3 characters before it that
    start with a common surname and are not part of an ordinary word ("谢谢医生", "主任医生")."""
    spans = []
    for title in _ZH_TITLE_RE.finditer(text):
        run = _CJK_RUN_END.search(text, max(0, title.start() - 3), title.start())
        if run is None:
            continue
        before = run.group(0)
        for length in range(len(before), 0, -1):
            name = before[-length:]
            start = title.start() - length
            previous = text[start - 1] if start > 0 else ""
            if (name[0] in _SURNAMES and name[0] not in _ZH_FUNCTION_SURNAMES
                    and previous + name[0] not in _ZH_NOT_NAMES
                    and not any(name.startswith(w) for w in _ZH_NOT_NAMES)):
                spans.append((start, title.start()))
                break
    return spans


def _accept(kind: str, value: str) -> bool:
    if kind == "AGE":
        return 90 <= int(value) <= 150
    if kind == "NAME":
        return value.split()[0] not in _EN_NOT_NAMES and value not in _ZH_NOT_NAMES
    return True


# ----------------------------------------------------------------------------- API


def find_phi(text: str, lang: str = "auto") -> list[PHISpan]:
    """Every PHI span in ``text``, sorted by position, without overlaps.

    Args:
        text: the text.
        lang: ``"en"``, ``"zh"`` or ``"auto"`` (both rule sets; each only matches its own
            script, so mixed text is covered).

    Returns:
        Non-overlapping spans; where two rules overlap, the longer span wins, then the kind
        earlier in ``PHI_KINDS``.

    Raises:
        TypeError: ``text`` is not a string.
        ValueError: an unknown ``lang``.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a string, got {type(text).__name__}")
    if lang not in _LANGS:
        raise ValueError(f"lang must be one of {_LANGS}, got {lang!r}")
    found: list[PHISpan] = []
    has = {"d": _DIGIT.search(text) is not None, "c": _CJK_CHAR.search(text) is not None}
    for kind, rule_lang, pattern, group, needs in _RULES:
        if lang != "auto" and rule_lang not in ("any", lang):
            continue
        if not all(has.get(n, n in text) for n in needs):
            continue
        for match in pattern.finditer(text):
            start, end = match.span(group)
            value = match.group(group)
            stripped = value.rstrip()
            end -= len(value) - len(stripped)
            if kind == "ADDRESS":
                lead = _ZH_PLACE_LEAD.match(stripped)
                if lead:
                    start += lead.end()
            if start < end and _accept(kind, stripped):
                found.append(PHISpan(kind, start, end, text[start:end]))
    if lang in ("auto", "zh") and has["c"]:
        found.extend(PHISpan("NAME", a, b, text[a:b]) for a, b in _zh_title_names(text))
    priority = {kind: i for i, kind in enumerate(PHI_KINDS)}
    found.sort(key=lambda s: (-(s.end - s.start), priority[s.kind], s.start))
    kept: list[PHISpan] = []
    for span in found:
        if all(span.end <= k.start or span.start >= k.end for k in kept):
            kept.append(span)
    return sorted(kept, key=lambda s: s.start)


def has_phi(text: str, lang: str = "auto") -> bool:
    """Whether ``find_phi`` finds anything."""
    return bool(find_phi(text, lang))


def scrub_phi(text: str, lang: str = "auto", kinds: tuple[str, ...] | None = None,
              placeholder: str = "[{kind}]") -> tuple[str, list[PHISpan]]:
    """``text`` with every PHI span replaced by a typed placeholder, and the spans replaced.

    Args:
        text, lang: as ``find_phi``.
        kinds: only these kinds (default: all of ``PHI_KINDS``).
        placeholder: format string with ``{kind}``.

    Raises:
        ValueError: an unknown kind or ``lang``.
        TypeError: ``text`` is not a string.
    """
    if kinds is not None:
        unknown = sorted(set(kinds) - set(PHI_KINDS))
        if unknown:
            raise ValueError(f"unknown PHI kinds {unknown}; expected some of {PHI_KINDS}")
    spans = [s for s in find_phi(text, lang) if kinds is None or s.kind in kinds]
    pieces, cursor = [], 0
    for span in spans:
        pieces.append(text[cursor:span.start])
        pieces.append(placeholder.format(kind=span.kind))
        cursor = span.end
    pieces.append(text[cursor:])
    return "".join(pieces), spans

"""A pure-Python imitation of the Stanford PTBTokenizer used by the CIDEr reference scorers.

The reference CIDEr (``cidereval``, like ``pycocoevalcap``) runs the Java PTBTokenizer of
Stanford CoreNLP 3.4.1 with ``-preserveLines -lowerCase`` over all captions (one per line), splits
each output line on spaces and drops the tokens in :data:`PTB_PUNCTUATION`. This module rebuilds
that pipeline without Java for the text found in radiology reports.

How it works: a longest-match lexer in the style of the JFlex grammar behind the Java tokenizer.
At each position every rule is tried; the longest match wins (trailing context, written as a
lookahead group named ``tc``, counts towards the length but is not consumed); ties go to the
earlier rule. The rules and the abbreviation lists were written from the tokenizer's observable
behaviour on probe inputs (every two-, three- and four-letter lower-case word followed by a
period, every Basic Multilingual Plane character alone and inside a word, and report-like
sentences), not from its source.

Known differences from the Java tokenizer (none affects ordinary report prose):

* The reference tokenises all captions as one file, so context can cross a line break: a
  caption ending in ``no.``, ``fig.``, ``figs.``, ``nos.``, ``ca.``, ``art.``, ``op.``, ``pp.`` or
  ``prop.`` keeps its period when the next caption starts with a digit. Here each text is
  tokenised on its own (the period is split off).
* Input is lower-cased before lexing (the reference scorers lower-case the strings themselves,
  and ``-lowerCase`` lower-cases the output), so rules of the Java lexer that only fire on capital
  letters never fire. Passing mixed-case text therefore gives the tokens of its lower-cased form.
* Characters outside ASCII are classed by their Unicode category (letters, marks and digits join
  words; symbols and punctuation stand alone; controls, unassigned and private-use characters are
  deleted), where the Java lexer uses the Unicode tables of 2014. Characters added to Unicode
  since then, some combining marks and a few symbol blocks of rare scripts are classed
  differently.
* The sentence-final extra ``.`` that the Java lexer emits after some abbreviations is not
  produced (it is a punctuation token, dropped before CIDEr anyway).
* Characters that Java reads as line breaks (``\r``, ``\x0b``, ``\x0c``, U+2028, U+2029) split a
  caption into two output lines in the reference, which shifts every later caption onto the
  wrong image (a reference bug). Here they are spaces (the JD fork only replaces ``\n``).
* URLs and e-mail addresses are recognised by simplified patterns.
* Tokens that the Java lexer returns with an internal non-breaking space (telephone numbers
  such as ``555 123 4567``, fractions such as ``5 1/2``, SGML tags with attributes) come back the
  same way here; :func:`cider_tokenize` then splits them at the non-breaking space, exactly as
  the reference's ``str.split()`` does before counting n-grams.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from functools import lru_cache

__all__ = ["PTB_PUNCTUATION", "cider_tokenize", "ptb_tokenize"]

#: Tokens that the reference scorers drop after tokenisation. The list is written in the case
#: of the Java tokenizer's bracket symbols, but the tokenizer runs with ``-lowerCase``, so
#: ``-lrb-`` / ``-rrb-`` / ``-lcb-`` / ``-rcb-`` (and ``-lsb-`` / ``-rsb-``, never listed) are
#: *kept* in the reference. This quirk is reproduced.
PTB_PUNCTUATION = frozenset(
    ["''", "'", "``", "`", "-LRB-", "-RRB-", "-LCB-", "-RCB-", ".", "?", "!", ",", ":", "-", "--", "...", ";"]
)

# ---------------------------------------------------------------------------------------------
# Character classes. The lexer runs on a "shadow" copy of the text in which every non-ASCII
# character that has no rule of its own is replaced by one of three private-use placeholders
# (letter, digit, symbol) or by NUL (deleted); all whitespace becomes " ". Tokens are cut from
# the real text at the same offsets, so the shadow only steers the rules.
# ---------------------------------------------------------------------------------------------
_LETTER = "\ue001"
_DIGIT = "\ue002"
_SYMBOL = "\ue000"
_DELETED = "\x00"

# Non-ASCII characters with rules of their own keep their identity in the shadow text.
_APOS_CHARS = "'\u0092\u2019"
_QUOTE_CHARS = "\u0091\u0092\u0093\u0094\u00ab\u00bb\u2018\u2019\u201b\u201c\u201d\u2039\u203a"
_DASH_CHARS = "\u0096\u0097\u2013\u2014\u2015"
_WORD_HYPHENS = "\u058a\u2010\u2011"  # join words like "-" inside a word, deleted alone
_FRACTIONS = {"\u00bc": "1/4", "\u00bd": "1/2", "\u00be": "3/4", "\u2153": "1/3", "\u2154": "2/3"}
_CURRENCY = {"\u00a2": "cents", "\u00a3": "#", "\u00a4": "$", "\u20ac": "$", "\u20a0": "$", "\x80": "$"}
_SUPERSCRIPTS = "\u207a\u207b\u208a\u208b\u2070\u00b9\u00b2\u00b3\u2074\u2075\u2076\u2077\u2078\u2079" + "".join(
    chr(c) for c in range(0x2080, 0x208A)
)
_KEEP = set(_QUOTE_CHARS + _DASH_CHARS + _WORD_HYPHENS + _SUPERSCRIPTS + "\u2026\u0085\u00ad\u2044") | set(_FRACTIONS)
_SPACES = set(" \t\n\r\x0b\x0c\u00a0\u2028\u2029\u3000") | {chr(c) for c in range(0x2000, 0x200B)}


#: Non-ASCII characters that the Java lexer returns as one-character symbol tokens (observed on
#: every BMP character); other non-letters outside ASCII are deleted by it.
_SYMBOL_RANGES = (
    "\u00a1\u00a1\u00a5\u00a9\u00ac\u00ac\u00ae\u00b4\u00b6\u00b9\u00bf\u00bf\u00d7\u00d7\u00f7\u00f7"
    "\u037e\u037e\u0387\u0387\u0589\u0589\u05be\u05be\u05c0\u05c0\u05c3\u05c3\u05c6\u05c6\u05f3\u05f4"
    "\u0600\u0603\u0606\u060c\u0614\u0614\u061b\u061b\u061e\u061f\u066a\u066a\u066d\u066d\u06d4\u06d4"
    "\u0700\u070d\u07f6\u07f8\u0964\u0965\u0e3f\u0e3f\u0e4f\u0e4f\u1fbd\u1fbd\u2016\u2017\u201a\u201a"
    "\u201e\u2023\u2030\u2038\u203b\u203b\u203e\u2042\u2044\u2044\u2070\u2070\u2074\u207e\u2080\u208e"
    "\u20a4\u20a4\u2100\u2101\u2103\u2106\u2108\u2109\u2114\u2114\u2116\u2118\u211e\u2123\u2125\u2125"
    "\u2127\u2127\u2129\u2129\u212e\u212e\u213a\u213b\u2140\u2144\u214a\u214d\u214f\u214f\u2155\u215e"
    "\u2190\u2bff\u3001\u3002\u3012\u3012\u30fb\u30fb\uff01\uff0f\uff1a\uff20\uff3b\uff40\uff5b\uff65"
    "\uffe0\uffe1\uffe5\uffe6"
)
_SYMBOL_CLASS = re.compile("[" + "".join(f"{a}-{b}" for a, b in zip(_SYMBOL_RANGES[::2], _SYMBOL_RANGES[1::2])) + "]")
#: Non-letter characters that the Java lexer keeps inside words (spacing modifier letters etc.).
_WORDLIKE_CLASS = re.compile("[\u02c2-\u02ff\u0375\u0384\u0385\u055a-\u055f]")


@lru_cache(maxsize=4096)
def _shadow_char(ch: str) -> str:
    """The placeholder that stands for ``ch`` in the shadow text."""
    if ch in _SPACES:
        return " "
    if ch.isascii():
        return ch if ch.isprintable() else _DELETED
    if ord(ch) > 0xFFFF:  # the Java lexer does not tokenise characters outside the BMP
        return _DELETED
    if ch in _KEEP:
        return ch
    if ch in _CURRENCY:
        return _SYMBOL
    cat = unicodedata.category(ch)
    if cat[0] == "L" or cat in ("Mn", "Mc") or _WORDLIKE_CLASS.match(ch):
        return _LETTER
    if cat == "Nd":
        return _DIGIT
    if _SYMBOL_CLASS.match(ch):
        return _SYMBOL
    return _DELETED


def _shadow(text: str) -> str:
    if text.isascii():
        return "".join(ch if ch.isprintable() else (" " if ch in _SPACES else _DELETED) for ch in text)
    return "".join(_shadow_char(ch) for ch in text)


# Regex building blocks (on the lower-cased shadow text).
_L = f"[a-z{_LETTER}]"  # letter
_D = f"[0-9{_DIGIT}]"  # digit
_AN = f"[a-z0-9{_LETTER}{_DIGIT}]"  # letter or digit
_APOS = f"[{_APOS_CHARS}]"
_APOSETC = f"[{_APOS_CHARS}`\u0091\u2018\u201b]"
_WORD = f"{_L}{_AN}*(?:[.!?]{_L}{_AN}*)*"
_ACRO = r"[a-z](?:\.[a-z])*"
_THING = f"(?:[dol]{_APOS}{_AN})?{_AN}+(?:[-_{_WORD_HYPHENS}](?:[dol]{_APOS}{_AN})?{_AN}+)*"
_HTHING = f"[a-z0-9][a-z0-9.,]*(?:[-{_WORD_HYPHENS}](?:[a-z0-9]+|{_ACRO}\\.))+"  # ASCII only
_NUM = rf"{_D}+(?:[.:,\u00ad]{_D}+)*|(?:[.:,]{_D}+)+"

#: Words that keep a following period whatever comes next (observed on lower-case input; the
#: Java lists are month, weekday, US-state, company and title abbreviations). The first group
#: also claims the two characters after the period, so "sq.d" is "sq." + "d"; with the second
#: group the longer word wins ("mr.x" is one token).
_ABBREVIATIONS_GREEDY = ["al", "co", "ct", "ga", "jr", "ky", "md", "mo", "rd", "rt", "sq", "sr", "va", "vt", "ala", "apr", "aug", "bhd", "cos", "dak", "dec", "esq", "est", "etc", "ext", "feb", "fla", "fri", "inc", "ind", "jan", "jul", "jun", "kan", "ltd", "mar", "mon", "neb", "nev", "nov", "oct", "plc", "pte", "pty", "sep", "seq", "sys", "tel", "thu", "tue", "wed", "wis", "wyo", "ariz", "assn", "bldg", "blvd", "bros", "colo", "conn", "corp", "intl", "kans", "mich", "minn", "mont", "okla", "penn", "ppte", "ppty", "ptes", "ptys", "sept", "tenn", "tues", "univ", "wisc", "calif", "pptes", "pptys", "thurs", "bancorp", "ph.d"]
_ABBREVIATIONS = ["cf", "dr", "ft", "lt", "mr", "ms", "mt", "ph", "st", "vs", "wm", "adj", "adm", "adv", "ave", "cie", "col", "cpl", "det", "drs", "ens", "gen", "gov", "hon", "jos", "maj", "mfg", "mme", "mrs", "mtg", "pfc", "pvt", "rep", "rev", "sen", "sfc", "sgt", "spc", "ste", "alex", "asst", "atty", "brig", "capt", "cmdr", "dept", "elec", "govs", "insp", "invt", "mlle", "msgr", "natl", "pres", "prof", "reps", "sens", "supt", "assoc", "attys", "comdr", "lieut", "profs", "supts", "messrs", "ed.d"]
#: Words that keep a following period only before a number ("no. 3", "fig. 2a").
_NUMBER_ABBREVIATIONS = ["ca", "fig", "figs", "prop", "no", "nos", "art", "pp", "op"]


def _alternation(words: list[str]) -> str:
    return "|".join(sorted((re.escape(w) for w in words), key=len, reverse=True))


def _emit(tok: str) -> list[str]:
    return [tok]


def _bracket(tok: str) -> list[str]:
    return [{"(": "-lrb-", ")": "-rrb-", "[": "-lsb-", "]": "-rsb-", "{": "-lcb-", "}": "-rcb-"}[tok]]


def _phone(tok: str) -> list[str]:
    return [tok.replace("(", "-lrb-").replace(")", "-rrb-").replace(" ", "\u00a0")]


def _nbsp(tok: str) -> list[str]:
    return [re.sub(r"\s", "\u00a0", tok)]


def _apostrophe(tok: str) -> list[str]:
    return [re.sub(_APOS, "'", tok)]


def _nt(tok: str) -> list[str]:
    return ["n't"]


_QUOTE_MAP = {
    **dict.fromkeys("`\u0091\u2018\u201b\u2039", "`"),
    **dict.fromkeys("'\u0092\u2019\u203a", "'"),
    **dict.fromkeys("\u0093\u201c\u00ab", "``"),
    **dict.fromkeys("\u0094\u201d\u00bb", "''"),
}


def _quote(tok: str) -> list[str]:
    return ["".join(_QUOTE_MAP[ch] for ch in tok)]


def _double_quote(tok: str) -> list[str]:
    return ["``" if tok == '"' else "''"]  # opening only before a word (see the rule)


def _fraction(tok: str) -> list[str]:
    return [_FRACTIONS[tok]]


def _symbol(tok: str) -> list[str]:
    return [_CURRENCY.get(tok, tok)]


def _soft_hyphen_free(tok: str) -> list[str]:
    return [tok.replace("\u00ad", "")]


def _const(value: str) -> Callable[[str], list[str]]:
    return lambda tok: [value]


_Rule = tuple[re.Pattern[str], Callable[[str], list[str]], int]

# (pattern, action, pushback): the action maps the consumed text to tokens; ``pushback`` chars
# at the end of the match are given back to the input (JFlex ``yypushback``). Order = priority
# among matches of equal length.
_RULE_SPECS: list[tuple[str, Callable[[str], list[str]], int]] = [
    (r"cannot", _emit, 3),
    (r"gonna|gotta|lemme|gimme|wanna", _emit, 2),
    (r"'twas", _emit, 3),
    (r"'tis", _emit, 2),
    (  # SGML tag: <name attr attr=value ...> or <!...>
        (
            r"<(?:[!?][a-z-][^>]*|/?[a-z][a-z0-9:.-]*(?: +[a-z][a-z0-9_:.-]*(?: *= *(?:'[^']*'|\"[^\"]*\""
            r"|[a-z][a-z0-9_:.-]*))?)* */?)>"
        ),
        _nbsp,
        0,
    ),
    (r"[<>]?[:;=][-o*']?[()dp\\{@|\[\]](?![a-z0-9])", lambda tok: [tok.replace("(", "-lrb-").replace(")", "-rrb-")], 0),
    (f"&(?:md|mdash|ndash);|[{_DASH_CHARS}]", _const("--"), 0),
    (r"&amp;", _const("&"), 0),
    (r"&(?:ht|tl|ur|lr|qc|ql|qr|odq|cdq|#[0-9]+);", _emit, 0),
    (f"{_WORD}(?=(?P<tc>{_APOS}(?:m|s|d|re|ve|ll)))", _soft_hyphen_free, 0),
    (f"[a-z\u00ad]*[a-mo-z]\u00ad*(?=(?P<tc>n{_APOS}t))", _soft_hyphen_free, 0),
    (_WORD.replace(f"{_L}{_AN}*", f"{_L}[a-z0-9{_LETTER}{_DIGIT}\u00ad]*"), _soft_hyphen_free, 0),
    (
        (
            f"{_APOS}n{_APOS}?|{_APOS}(?:em|till?|cause|twixt|[1-9]0s)|[ldjy]{_APOS}|n{_APOSETC}{_L}{{2,}}"
            f"|{_L}*[aeiouy]{_APOSETC}[aeiou]{_L}*|c{_APOSETC}mon|li{_APOSETC}l|nat{_APOSETC}l"
        ),
        _emit,
        0,
    ),
    (r"(?:ftp|svn|https?|mailto)://[^ <>|`\"(){}\[\]]+[^ <>|`\"(){}\[\].!?,;:&'*-]", _emit, 0),
    (r"www\.(?:[^ .!?,<>|`()\[\]{}]+\.)+[a-z]{2,4}", _emit, 0),
    (r"<?[a-z0-9][^ \"<>|(){}]*@(?:[^ \"<>|(){}.]+\.)*[^ \"<>|(){}.]+>?", _emit, 0),  # e-mail
    (r"@[a-z_][a-z_0-9]*", _emit, 0),
    (f"#{_L}+", _emit, 0),
    (f"{_APOS}(?:m|s|d|re|ve|ll)(?=(?P<tc>[^a-z]))", _apostrophe, 0),
    (f"{_APOS}{_D}{_D}(?=(?P<tc> ))", _emit, 0),  # '90
    (f"n{_APOS}t", _nt, 0),
    (f"{_D}{{1,2}}[-/]{_D}{{1,2}}[-/]{_D}{{2,4}}", _emit, 0),  # date
    (f"[-+]?(?:{_NUM})", _emit, 0),
    (f"(?:{_D}{{1,4}}[- ])?{_D}{{1,4}}(?:\\\\?/|\u2044){_D}{{1,4}}", _nbsp, 0),  # fraction
    (f"[{''.join(_FRACTIONS)}]", _fraction, 0),
    ("[\u207a\u207b\u208a\u208b]?(?:[\u2070\u00b9\u00b2\u00b3\u2074-\u2079]+|[\u2080-\u2089]+)", _emit, 0),
    (r"-(?:rrb|lrb|rcb|lcb|rsb|lsb)-|c\.d\.s|pro-|anti-|s(?:&|&amp;)p-500|s(?:&|&amp;)ls|cap'n", _emit, 0),
    (r"[a-z0-9]+(?:-[a-z]+){0,2}(?:\\?/[a-z0-9]+(?:-[a-z]+){0,2}){1,2}", _emit, 0),  # and/or
    (r"\$|#", _emit, 0),
    (f"(?:{_alternation(_ABBREVIATIONS_GREEDY)})\\.(?=(?P<tc>[\\s\\S]{{0,2}}))", _emit, 0),
    (f"(?:{_alternation(_ABBREVIATIONS)})\\.", _emit, 0),
    (f"{_ACRO}\\.", _emit, 0),
    (f"(?:{_alternation(_NUMBER_ABBREVIATIONS)})\\.(?=(?P<tc> ?{_D}))", _emit, 0),
    (f"(?:{_WORD}|{_THING}|{_HTHING})\\.(?=(?P<tc>[,;:]))", _emit, 0),
    (  # telephone number
        (
            f"(?:\\({_D}{{2,3}}\\) ?|(?:\\+\\+?)?(?:{_D}{{2,4}}[- ])?{_D}{{2,4}}[- /])"
            f"{_D}{{3,4}}[- ]?{_D}{{3,5}}|(?:(?:\\+\\+?)?{_D}{{2,4}}\\.)?{_D}{{2,4}}\\.{_D}{{3,4}}\\.{_D}{{3,5}}"
        ),
        _phone,
        0,
    ),
    (r'"(?=[a-z0-9$])', _double_quote, 0),
    (r'"', _const("''"), 0),
    (r"&quot;", _const("''"), 0),
    (r"<|&lt;", _const("<"), 0),
    (r">|&gt;", _const(">"), 0),
    (r"[(){}\[\]]", _bracket, 0),
    (r"-{2,}", _const("--"), 0),
    (r"-", _emit, 0),
    (r"\.{3,5}|(?:\. ){2,4}\.|[\u2026\u0085]", _const("..."), 0),
    (r"@+|#+|_+", _emit, 0),
    (r"\*+|(?:\\\*){1,3}", _emit, 0),
    (r"[,;:]", _emit, 0),
    (r"\.|[?!]+", _emit, 0),
    (r"=|/", _emit, 0),
    (_HTHING, _emit, 0),
    (_THING, _emit, 0),
    (r"'(?=(?P<tc>[a-z][^ ]))", _const("`"), 0),  # an apostrophe opening a word is a left quote
    (f"{_APOS}(?:m|s|d|re|ve|ll)", _apostrophe, 0),
    (f"''|'|[{_QUOTE_CHARS}`]{{1,2}}", _quote, 0),
    (r"<<|>>", _emit, 0),
    (f"[+%&~^|\\\\{_SYMBOL}]", _symbol, 0),
    ("\u00ad", _const("-"), 0),
    (f"[{_WORD_HYPHENS}]", lambda tok: [], 0),  # deleted when not inside a word
]


@lru_cache(maxsize=1)
def _rules() -> list[_Rule]:
    return [(re.compile(p), action, pushback) for p, action, pushback in _RULE_SPECS]


def ptb_tokenize(text: str) -> list[str]:
    """Tokenise one text the way ``PTBTokenizer -preserveLines -lowerCase`` (CoreNLP 3.4.1) does.

    Args:
        text: one caption or report; line breaks are treated as spaces.

    Returns:
        The lower-cased tokens, punctuation included (``-lrb-`` for "(", ``--`` for dashes,
        ``...`` for ellipses, ````` / ``'`` for quotes). A token may hold a non-breaking space
        (see the module notes).

    Example:
        >>> ptb_tokenize("Heart size is normal (2.5 cm); no effusion.")
        ['heart', 'size', 'is', 'normal', '-lrb-', '2.5', 'cm', '-rrb-', ';', 'no', 'effusion', '.']
    """
    text = text.lower()
    # Two trailing spaces stand for the line break and next line that follow each caption in
    # the reference's input file (some rules look two characters ahead).
    shadow = _shadow(text) + "  "
    rules = _rules()
    tokens: list[str] = []
    pos, end = 0, len(text)
    while pos < end:
        ch = shadow[pos]
        if ch == " " or ch == _DELETED:
            pos += 1
            continue
        best_len, best = 0, None
        for rule in rules:
            m = rule[0].match(shadow, pos)
            if m is None:
                continue
            tc_end = m.end("tc") if "tc" in rule[0].groupindex and m.group("tc") is not None else m.end()
            length = max(tc_end, m.end()) - pos
            if length > best_len:
                best_len, best = length, (m, rule)
        if best is None:  # a lone character no rule covers (cannot happen with the symbol rule)
            tokens.append(text[pos])
            pos += 1
            continue
        m, (_, action, pushback) = best
        consumed = m.end() - pos - pushback
        tokens.extend(action(text[pos : pos + consumed]))
        pos += consumed
    return tokens


def cider_tokenize(text: str) -> list[str]:
    """Tokens that the reference CIDEr counts: PTB tokens minus :data:`PTB_PUNCTUATION`.

    This is ``cidereval`` / ``pycocoevalcap``'s ``PTBTokenizer.tokenize`` followed by the
    ``str.split()`` of their n-gram counter, for a single text.

    Example:
        >>> cider_tokenize("No pleural effusion (small), see e.g. prior.")
        ['no', 'pleural', 'effusion', '-lrb-', 'small', '-rrb-', 'see', 'e.g.', 'prior']
    """
    kept = [tok for tok in ptb_tokenize(text) if tok not in PTB_PUNCTUATION]
    return " ".join(kept).split()

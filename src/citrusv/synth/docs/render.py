"""Rendered medical documents with exact ground truth: lab test reports and general documents.

``random_lab_report(rng, language)`` draws a report (entries with name, result, unit, reference
interval and an H / L flag that agrees with the numbers); ``render_lab_report`` draws it as a
page (title, patient block, one- or two-column table with horizontal rules, flag arrows, footer,
a red stamp). ``random_general_document`` / ``render_general_document`` do the same for imaging
reports, prescriptions and discharge summaries (key-value fields plus free text).
``citrusv.synth.docs.artefacts`` then adds capture artefacts.

Fonts. Latin text uses Pillow's built-in scalable font (``ImageFont.load_default(size)``, bundled
with Pillow >= 10.1), so pages look the same on every machine. Chinese text uses a CJK TrueType font
when one is found (``font_cjk`` argument, the ``CITRUSV_CJK_FONT`` environment variable, or common
system paths such as Noto Sans CJK / WenQuanYi); without one, each CJK character is drawn as a
deterministic pseudo-glyph (strokes chosen from the character's code point) in a square cell.
Pseudo-glyph pages keep the layout and geometry of a Chinese report (enough for geometry tests
and for pipeline plumbing) but are not readable: do not train a model on them. ``font_report()``
says which case applies. Arrows (↑ ↓) are drawn as vector shapes, independent of the font.
"""

from __future__ import annotations

import os
import random
import zlib
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont

from .normalize import abnormality

__all__ = [
    "DOC_TYPES",
    "LAB_TESTS",
    "GeneralDocument",
    "LabEntry",
    "LabReport",
    "LabTest",
    "find_cjk_font",
    "font_report",
    "random_general_document",
    "random_lab_report",
    "render_general_document",
    "render_lab_report",
]

_CJK_FONT_CANDIDATES = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/arphic/uming.ttc",
    "/System/Library/Fonts/PingFang.ttc",
    "C:/Windows/Fonts/msyh.ttc",
    "C:/Windows/Fonts/simsun.ttc",
)


def find_cjk_font(path: str | os.PathLike[str] | None = None) -> Path | None:
    """A TrueType / OpenType font with CJK glyphs: ``path``, else ``$CITRUSV_CJK_FONT``, else the
    first existing common system path; ``None`` when there is none.

    Raises:
        FileNotFoundError: ``path`` (or the environment variable) names a missing file.
    """
    explicit = path or os.environ.get("CITRUSV_CJK_FONT")
    if explicit:
        if not Path(explicit).is_file():
            raise FileNotFoundError(f"CJK font not found: {explicit}")
        return Path(explicit)
    return next((Path(p) for p in _CJK_FONT_CANDIDATES if Path(p).is_file()), None)


def font_report() -> dict[str, Any]:
    """Which fonts rendering uses here: ``{"latin": "pillow-builtin", "cjk": path or "pseudo-glyphs"}``."""
    cjk = find_cjk_font()
    return {"latin": "pillow-builtin", "cjk": str(cjk) if cjk else "pseudo-glyphs"}


# ------------------------------------------------------------------------------------ catalogue


@dataclass(frozen=True)
class LabTest:
    """One analyte of the catalogue: names, unit, normal interval and printed decimals.

    ``low`` / ``high`` of ``None`` make a one-sided interval (``<5``); ``qualitative`` tests have
    reference ``negative`` and results negative / positive.
    """

    key: str
    name_en: str
    name_zh: str
    unit: str
    low: float | None
    high: float | None
    decimals: int
    qualitative: bool = False


LAB_TESTS: tuple[LabTest, ...] = (
    LabTest("wbc", "White blood cells", "白细胞计数", "10^9/L", 3.5, 9.5, 2),
    LabTest("rbc", "Red blood cells", "红细胞计数", "10^12/L", 4.3, 5.8, 2),
    LabTest("hgb", "Hemoglobin", "血红蛋白", "g/L", 130, 175, 0),
    LabTest("hct", "Hematocrit", "红细胞压积", "%", 40, 50, 1),
    LabTest("plt", "Platelets", "血小板计数", "10^9/L", 125, 350, 0),
    LabTest("mcv", "Mean corpuscular volume", "平均红细胞体积", "fL", 82, 100, 1),
    LabTest("mch", "Mean corpuscular hemoglobin", "平均红细胞血红蛋白量", "pg", 27, 34, 1),
    LabTest("neut_pct", "Neutrophils %", "中性粒细胞百分比", "%", 40, 75, 1),
    LabTest("lymph_pct", "Lymphocytes %", "淋巴细胞百分比", "%", 20, 50, 1),
    LabTest("glu", "Glucose", "葡萄糖", "mmol/L", 3.9, 6.1, 2),
    LabTest("alt", "Alanine aminotransferase", "丙氨酸氨基转移酶", "U/L", 9, 50, 0),
    LabTest("ast", "Aspartate aminotransferase", "天门冬氨酸氨基转移酶", "U/L", 15, 40, 0),
    LabTest("tbil", "Total bilirubin", "总胆红素", "umol/L", 3.4, 20.5, 1),
    LabTest("alb", "Albumin", "白蛋白", "g/L", 40, 55, 1),
    LabTest("crea", "Creatinine", "肌酐", "umol/L", 57, 97, 0),
    LabTest("bun", "Urea", "尿素", "mmol/L", 3.1, 8.0, 2),
    LabTest("ua", "Uric acid", "尿酸", "umol/L", 208, 428, 0),
    LabTest("tc", "Total cholesterol", "总胆固醇", "mmol/L", None, 5.2, 2),
    LabTest("tg", "Triglycerides", "甘油三酯", "mmol/L", None, 1.7, 2),
    LabTest("ldl", "LDL cholesterol", "低密度脂蛋白胆固醇", "mmol/L", None, 3.4, 2),
    LabTest("hdl", "HDL cholesterol", "高密度脂蛋白胆固醇", "mmol/L", 1.0, None, 2),
    LabTest("k", "Potassium", "钾", "mmol/L", 3.5, 5.3, 2),
    LabTest("na", "Sodium", "钠", "mmol/L", 137, 147, 1),
    LabTest("crp", "C-reactive protein", "C反应蛋白", "mg/L", None, 10, 1),
    LabTest("tsh", "Thyroid stimulating hormone", "促甲状腺激素", "uIU/mL", 0.27, 4.2, 2),
    LabTest("hba1c", "Glycated hemoglobin", "糖化血红蛋白", "%", 4.0, 6.0, 1),
    LabTest("esr", "Erythrocyte sedimentation rate", "红细胞沉降率", "mm/h", 0, 15, 0),
    LabTest("pro", "Urine protein", "尿蛋白", "", None, None, 0, qualitative=True),
    LabTest("hbsag", "Hepatitis B surface antigen", "乙肝表面抗原", "", None, None, 0, qualitative=True),
)


@dataclass
class LabEntry:
    """One row of a lab report, exactly as printed (the ground truth of a full parse).

    ``flag`` is ``"H"``, ``"L"`` or ``""`` (printed as ↑ / ↓ in Chinese layouts, H / L in English);
    ``status`` is ``abnormality(result, reference)``: high / low / normal / abnormal.
    """

    entryname: str
    result: str
    unit: str
    reference: str
    flag: str = ""
    status: str = "normal"

    def table_row(self) -> dict[str, str]:
        """The four MedDocBench fields."""
        return {"entryname": self.entryname, "result": self.result, "unit": self.unit, "reference": self.reference}


@dataclass
class LabReport:
    """A lab test report and its layout choices (all synthetic; no real patient data)."""

    doc_id: str
    language: str
    title: str
    header: list[tuple[str, str]]
    entries: list[LabEntry]
    footer: list[str]
    columns: int = 1
    stamp: bool = True

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LabReport:
        data = dict(data)
        data["header"] = [tuple(pair) for pair in data["header"]]
        data["entries"] = [LabEntry(**entry) for entry in data["entries"]]
        return cls(**data)


def _fmt(value: float, decimals: int) -> str:
    return f"{value:.{decimals}f}"


def _reference_text(test: LabTest, language: str, rng: random.Random) -> str:
    if test.qualitative:
        return "阴性" if language == "zh" else rng.choice(["Negative", "negative"])
    if test.low is None:
        return f"<{_fmt(test.high, test.decimals)}" if rng.random() < 0.7 else f"≤{_fmt(test.high, test.decimals)}"
    if test.high is None:
        return f">{_fmt(test.low, test.decimals)}" if rng.random() < 0.5 else f"≥{_fmt(test.low, test.decimals)}"
    sep = rng.choice(["-", "~"]) if language == "zh" else "-"
    return f"{_fmt(test.low, test.decimals)}{sep}{_fmt(test.high, test.decimals)}"


def _draw_result(test: LabTest, rng: random.Random, p_abnormal: float, language: str) -> str:
    if test.qualitative:
        positive = rng.random() < p_abnormal
        if language == "zh":
            return "阳性(+)" if positive else "阴性(-)"
        return "Positive" if positive else "Negative"
    low = test.low if test.low is not None else (test.high or 1) * 0.2
    high = test.high if test.high is not None else low * 3
    span = high - low
    roll = rng.random()
    if roll < p_abnormal / 2 and test.high is not None:
        value = high + span * rng.uniform(0.05, 0.8)
    elif roll < p_abnormal and test.low is not None and low - span * 0.5 > 0:
        value = low - span * rng.uniform(0.05, 0.5)
    else:
        value = rng.uniform(low + span * 0.02, high - span * 0.02)
    return _fmt(value, test.decimals)


_FIRST = ("Wang", "Li", "Zhang", "Liu", "Chen", "Yang", "Smith", "Brown", "Garcia", "Khan")
_DEPTS_EN = ("Internal Medicine", "Endocrinology", "Cardiology", "Outpatient", "Nephrology")
_DEPTS_ZH = ("内科", "内分泌科", "心内科", "门诊", "肾内科", "消化内科")
_SAMPLES = (("Serum", "血清"), ("Whole blood", "全血"), ("Urine", "尿液"))


def random_lab_report(rng: random.Random, language: str = "en", *, doc_id: str = "doc", n_entries: int | None = None,
                      p_abnormal: float = 0.3, columns: int | None = None) -> LabReport:
    """A random lab report. Flags and statuses follow the printed numbers (``abnormality``).

    Raises:
        ValueError: unknown ``language`` (``"en"`` / ``"zh"``) or ``n_entries`` outside 1..len(LAB_TESTS).
    """
    if language not in ("en", "zh"):
        raise ValueError(f"language must be 'en' or 'zh', got {language!r}")
    n = n_entries if n_entries is not None else rng.randint(6, 18)
    if not 1 <= n <= len(LAB_TESTS):
        raise ValueError(f"n_entries must be in 1..{len(LAB_TESTS)}, got {n}")
    tests = rng.sample(LAB_TESTS, n)
    entries = []
    for test in tests:
        result = _draw_result(test, rng, p_abnormal, language)
        reference = _reference_text(test, language, rng)
        status = abnormality(result, reference)
        if status is None:  # every catalogue entry is decidable; a failure is a bug here
            raise AssertionError(f"undecidable synthetic entry {test.key}: {result!r} vs {reference!r}")
        flag = {"high": "H", "low": "L"}.get(status, "")
        if status == "abnormal":
            flag = "H"
        name = test.name_zh if language == "zh" else test.name_en
        if rng.random() < 0.3:
            name = f"{name}({test.key.split('_')[0].upper()})"
        entries.append(LabEntry(name, result, test.unit, reference, flag, status))
    sample = rng.choice(_SAMPLES)
    age, sex = rng.randint(18, 90), rng.choice(["M", "F"])
    patient = f"{rng.choice(_FIRST)} {chr(65 + rng.randrange(26))}."
    if language == "zh":
        title = rng.choice(["第一人民医院 检验报告单", "市中心医院检验科 检验报告", "社区卫生服务中心 化验单"])
        header = [("姓名", patient), ("性别", "男" if sex == "M" else "女"), ("年龄", f"{age}岁"),
                  ("科室", rng.choice(_DEPTS_ZH)), ("标本", sample[1]), ("条码号", str(rng.randint(10**9, 10**10 - 1)))]
        footer = [f"检验者: {rng.choice(_FIRST)}  审核者: {rng.choice(_FIRST)}",
                  f"报告时间: 2025-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}  本结果仅对本标本负责"]
    else:
        title = rng.choice(["City General Hospital - Laboratory Report", "Clinical Laboratory Test Report",
                            "Community Health Centre Lab Results"])
        header = [("Name", patient), ("Sex", sex), ("Age", str(age)), ("Dept", rng.choice(_DEPTS_EN)),
                  ("Specimen", sample[0]), ("Sample ID", str(rng.randint(10**9, 10**10 - 1)))]
        footer = [f"Tested by: {rng.choice(_FIRST)}   Verified by: {rng.choice(_FIRST)}",
                  f"Reported: 2025-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}   Results relate to the sample tested."]
    if columns is None:
        columns = 2 if n >= 12 and rng.random() < 0.4 else 1
    return LabReport(doc_id, language, title, header, entries, footer, columns, rng.random() < 0.7)


# ------------------------------------------------------------------------------------ drawing


@lru_cache(maxsize=16)
def _latin_font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.load_default(size)  # type: ignore[return-value]


@lru_cache(maxsize=16)
def _cjk_font(path: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size)


def _is_cjk(ch: str) -> bool:
    code = ord(ch)
    return 0x3400 <= code <= 0x9FFF or 0xF900 <= code <= 0xFAFF or 0xFF00 <= code <= 0xFFEF or 0x3000 <= code <= 0x303F


class _Painter:
    """Draws mixed Latin / CJK text with one size; measures widths the same way."""

    def __init__(self, image: Image.Image, cjk_font: Path | None):
        self.image = image
        self.draw = ImageDraw.Draw(image)
        self.cjk_path = str(cjk_font) if cjk_font else None

    def _runs(self, text: str) -> list[tuple[str, bool]]:
        runs: list[tuple[str, bool]] = []
        for ch in text:
            special = _is_cjk(ch) or ch in "↑↓≤≥"
            if runs and runs[-1][1] == special and not special:
                runs[-1] = (runs[-1][0] + ch, False)
            else:
                runs.append((ch, special))
        return runs

    def _special_width(self, ch: str, size: int) -> float:
        if ch in "↑↓":
            return size * 0.6
        if ch in "≤≥":
            return _latin_font(size).getlength("<")
        if self.cjk_path:
            return _cjk_font(self.cjk_path, size).getlength(ch)
        return size * 1.0

    def width(self, text: str, size: int) -> float:
        return sum(self._special_width(run, size) if special else _latin_font(size).getlength(run)
                   for run, special in self._runs(text))

    def text(self, xy: tuple[float, float], text: str, size: int, fill: Any = (20, 20, 20), bold: bool = False) -> float:
        """Draw ``text`` with its top-left at ``xy``; return the advance width."""
        x, y = xy
        for run, special in self._runs(text):
            if not special:
                self.draw.text((x, y), run, font=_latin_font(size), fill=fill,
                               stroke_width=1 if bold else 0, stroke_fill=fill)
                x += _latin_font(size).getlength(run)
            elif run in "↑↓":
                self._arrow(x, y, size, up=run == "↑", fill=fill)
                x += self._special_width(run, size)
            elif run in "≤≥":  # the built-in font has no glyph: "<" / ">" over a bar
                font = _latin_font(size)
                self.draw.text((x, y - size * 0.12), "<" if run == "≤" else ">", font=font, fill=fill)
                bar_y = y + size * 0.92
                self.draw.line([(x + size * 0.08, bar_y), (x + font.getlength("<") - size * 0.08, bar_y)], fill=fill,
                               width=max(1, size // 14))
                x += self._special_width(run, size)
            elif self.cjk_path:
                self.draw.text((x, y), run, font=_cjk_font(self.cjk_path, size), fill=fill,
                               stroke_width=1 if bold else 0, stroke_fill=fill)
                x += self._special_width(run, size)
            else:
                self._pseudo_glyph(x, y, size, run, fill, bold)
                x += size
        return x - xy[0]

    def _arrow(self, x: float, y: float, size: int, up: bool, fill: Any) -> None:
        cx, top, bottom = x + size * 0.3, y + size * 0.1, y + size * 0.95
        width = max(1, size // 10)
        self.draw.line([(cx, top), (cx, bottom)], fill=fill, width=width)
        head = (top, top + size * 0.3) if up else (bottom, bottom - size * 0.3)
        self.draw.polygon([(cx, head[0]), (cx - size * 0.22, head[1]), (cx + size * 0.22, head[1])], fill=fill)

    def _pseudo_glyph(self, x: float, y: float, size: int, ch: str, fill: Any, bold: bool) -> None:
        seed = zlib.crc32(ch.encode("utf-8"))
        pad = size * 0.12
        left, top, right, bottom = x + pad, y + pad, x + size - pad, y + size - pad
        width = max(1, size // 12) + (1 if bold else 0)
        n_h, n_v = 2 + seed % 3, 1 + (seed >> 3) % 3
        for i in range(n_h):
            yy = top + (bottom - top) * (i + 0.5 + ((seed >> (5 + i)) & 1) * 0.2) / n_h
            x0 = left + (right - left) * (((seed >> (9 + i)) & 3) / 10)
            self.draw.line([(x0, yy), (right - (right - left) * (((seed >> (13 + i)) & 3) / 10), yy)], fill=fill, width=width)
        for j in range(n_v):
            xx = left + (right - left) * (j + 0.5) / n_v
            y0 = top + (bottom - top) * (((seed >> (17 + j)) & 3) / 8)
            self.draw.line([(xx, y0), (xx, bottom)], fill=fill, width=width)
        if (seed >> 21) & 1:
            self.draw.line([(left, bottom), (right, top + (bottom - top) * 0.4)], fill=fill, width=width)


def _stamp(image: Image.Image, center: tuple[float, float], radius: int, text: str, painter: _Painter) -> None:
    layer = Image.new("RGBA", image.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    cx, cy = center
    color = (200, 30, 30, 150)
    draw.ellipse([cx - radius, cy - radius, cx + radius, cy + radius], outline=color, width=max(2, radius // 15))
    star = radius * 0.25
    draw.regular_polygon((cx, cy, star), 5, fill=color)
    sub = _Painter(layer, Path(painter.cjk_path) if painter.cjk_path else None)
    size = max(8, radius // 4)
    sub.text((cx - sub.width(text, size) / 2, cy + star + 2), text, size, fill=color)
    image.alpha_composite(layer) if image.mode == "RGBA" else image.paste(
        Image.alpha_composite(image.convert("RGBA"), layer).convert(image.mode))


def _page(width: int, rng: random.Random | None) -> Image.Image:
    height = int(width * 1.414)
    tone = 250 if rng is None else rng.randint(240, 255)
    return Image.new("RGB", (width, height), (tone, tone, max(0, tone - 3)))


def render_lab_report(report: LabReport, *, width: int = 900, cjk_font: str | os.PathLike[str] | None = None,
                      rng: random.Random | None = None) -> Image.Image:
    """Draw ``report`` as an upright RGB page ``width`` pixels wide (A4 proportions).

    Raises:
        ValueError: ``width`` below 400 or a report too long for the page at this width.
    """
    if width < 400:
        raise ValueError(f"width must be >= 400 px, got {width}")
    image = _page(width, rng)
    painter = _Painter(image, find_cjk_font(cjk_font) if report.language == "zh" else None)
    s = width / 900
    margin, size, small = int(50 * s), int(18 * s), int(15 * s)
    y = int(45 * s)
    title_size = int(28 * s)
    title_w = painter.width(report.title, title_size)
    painter.text(((width - title_w) / 2, y), report.title, title_size, bold=True)
    y += int(title_size * 1.9)
    col_w = (width - 2 * margin) / 3
    for i, (key, value) in enumerate(report.header):
        painter.text((margin + (i % 3) * col_w, y + (i // 3) * size * 1.6), f"{key}: {value}", small)
    y += int(((len(report.header) + 2) // 3) * size * 1.6 + size * 0.6)
    painter.draw.line([(margin, y), (width - margin, y)], fill=(30, 30, 30), width=max(1, int(2 * s)))
    y += int(size * 0.8)
    zh = report.language == "zh"
    heads = (["序号", "项目名称", "结果", "提示", "单位", "参考区间"] if zh
             else ["No", "Test", "Result", "Flag", "Unit", "Reference"])
    per_col = -(-len(report.entries) // report.columns)
    block_w = (width - 2 * margin) / report.columns
    fractions = (0.07, 0.40, 0.14, 0.07, 0.13, 0.19) if report.columns == 1 else (0.08, 0.36, 0.15, 0.06, 0.15, 0.20)
    table_size = size if report.columns == 1 else int(size * 0.8)
    row_h = table_size * 1.75
    bottom = y
    for c in range(report.columns):
        x0 = margin + c * block_w
        xs = [x0]
        for f in fractions[:-1]:
            xs.append(xs[-1] + f * block_w)
        yy = y
        for head, x in zip(heads, xs):
            painter.text((x, yy), head, table_size, bold=True)
        yy += row_h * 0.9
        painter.draw.line([(x0, yy), (x0 + block_w - 10 * s, yy)], fill=(60, 60, 60), width=1)
        yy += row_h * 0.25
        for number, entry in enumerate(report.entries[c * per_col:(c + 1) * per_col], start=c * per_col + 1):
            flag = {"H": "↑", "L": "↓"}.get(entry.flag, "") if zh else entry.flag
            fill = (170, 20, 20) if entry.flag else (20, 20, 20)
            cells = [str(number), entry.entryname, entry.result, flag, entry.unit, entry.reference]
            for cell, x, x_next in zip(cells, xs, [*xs[1:], x0 + block_w]):
                cell_size = table_size
                while cell_size > 8 and painter.width(cell, cell_size) > x_next - x - 4:
                    cell_size -= 1
                painter.text((x, yy + (table_size - cell_size) / 2), cell, cell_size, fill=fill if cell in (entry.result, flag) else (20, 20, 20))
            yy += row_h
        bottom = max(bottom, yy)
    painter.draw.line([(margin, bottom + 4), (width - margin, bottom + 4)], fill=(30, 30, 30), width=max(1, int(2 * s)))
    y = bottom + int(size * 1.2)
    for line in report.footer:
        painter.text((margin, y), line, small)
        y += int(small * 1.7)
    if y > image.height - margin / 2:
        raise ValueError(f"report {report.doc_id} does not fit a {width} px wide page ({len(report.entries)} entries)")
    if report.stamp:
        radius = int(70 * s)
        _stamp(image, (width - margin - radius * 1.3, min(image.height - radius - 10, y + radius * 0.2)), radius,
               "检验专用章" if zh else "LAB VERIFIED", painter)
    return image


# ------------------------------------------------------------------------------------ general documents

#: General document types and how often ``random_general_document`` draws each (a skewed mix, as in
#: patient uploads, so that downsampling has something to do).
DOC_TYPES: dict[str, float] = {"imaging_report": 0.5, "prescription": 0.3, "discharge_summary": 0.2}

_FINDINGS = {
    "en": ["The liver is normal in size with homogeneous echotexture.", "No focal lesion is seen in the pancreas.",
           "A 12 mm nodule is seen in the right upper lobe.", "Mild pleural effusion on the left.",
           "The kidneys are normal in size without hydronephrosis.", "Gallbladder wall is smooth; no stones."],
    "zh": ["肝脏大小正常，实质回声均匀。", "胰腺未见明显占位。", "右肺上叶见一约12mm结节。", "左侧少量胸腔积液。",
           "双肾大小正常，未见积水。", "胆囊壁光滑，未见结石。"],
}
_DRUGS = [("Amoxicillin", "阿莫西林胶囊", "0.25g*24", "0.5 g tid"), ("Metformin", "二甲双胍片", "0.5g*30", "0.5 g bid"),
          ("Atorvastatin", "阿托伐他汀钙片", "20mg*7", "20 mg qn"), ("Omeprazole", "奥美拉唑肠溶胶囊", "20mg*14", "20 mg qd")]
_DIAGNOSES = {"en": ["Community-acquired pneumonia", "Type 2 diabetes", "Hypertension grade 2", "Acute gastritis"],
              "zh": ["社区获得性肺炎", "2型糖尿病", "高血压2级", "急性胃炎"]}


@dataclass
class GeneralDocument:
    """A non-tabular medical document: ordered key-value ``fields`` (the QA ground truth) and
    free-text ``paragraphs``."""

    doc_id: str
    doc_type: str
    language: str
    title: str
    fields: dict[str, str]
    paragraphs: list[str] = field(default_factory=list)
    department: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def random_general_document(rng: random.Random, language: str = "en", *, doc_type: str | None = None,
                            doc_id: str = "doc") -> GeneralDocument:
    """A random imaging report, prescription or discharge summary (``DOC_TYPES``).

    Raises:
        ValueError: unknown ``language`` or ``doc_type``.
    """
    if language not in ("en", "zh"):
        raise ValueError(f"language must be 'en' or 'zh', got {language!r}")
    if doc_type is None:
        doc_type = rng.choices(list(DOC_TYPES), weights=list(DOC_TYPES.values()))[0]
    if doc_type not in DOC_TYPES:
        raise ValueError(f"doc_type must be one of {', '.join(DOC_TYPES)}, got {doc_type!r}")
    zh = language == "zh"
    date = f"2025-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    patient = f"{rng.choice(_FIRST)} {chr(65 + rng.randrange(26))}."
    age = f"{rng.randint(18, 90)}"
    if doc_type == "imaging_report":
        exam = rng.choice([("CT Chest", "胸部CT"), ("Abdominal ultrasound", "腹部超声"), ("MRI Brain", "头颅MRI")])
        findings = rng.sample(_FINDINGS[language], 2)
        impression = findings[0]
        fields = ({"姓名": patient, "年龄": age, "检查项目": exam[1], "检查日期": date, "诊断意见": impression} if zh else
                  {"Name": patient, "Age": age, "Examination": exam[0], "Exam date": date, "Impression": impression})
        title = "影像检查报告" if zh else "Imaging Report"
        paragraphs = [("检查所见：" if zh else "Findings: ") + " ".join(findings)]
        department = "放射科" if zh else "Radiology"
    elif doc_type == "prescription":
        drug = rng.choice(_DRUGS)
        fields = ({"姓名": patient, "年龄": age, "药品": drug[1], "规格": drug[2], "用法": drug[3], "开具日期": date} if zh else
                  {"Name": patient, "Age": age, "Drug": drug[0], "Strength": drug[2], "Dosage": drug[3], "Date": date})
        title = "处方笺" if zh else "Prescription"
        paragraphs = ["医师签名：" + rng.choice(_FIRST) if zh else "Physician: Dr. " + rng.choice(_FIRST)]
        department = "药剂科" if zh else "Pharmacy"
    else:
        diagnosis = rng.choice(_DIAGNOSES[language])
        admit = f"2025-{rng.randint(1, 12):02d}-{rng.randint(1, 14):02d}"
        fields = ({"姓名": patient, "年龄": age, "入院日期": admit, "出院日期": date, "出院诊断": diagnosis} if zh else
                  {"Name": patient, "Age": age, "Admitted": admit, "Discharged": date, "Discharge diagnosis": diagnosis})
        title = "出院小结" if zh else "Discharge Summary"
        paragraphs = ["出院医嘱：按时服药，两周后门诊复查。" if zh else "Advice: take medication as prescribed; follow up in two weeks."]
        department = "内科" if zh else "Internal Medicine"
    return GeneralDocument(doc_id, doc_type, language, title, fields, paragraphs, department)


def _wrap(painter: _Painter, text: str, size: int, max_w: float) -> list[str]:
    lines, current = [], ""
    tokens = list(text) if any(_is_cjk(ch) for ch in text) else text.split(" ")
    joiner = "" if any(_is_cjk(ch) for ch in text) else " "
    for token in tokens:
        candidate = f"{current}{joiner}{token}" if current else token
        if painter.width(candidate, size) > max_w and current:
            lines.append(current)
            current = token
        else:
            current = candidate
    return [*lines, current] if current else lines


def render_general_document(doc: GeneralDocument, *, width: int = 900, cjk_font: str | os.PathLike[str] | None = None,
                            rng: random.Random | None = None) -> Image.Image:
    """Draw ``doc`` as an upright RGB page (title, key-value block, wrapped paragraphs, stamp)."""
    if width < 400:
        raise ValueError(f"width must be >= 400 px, got {width}")
    image = _page(width, rng)
    painter = _Painter(image, find_cjk_font(cjk_font) if doc.language == "zh" else None)
    s = width / 900
    margin, size = int(60 * s), int(20 * s)
    y = int(50 * s)
    title_size = int(30 * s)
    painter.text(((width - painter.width(doc.title, title_size)) / 2, y), doc.title, title_size, bold=True)
    y += int(title_size * 2)
    painter.draw.line([(margin, y), (width - margin, y)], fill=(30, 30, 30), width=max(1, int(2 * s)))
    y += size
    for key, value in doc.fields.items():
        for line in _wrap(painter, f"{key}: {value}", size, width - 2 * margin):
            painter.text((margin, y), line, size)
            y += int(size * 1.7)
    y += size
    for paragraph in doc.paragraphs:
        for line in _wrap(painter, paragraph, size, width - 2 * margin):
            painter.text((margin, y), line, size)
            y += int(size * 1.7)
        y += size // 2
    if rng is None or rng.random() < 0.6:
        radius = int(65 * s)
        _stamp(image, (width - margin - radius * 1.4, y + radius * 1.2), radius,
               "医院专用章" if doc.language == "zh" else "CERTIFIED", painter)
    return image

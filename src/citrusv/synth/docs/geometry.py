"""Page-geometry normalisation without an OCR model: perspective, orientation, deskew, dewarp.

Classical methods, numpy + scipy only:

* **Perspective** (``find_page_quad`` / ``correct_perspective``): when the page lies on a darker
  surface (the image border is darker than its centre), the largest bright component is the page;
  its four extreme corners are warped to an upright rectangle.
* **Orientation and skew** (``detect_orientation``): ink pixels (dark against a local mean, so
  shadows do not count) are projected onto a rotating axis; the angle whose row profile is
  sharpest (largest sum of squared bin counts, per vertical strip) makes the text lines
  horizontal, found on a 1 degree grid over 180 degrees and refined to 0.02 degrees. That leaves
  upright vs upside down, decided by the asymmetry of a left-aligned page: text lines start at
  the same x (the margin) and end ragged, and the title is the tallest line, near the top. After
  a dewarp, ``normalize_page`` checks that decision again on the flattened page.
* **Dewarp** (``dewarp``): a page curl bends text lines; the row profiles of neighbouring
  vertical strips are cross-correlated, the shifts accumulated and fitted with a quadratic, and
  each column is moved back, only when that makes the row profile sharper.

``normalize_page`` runs the steps in that order and returns the image plus one ``GeometryStep``
per step saying what it found and whether it changed the image. Angles are degrees
counter-clockwise (PIL's ``Image.rotate`` convention); ``orientation`` is the page's rotation
as captured, so rotating the capture by ``-(orientation + skew_deg)`` makes it upright.
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from PIL import Image

__all__ = [
    "GeometryStep",
    "NormalizedPage",
    "Orientation",
    "correct_perspective",
    "detect_orientation",
    "dewarp",
    "find_page_quad",
    "normalize_page",
    "rotate_upright",
]

logger = logging.getLogger(__name__)

_WORK_SIDE = 700  # analysis resolution (longest side, px)


def _ndimage() -> Any:
    """``scipy.ndimage``, imported on first use (scipy is an optional dependency)."""
    try:
        from scipy import ndimage
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("page geometry needs scipy: pip install 'scipy>=1.10' (included in citrusv[eval])") from err
    return ndimage


@dataclass
class GeometryStep:
    """One normalisation step: its ``name``, whether it changed the image, and what it found."""

    name: str
    applied: bool
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class NormalizedPage:
    """The normalised image and the steps that produced it."""

    image: Image.Image
    steps: list[GeometryStep]

    def step(self, name: str) -> GeometryStep:
        return next(s for s in self.steps if s.name == name)

    def report(self) -> list[dict[str, Any]]:
        return [asdict(s) for s in self.steps]


@dataclass(frozen=True)
class Orientation:
    """What ``detect_orientation`` found.

    Attributes:
        orientation: the page's captured rotation, 0 / 90 / 180 / 270 degrees counter-clockwise.
        skew_deg: the extra rotation in (-45, 45] degrees counter-clockwise.
        line_score: sharpness of the row profile at the best angle over its median over angles
            (higher: clearer text lines; about 1 for a blank page).
        flip_margin: the upright-vs-upside-down evidence (positive: confident; near 0: a guess).
    """

    orientation: int
    skew_deg: float
    line_score: float
    flip_margin: float

    @property
    def correction_deg(self) -> float:
        """Counter-clockwise rotation that makes the page upright."""
        return -(self.orientation + self.skew_deg)


def _gray(image: Image.Image, max_side: int = _WORK_SIDE) -> tuple[np.ndarray, float]:
    """Grayscale float array at most ``max_side`` on its longest side, and the scale applied."""
    gray = image.convert("L")
    scale = min(1.0, max_side / max(gray.size))
    if scale < 1.0:
        gray = gray.resize((max(1, round(gray.width * scale)), max(1, round(gray.height * scale))), Image.Resampling.BOX)
    return np.asarray(gray, dtype=np.float32), scale


def _ink(gray: np.ndarray, max_extent: float = 0.2) -> np.ndarray:
    """Boolean ink mask: darker than the local mean by a contrast margin (robust to shadows).

    Connected components that touch the image border and are longer than ``max_extent`` of the
    longest image side are dropped: page edges and leftover background are long straight lines
    that would outvote the text (table rules do not touch the border and stay).
    """
    ndimage = _ndimage()
    local = ndimage.uniform_filter(gray, size=max(15, min(gray.shape) // 20))
    ink = gray < local - 25
    labels, _ = ndimage.label(ink)
    limit = max_extent * max(gray.shape)
    h, w = gray.shape

    def edge_line(box: tuple[slice, slice]) -> bool:
        rows, cols = box
        touches = rows.start <= 2 or cols.start <= 2 or rows.stop >= h - 2 or cols.stop >= w - 2
        return touches and max(rows.stop - rows.start, cols.stop - cols.start) > limit

    too_long = [i for i, box in enumerate(ndimage.find_objects(labels), start=1) if box is not None and edge_line(box)]
    if too_long:
        ink &= ~np.isin(labels, too_long)
    return ink


def _rotate_points(x: np.ndarray, y: np.ndarray, deg: float) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates after rotating the image ``deg`` counter-clockwise (y down), about the origin."""
    t = np.deg2rad(deg)
    c, s = np.cos(t), np.sin(t)
    return x * c + y * s, -x * s + y * c


def _profile_sharpness(x: np.ndarray, y: np.ndarray, deg: float, strips: int = 4) -> float:
    """Sum over ``strips`` vertical strips (after rotating by ``deg``) of the squared row-profile
    counts: large when ink lies on horizontal lines. Strips keep a bent (curled) line locally
    straight, so text lines beat the long vertical alignment of table columns."""
    xr, yr = _rotate_points(x, y, deg)
    rows = (yr - yr.min()).astype(np.int64)
    span = max(float(np.ptp(xr)), 1.0)
    strip = np.minimum(((xr - xr.min()) / span * strips).astype(np.int64), strips - 1)
    counts = np.bincount(strip * (int(rows.max()) + 1) + rows)
    return float(np.dot(counts, counts))


def _line_bands(yr: np.ndarray) -> list[tuple[int, int]]:
    """Row bands (start, stop) holding text lines, from the profile of rotated y coordinates."""
    ndimage = _ndimage()
    counts = np.bincount((yr - yr.min()).astype(np.int64)).astype(float)
    smooth = ndimage.uniform_filter1d(counts, 3)
    on = smooth > max(1.0, 0.08 * smooth.max())
    labels, _ = ndimage.label(on)
    bands = ndimage.find_objects(labels)
    return [(b[0].start, b[0].stop) for b in bands if b[0].stop - b[0].start >= 3]


def _upright_evidence(x: np.ndarray, y: np.ndarray, deg: float) -> float:
    """Positive when the page rotated by ``deg`` reads upright, negative when upside down."""
    xr, yr = _rotate_points(x, y, deg)
    yr0 = yr - yr.min()
    bands = _line_bands(yr)
    if len(bands) < 3:
        return 0.0
    starts, ends, heights, centres = [], [], [], []
    for lo, hi in bands:
        sel = (yr0 >= lo) & (yr0 < hi)
        if sel.sum() < 5:
            continue
        xs = xr[sel]
        starts.append(np.percentile(xs, 1))
        ends.append(np.percentile(xs, 99))
        heights.append(hi - lo)
        centres.append((lo + hi) / 2)
    if len(starts) < 3:
        return 0.0
    width = max(np.ptp(xr), 1.0)
    tol = 0.012 * width

    def aligned(values: list[float]) -> float:
        v = np.asarray(values)
        return float(max(np.mean(np.abs(v - c) <= tol) for c in v))

    alignment = aligned(starts) - aligned(ends)
    heights_a, centres_a = np.asarray(heights, float), np.asarray(centres, float)
    tallest = centres_a[heights_a >= heights_a.max() * 0.9]
    span = max(np.ptp(yr0), 1.0)
    title = 0.5 - float(np.mean(tallest)) / span  # > 0: the tallest lines sit in the upper half
    return alignment + 0.5 * title


def detect_orientation(image: Image.Image | np.ndarray, *, max_points: int = 15000) -> Orientation:
    """Orientation (0 / 90 / 180 / 270) and skew of a text page. See the module docstring.

    Args:
        image: a PIL image or a grayscale array (any size; analysed at about 700 px).
        max_points: ink pixels used (a fixed-seed subsample above this).

    Returns:
        ``Orientation``; a page without ink gives orientation 0, skew 0, ``line_score`` 1.
    """
    gray = np.asarray(image, dtype=np.float32) if isinstance(image, np.ndarray) else _gray(image)[0]
    if isinstance(image, np.ndarray) and max(gray.shape) > _WORK_SIDE:
        gray = _gray(Image.fromarray(gray.astype(np.uint8)))[0]
    ys, xs = np.nonzero(_ink(gray))
    if len(xs) < 50:
        return Orientation(0, 0.0, 1.0, 0.0)
    if len(xs) > max_points:
        pick = np.random.default_rng(0).choice(len(xs), max_points, replace=False)
        xs, ys = xs[pick], ys[pick]
    x = xs.astype(np.float64) - gray.shape[1] / 2
    y = ys.astype(np.float64) - gray.shape[0] / 2
    coarse = np.arange(-90.0, 90.0, 1.0)
    scores = np.array([_profile_sharpness(x, y, d) for d in coarse])
    phi = float(coarse[int(np.argmax(scores))])
    best_score = float(scores.max())
    for step, half_width in ((0.1, 1.0), (0.02, 0.1)):
        grid = np.arange(phi - half_width, phi + half_width + step / 2, step)
        grid_scores = np.array([_profile_sharpness(x, y, d) for d in grid])
        phi = float(grid[int(np.argmax(grid_scores))])
        best_score = max(best_score, float(grid_scores.max()))
    line_score = best_score / max(float(np.median(scores)), 1.0)
    evidence = _upright_evidence(x, y, phi)
    correction = phi if evidence >= 0 else phi + 180.0
    captured = (-correction) % 360.0
    orientation = round(captured / 90.0) % 4 * 90
    skew = (captured - orientation + 180.0) % 360.0 - 180.0
    return Orientation(orientation, round(skew, 3), round(line_score, 3), round(float(abs(evidence)), 3))


def rotate_upright(image: Image.Image, found: Orientation, fill: tuple[int, int, int] = (255, 255, 255)) -> Image.Image:
    """Rotate ``image`` by ``found.correction_deg`` (exact quarter turns need no resampling)."""
    image = image.convert("RGB")
    if abs(found.skew_deg) < 1e-6:
        turns = {0: None, 90: Image.Transpose.ROTATE_270, 180: Image.Transpose.ROTATE_180, 270: Image.Transpose.ROTATE_90}
        op = turns[found.orientation]
        return image if op is None else image.transpose(op)
    return image.rotate(found.correction_deg, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=fill)


# ----------------------------------------------------------------------------------- perspective


def _otsu(values: np.ndarray) -> float:
    hist, edges = np.histogram(values, bins=256, range=(0, 256))
    p = hist / max(hist.sum(), 1)
    omega = np.cumsum(p)
    mu = np.cumsum(p * np.arange(256))
    between = (mu[-1] * omega - mu) ** 2 / np.maximum(omega * (1 - omega), 1e-12)
    return float(edges[int(np.argmax(between))])


def find_page_quad(image: Image.Image) -> np.ndarray | None:
    """Corners (top-left, top-right, bottom-right, bottom-left) of a page lying on a darker
    surface, ``[4, 2]`` in original-image pixels (x, y); ``None`` when the border is page-coloured
    (nothing to correct) or no page-sized bright region is found."""
    ndimage = _ndimage()
    gray, scale = _gray(image, 400)
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    threshold = _otsu(gray)
    if np.median(border) >= threshold or np.median(border) > 200:
        return None
    bright = ndimage.binary_closing(gray > threshold, iterations=3)
    bright = ndimage.binary_fill_holes(bright)
    labels, n = ndimage.label(bright)
    if n == 0:
        return None
    sizes = ndimage.sum(bright, labels, range(1, n + 1))
    page = labels == (int(np.argmax(sizes)) + 1)
    if sizes.max() < 0.2 * gray.size:
        return None
    ys, xs = np.nonzero(page)
    s, d = xs + ys, xs - ys
    corners = np.array([[xs[np.argmin(s)], ys[np.argmin(s)]], [xs[np.argmax(d)], ys[np.argmax(d)]],
                        [xs[np.argmax(s)], ys[np.argmax(s)]], [xs[np.argmin(d)], ys[np.argmin(d)]]], dtype=float)
    return (corners + 0.5) / scale


def correct_perspective(image: Image.Image, quad: np.ndarray) -> Image.Image:
    """Warp the quadrilateral ``quad`` ([4, 2] TL, TR, BR, BL, original pixels) to an upright rectangle."""
    from .artefacts import _perspective_coeffs

    tl, tr, br, bl = quad
    width = round(float(np.linalg.norm(tr - tl) + np.linalg.norm(br - bl)) / 2)
    height = round(float(np.linalg.norm(bl - tl) + np.linalg.norm(br - tr)) / 2)
    dst = [(0, 0), (width, 0), (width, height), (0, height)]
    coeffs = _perspective_coeffs([tuple(p) for p in quad], dst)
    return image.convert("RGB").transform((width, height), Image.Transform.PERSPECTIVE, coeffs,
                                          Image.Resampling.BICUBIC, fillcolor=(255, 255, 255))


# ----------------------------------------------------------------------------------- dewarp


def _row_sharpness(ink: np.ndarray) -> float:
    """Concentration of the ink's row profile (higher: straighter, sharper text lines)."""
    counts = ink.sum(axis=1)
    total = counts.sum()
    return float(np.dot(counts, counts) / (total * total)) if total else 0.0


def _shift_rows(arr: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """Move column x of ``arr`` ([H, W] or [H, W, C]) up by ``shift[x]`` rows (linear interpolation)."""
    h, w = arr.shape[:2]
    rows = np.clip(np.arange(h)[:, None] + shift[None, :], 0, h - 1)
    r0 = np.floor(rows).astype(int)
    r1 = np.minimum(r0 + 1, h - 1)
    t = rows - r0
    if arr.ndim == 3:
        t = t[..., None]
    cols = np.arange(w)[None, :]
    return arr[r0, cols] * (1 - t) + arr[r1, cols] * t


def dewarp(image: Image.Image, *, strips: int = 10, max_step_px: int = 6, min_shift_px: float = 1.5,
           min_gain: float = 0.03) -> tuple[Image.Image, dict[str, Any]]:
    """Straighten bent text lines of an upright page (see the module docstring).

    Neighbouring vertical strips are cross-correlated (at most ``max_step_px`` rows apart at the
    analysis resolution), the shifts accumulated and fitted with a quadratic. The correction is
    kept only when it makes the page's row profile sharper by ``min_gain`` (relative), so a flat
    page or an unreliable fit leaves the image untouched.

    Returns:
        The image and ``{"applied", "max_shift_px", "gain", "coeffs"}``.
    """
    gray, scale = _gray(image)
    ink = _ink(gray).astype(np.float64)
    _, w = ink.shape
    edges = np.linspace(0, w, strips + 1).astype(int)
    profiles = [ink[:, a:b].sum(axis=1) for a, b in itertools.pairwise(edges)]
    centres, shifts, weights = [], [], []
    previous: np.ndarray | None = None
    cumulative = 0.0
    for (a, b), prof in zip(itertools.pairwise(edges), profiles):
        if prof.sum() < 30:
            continue
        if previous is not None:
            lags = range(-max_step_px, max_step_px + 1)
            corr = [float(np.dot(np.roll(prof, -k), previous)) for k in lags]
            cumulative += lags[int(np.argmax(corr))]
        centres.append((a + b) / 2)
        shifts.append(cumulative)
        weights.append(prof.sum())
        previous = prof
    info: dict[str, Any] = {"applied": False, "max_shift_px": 0.0, "gain": 0.0, "coeffs": []}
    if len(centres) < 4:
        return image, info
    coeffs = np.polyfit(np.asarray(centres) / w, np.asarray(shifts), 2, w=np.sqrt(weights))
    shift_work = np.polyval(coeffs, np.arange(w) / w)
    shift_work -= shift_work[w // 2]
    info["coeffs"] = [round(float(c), 4) for c in coeffs]
    info["max_shift_px"] = round(float(np.abs(shift_work).max() / scale), 2)
    if info["max_shift_px"] < min_shift_px:
        return image, info
    before, after = _row_sharpness(ink), _row_sharpness(_shift_rows(ink, shift_work))
    info["gain"] = round(after / before - 1.0, 4) if before else 0.0
    if info["gain"] < min_gain:
        return image, info
    full = image.convert("RGB")
    fw = full.width
    shift_full = np.polyval(coeffs, np.arange(fw) / fw)
    shift_full = (shift_full - shift_full[fw // 2]) / scale
    out = _shift_rows(np.asarray(full, dtype=np.float32), shift_full)
    info["applied"] = True
    return Image.fromarray(out.astype(np.uint8)), info


# ----------------------------------------------------------------------------------- pipeline


def normalize_page(image: Image.Image, *, perspective: bool = True, orientation: bool = True,
                   unwarp: bool = True, min_skew_deg: float = 0.2) -> NormalizedPage:
    """Perspective -> orientation + deskew -> dewarp, each reported as a ``GeometryStep``.

    Args:
        image: the captured page.
        perspective / orientation / unwarp: which steps run (a step that does not run is not
            reported).
        min_skew_deg: skews smaller than this are left alone (no resampling for nothing).
    """
    steps: list[GeometryStep] = []
    current = image.convert("RGB")
    if perspective:
        quad = find_page_quad(current)
        if quad is not None:
            current = correct_perspective(current, quad)
        steps.append(GeometryStep("perspective", quad is not None,
                                  {"quad_orig_px": None if quad is None else np.round(quad, 1).tolist()}))
    if orientation:
        found = detect_orientation(current)
        if abs(found.skew_deg) < min_skew_deg:
            found = Orientation(found.orientation, 0.0, found.line_score, found.flip_margin)
        applied = found.orientation != 0 or found.skew_deg != 0.0
        if applied:
            current = rotate_upright(current, found)
        steps.append(GeometryStep("orientation", applied, {
            "orientation": found.orientation, "skew_deg": found.skew_deg, "line_score": found.line_score,
            "flip_margin": found.flip_margin, "flipped_after_dewarp": False}))
    if unwarp:
        current, info = dewarp(current)
        applied = bool(info.pop("applied"))
        steps.append(GeometryStep("dewarp", applied, info))
        if applied and orientation:  # a curl weakens the upright cue: check it again on the flat page
            again = detect_orientation(current)
            first = steps[-2].params
            if again.orientation == 180 and again.flip_margin > first["flip_margin"]:
                current = current.transpose(Image.Transpose.ROTATE_180)
                first["orientation"] = (first["orientation"] + 180) % 360
                first["flipped_after_dewarp"] = True
                steps[-2].applied = True
    logger.debug("normalize_page: %s", [(s.name, s.applied) for s in steps])
    return NormalizedPage(current, steps)

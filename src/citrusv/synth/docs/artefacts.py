"""Capture artefacts for rendered pages: what a phone photo of a paper report looks like.

``Artefacts`` lists what to apply (all off by default); ``random_artefacts(rng)`` draws a plausible
mix; ``apply_artefacts(page, artefacts)`` applies them in capture order: page curl, perspective
(the page on a darker background), rotation by ``rotation`` (0 / 90 / 180 / 270, counter-clockwise)
plus ``skew_deg``, shadow, blur, JPEG noise, partial crop. The result records the truth a
geometry normaliser should recover (``rotation``, ``skew_deg``).
"""

from __future__ import annotations

import io
import random
from dataclasses import asdict, dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

__all__ = ["Artefacts", "apply_artefacts", "random_artefacts"]


@dataclass
class Artefacts:
    """Capture artefacts, applied in the order of the fields.

    Attributes:
        curl: page-curl amplitude as a fraction of the page height (0 = flat; 0.01-0.03 typical).
        perspective: corner displacement as a fraction of the page size (0 = none); draws the page
            on a background.
        background: grey level of the surface around the page (used by ``perspective`` and by
            rotation corners); ``None`` fills with white paper.
        rotation: 0, 90, 180 or 270 degrees counter-clockwise (the page as the camera saw it).
        skew_deg: extra counter-clockwise rotation in degrees.
        shadow: darkening of a soft shadow band, 0-1.
        blur: Gaussian blur radius in pixels.
        jpeg_quality: re-encode as JPEG at this quality (``None``: no).
        crop: fraction cut from the page's bottom or right edge (0 = none).
        seed: seed of the random parts (shadow position, perspective corners, crop side).
    """

    curl: float = 0.0
    perspective: float = 0.0
    background: int | None = None
    rotation: int = 0
    skew_deg: float = 0.0
    shadow: float = 0.0
    blur: float = 0.0
    jpeg_quality: int | None = None
    crop: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.rotation not in (0, 90, 180, 270):
            raise ValueError(f"rotation must be 0, 90, 180 or 270, got {self.rotation!r}")
        if self.jpeg_quality is not None and not 1 <= self.jpeg_quality <= 100:
            raise ValueError(f"jpeg_quality must be in 1..100, got {self.jpeg_quality}")
        for name in ("curl", "perspective", "shadow", "crop"):
            if not 0 <= getattr(self, name) < 0.5:
                raise ValueError(f"{name} must be in [0, 0.5), got {getattr(self, name)}")

    def to_dict(self) -> dict:
        return asdict(self)


def random_artefacts(rng: random.Random, *, max_skew_deg: float = 10.0, rotations: tuple[int, ...] = (0, 90, 180, 270),
                     p_perspective: float = 0.3, p_curl: float = 0.3) -> Artefacts:
    """A plausible random mix (rotation uniform over ``rotations``, skew uniform in ±``max_skew_deg``)."""
    perspective = rng.uniform(0.02, 0.06) if rng.random() < p_perspective else 0.0
    return Artefacts(
        curl=rng.uniform(0.005, 0.02) if rng.random() < p_curl else 0.0,
        perspective=perspective,
        background=rng.randint(60, 140) if perspective else None,
        rotation=rng.choice(rotations),
        skew_deg=rng.uniform(-max_skew_deg, max_skew_deg),
        shadow=rng.uniform(0.1, 0.35) if rng.random() < 0.3 else 0.0,
        blur=rng.uniform(0.3, 1.2) if rng.random() < 0.4 else 0.0,
        jpeg_quality=rng.randint(40, 90) if rng.random() < 0.5 else None,
        crop=rng.uniform(0.02, 0.06) if rng.random() < 0.15 else 0.0,
        seed=rng.randrange(2**31),
    )


def _curl(image: Image.Image, amplitude: float) -> Image.Image:
    """Bend text lines: row offset dy(x) = A * H * sin(pi * x / W) (a bowed page)."""
    arr = np.asarray(image)
    h, w = arr.shape[:2]
    shift = amplitude * h * np.sin(np.pi * np.arange(w) / w)
    rows = np.clip(np.arange(h)[:, None] - shift[None, :], 0, h - 1)
    r0 = np.floor(rows).astype(int)
    r1 = np.minimum(r0 + 1, h - 1)
    t = (rows - r0)[..., None]
    cols = np.arange(w)[None, :]
    out = arr[r0, cols] * (1 - t) + arr[r1, cols] * t
    return Image.fromarray(out.astype(np.uint8))


def _perspective_coeffs(src: list[tuple[float, float]], dst: list[tuple[float, float]]) -> list[float]:
    """Coefficients for ``Image.transform(PERSPECTIVE)`` mapping output ``dst`` points to input ``src``."""
    a = []
    for (x, y), (u, v) in zip(dst, src):
        a.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        a.append([0, 0, 0, x, y, 1, -v * x, -v * y])
    b = np.array([c for pair in src for c in pair], dtype=float)
    return list(np.linalg.solve(np.array(a, dtype=float), b))


def _perspective(image: Image.Image, amount: float, background: int, rng: random.Random) -> Image.Image:
    w, h = image.size
    pad = int(max(w, h) * (amount + 0.04))
    canvas_w, canvas_h = w + 2 * pad, h + 2 * pad
    corners = [(0, 0), (w, 0), (w, h), (0, h)]
    dst = [(x + pad + rng.uniform(-amount, amount) * w, y + pad + rng.uniform(-amount, amount) * h) for x, y in corners]
    coeffs = _perspective_coeffs(corners, dst)
    warped = image.transform((canvas_w, canvas_h), Image.Transform.PERSPECTIVE, coeffs, Image.Resampling.BICUBIC,
                             fillcolor=(background,) * 3)
    return warped


def apply_artefacts(page: Image.Image, artefacts: Artefacts) -> Image.Image:
    """Apply ``artefacts`` to an upright RGB page; returns a new RGB image."""
    rng = random.Random(artefacts.seed)
    image = page.convert("RGB")
    fill = (255, 255, 255) if artefacts.background is None else (artefacts.background,) * 3
    if artefacts.curl:
        image = _curl(image, artefacts.curl)
    if artefacts.perspective:
        image = _perspective(image, artefacts.perspective, artefacts.background or 100, rng)
    angle = artefacts.rotation + artefacts.skew_deg
    if angle:
        image = image.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=fill)
    if artefacts.shadow:
        w, h = image.size
        mask = Image.new("L", image.size, 0)
        x0 = rng.uniform(0, w * 0.6)
        ImageDraw.Draw(mask).polygon([(x0, 0), (x0 + w * 0.4, 0), (x0 + w * 0.2, h), (x0 - w * 0.2, h)],
                                     fill=int(255 * artefacts.shadow))
        mask = mask.filter(ImageFilter.GaussianBlur(max(w, h) / 30))
        image = Image.composite(Image.new("RGB", image.size, (0, 0, 0)), image, mask)
    if artefacts.blur:
        image = image.filter(ImageFilter.GaussianBlur(artefacts.blur))
    if artefacts.jpeg_quality is not None:
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=artefacts.jpeg_quality)
        image = Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")
    if artefacts.crop:
        w, h = image.size
        box = (0, 0, w, int(h * (1 - artefacts.crop))) if rng.random() < 0.5 else (0, 0, int(w * (1 - artefacts.crop)), h)
        image = image.crop(box)
    return image

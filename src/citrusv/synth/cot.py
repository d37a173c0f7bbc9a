"""Grounded chain-of-thought (CoT) report samples from boxes and a report (paper §3.2.4).

Two routes share one builder:

* **CT route**: a CT is projected to a DRR (``citrusv.synth.drr``); its label map gives exact
  boxes (``boxes_from_structures``); the CT report is first rewritten into an X-ray-aware
  narrative (prompt ``cot_rewrite``), then the CoT report is generated (prompt ``cot_report``).
* **X-ray route**: boxes detected on a real radiograph (our model's grounding output,
  ``boxes_from_model_text``, or any detector's JSON, ``boxes_from_detections``) and the
  radiograph's own report, which needs no rewrite.

The LLM sees the image with colour-coded boxes (``draw_boxes``: green anatomy, red findings,
blue references) labelled ``B1``, ``B2``, ... and cites them as ``<bbox>B3</bbox>`` while it
walks the reading order (``ReadingOrder``, from ``configs/synth/chest_reading_order.yaml``). The
builder checks the reply (a ``<think>`` that cites at least one box, a non-empty ``<answer>``,
no unknown box id) and replaces each id with the box in the trained model's text convention
(Citrus-V: ``<bbox>[x1, y1, x2, y2]</bbox>`` in Qwen smart-resized pixels; see
``citrusv.processing.boxes``), so ``parse_boxes`` reads the original-pixel boxes back. Rows are
in the sample schema (``citrusv.data.schema``): image, user / assistant messages, ``objects``
with the cited boxes in original pixels.
"""

from __future__ import annotations

import fnmatch
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import yaml

from ..data.schema import parse_sample
from ..llm import LLMClient, LLMError, system_message, user_message
from ..llm.prompts import PromptTemplate
from ..llm.prompts import load_prompt_file as load_prompt
from ..processing.boxes import CITRUS_V, BoxConvention, parse_boxes
from ..processing.image import smart_resize
from ..processing.processor import ImageSize

logger = logging.getLogger(__name__)

__all__ = [
    "CotOutcome",
    "GroundedBox",
    "GroundedCotBuilder",
    "PromptTemplate",
    "ReadingOrder",
    "ReadingStep",
    "boxes_from_detections",
    "boxes_from_model_text",
    "boxes_from_structures",
    "check_cot_reply",
    "default_config_dir",
    "draw_boxes",
    "load_prompt",
]

BoxSpace = Literal["resized_px", "norm1000", "orig_px"]
DEFAULT_COLOURS: dict[str, tuple[int, int, int]] = {
    "anatomy": (0, 200, 0),      # green
    "finding": (230, 0, 0),      # red
    "reference": (0, 90, 255),   # blue
}
DEFAULT_USER_PROMPT = ("<image>Write a radiology report for this chest X-ray. Examine the anatomy step by step "
                       "and cite the regions you look at before giving the report.")


def default_config_dir() -> Path:
    """The repository's ``configs/`` folder (prompts and reading orders ship there)."""
    return Path(__file__).resolve().parents[3] / "configs"


# ----------------------------------------------------------------------------- reading order
@dataclass(frozen=True)
class ReadingStep:
    """One step of the reading order: its name, the structure-name patterns it covers, how their
    boxes merge (``none`` / ``side`` / ``all``) and their colour role."""

    name: str
    structures: tuple[str, ...]
    merge: Literal["none", "side", "all"] = "none"
    colour: str = "anatomy"

    def matches(self, structure: str) -> bool:
        return any(fnmatch.fnmatchcase(structure.lower(), pattern.lower()) for pattern in self.structures)


@dataclass(frozen=True)
class ReadingOrder:
    """An ordered list of ``ReadingStep`` and the overlay colour of each colour role."""

    steps: tuple[ReadingStep, ...]
    colours: Mapping[str, tuple[int, int, int]] = field(default_factory=lambda: dict(DEFAULT_COLOURS))
    name: str = "custom"
    version: int = 1

    def __post_init__(self) -> None:
        if not self.steps:
            raise ValueError("a reading order needs at least one step")
        for step in self.steps:
            if step.merge not in ("none", "side", "all"):
                raise ValueError(f"step {step.name!r}: merge must be none / side / all, got {step.merge!r}")
            if step.colour not in self.colours:
                raise ValueError(f"step {step.name!r}: colour role {step.colour!r} not in {sorted(self.colours)}")

    @classmethod
    def from_yaml(cls, path: str | Path | None = None) -> ReadingOrder:
        """Load a reading order; ``None`` = ``configs/synth/chest_reading_order.yaml``.

        Raises:
            ValueError: a malformed file.
        """
        path = Path(path) if path is not None else default_config_dir() / "synth" / "chest_reading_order.yaml"
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        try:
            steps = tuple(ReadingStep(str(s["name"]), tuple(s["structures"]), s.get("merge", "none"),
                                      s.get("colour", "anatomy")) for s in data["steps"])
        except (KeyError, TypeError) as err:
            raise ValueError(f"{path}: each step needs a name and a structures list ({err})") from None
        colours = {k: tuple(int(c) for c in v) for k, v in (data.get("colours") or DEFAULT_COLOURS).items()}
        return cls(steps, colours, str(data.get("name", Path(path).stem)), int(data.get("version", 1)))

    @classmethod
    def from_names(cls, names: Sequence[str]) -> ReadingOrder:
        """A plain order where each step is one structure name."""
        return cls(tuple(ReadingStep(n, (n,)) for n in names))

    def describe(self) -> str:
        return " -> ".join(step.name for step in self.steps)


# ----------------------------------------------------------------------------- boxes
@dataclass(frozen=True)
class GroundedBox:
    """A named box on the image, in original pixels (``xyxy``, ``x2, y2`` exclusive).

    ``step`` and ``colour`` are filled by ``GroundedCotBuilder.arrange``; ``box_id`` (``B1``, ...)
    is what the LLM cites.
    """

    name: str
    box_xyxy_orig_px: tuple[float, float, float, float]
    step: str | None = None
    colour: str = "anatomy"
    box_id: str | None = None


def boxes_from_structures(structures: Iterable[Any]) -> list[GroundedBox]:
    """Boxes of projected label-map structures (``citrusv.synth.drr.ProjectedStructure``)."""
    return [GroundedBox(s.name, tuple(float(v) for v in s.box_xyxy_px)) for s in structures]


def boxes_from_detections(detections: Any) -> list[GroundedBox]:
    """Boxes from a detector's JSON: a list of ``{"label": ..., "bbox" | "bbox_2d" | "box": [x1, y1, x2, y2]}``
    in original pixels, or ``{"detections": [...]}``.

    Raises:
        ValueError: an entry without a label or four coordinates.
    """
    if isinstance(detections, Mapping):
        detections = detections.get("detections", detections.get("objects", []))
    out = []
    for index, item in enumerate(detections):
        label = item.get("label") or item.get("name") or item.get("ref")
        box = item.get("bbox", item.get("bbox_2d", item.get("box")))
        if not label or not isinstance(box, (list, tuple)) or len(box) != 4:
            raise ValueError(f"detection {index} needs a label and a 4-number box, got {item!r:.200}")
        out.append(GroundedBox(str(label), tuple(float(v) for v in box)))
    return out


def boxes_from_model_text(text: str, image_size: ImageSize, convention: BoxConvention = CITRUS_V) -> list[GroundedBox]:
    """Boxes our model (or any Qwen-style model) wrote, with labels, in original pixels; unlabelled ones are skipped."""
    parsed, _ = parse_boxes(text, image_size, convention)
    return [GroundedBox(b.label, b.xyxy_orig_px) for b in parsed if b.label]


def _union(boxes: Sequence[tuple[float, float, float, float]]) -> tuple[float, float, float, float]:
    array = np.asarray(boxes, dtype=np.float64)
    return (float(array[:, 0].min()), float(array[:, 1].min()), float(array[:, 2].max()), float(array[:, 3].max()))


def _side(name: str) -> str | None:
    tokens = re.split(r"[^a-z]+", name.lower())
    return "left" if "left" in tokens else "right" if "right" in tokens else None


def draw_boxes(image: Any, boxes: Sequence[GroundedBox], colours: Mapping[str, tuple[int, int, int]] = DEFAULT_COLOURS,
               width: int = 2) -> Any:
    """An RGB copy of ``image`` (PIL image, path or ``[H, W]`` array) with each box drawn in its
    colour role's colour and labelled with its id."""
    from PIL import Image, ImageDraw

    if isinstance(image, (str, Path)):
        image = Image.open(image)
    elif isinstance(image, np.ndarray):
        array = image if image.dtype == np.uint8 else (image / max(1, image.max()) * 255).astype(np.uint8)
        image = Image.fromarray(array)
    canvas = image.convert("RGB")
    draw = ImageDraw.Draw(canvas)
    for box in boxes:
        colour = tuple(colours.get(box.colour, DEFAULT_COLOURS["anatomy"]))
        x1, y1, x2, y2 = box.box_xyxy_orig_px
        draw.rectangle([x1, y1, max(x1, x2 - 1), max(y1, y2 - 1)], outline=colour, width=width)
        if box.box_id:
            draw.text((x1 + 2, y1 + 1), box.box_id, fill=colour)
    return canvas


# ----------------------------------------------------------------------------- checking replies
_THINK = re.compile(r"<think>(.*?)</think>", re.DOTALL)
_ANSWER = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)
_CITE = re.compile(r"<bbox>\s*(.*?)\s*</bbox>", re.DOTALL)
_ID = re.compile(r"^B\d+$")


def check_cot_reply(text: str, box_ids: Iterable[str], min_citations: int = 1) -> tuple[str | None, list[str]]:
    """Check a CoT reply; returns ``(reason, cited_ids)`` with ``reason=None`` when it is usable.

    Rejected (reason): no ``<think>`` block, no ``<answer>`` block or an empty one, ``<answer>``
    before ``<think>``, a ``<bbox>`` outside ``<think>``, a cited id that is not a known box, a
    ``<bbox>`` whose content is not an id, fewer than ``min_citations`` citations.
    """
    known = set(box_ids)
    think, answer = _THINK.search(text), _ANSWER.search(text)
    if think is None:
        return "no <think>...</think> block", []
    if answer is None:
        return "no <answer>...</answer> block", []
    if not answer.group(1).strip():
        return "empty answer", []
    if answer.start() < think.start():
        return "<answer> comes before <think>", []
    cited = [m.group(1) for m in _CITE.finditer(think.group(1))]
    outside = len(_CITE.findall(text)) - len(cited)
    if outside:
        return f"{outside} <bbox> citation(s) outside <think>", []
    bad_form = [c for c in cited if not _ID.match(c)]
    if bad_form:
        return f"<bbox> must hold a box id such as B1, got {bad_form[0]!r:.60}", []
    unknown = sorted(set(cited) - known, key=lambda s: int(s[1:]))
    if unknown:
        return f"cites box(es) that do not exist: {', '.join(unknown)}", []
    if len(cited) < min_citations:
        return f"cites {len(cited)} box(es), at least {min_citations} needed", []
    return None, cited


# ----------------------------------------------------------------------------- builder
@dataclass
class CotOutcome:
    """Result of one ``GroundedCotBuilder.build`` call.

    Attributes:
        row: the sample-schema row, or ``None`` when rejected.
        reason: why it was rejected, or ``None``.
        narrative: the X-ray-aware narrative used (the rewritten CT report, or the X-ray report).
        reply: the raw CoT reply ("" if the LLM call failed).
        boxes: the arranged boxes offered to the LLM (with ids, steps, colours).
    """

    row: dict[str, Any] | None
    reason: str | None
    narrative: str
    reply: str
    boxes: list[GroundedBox]


class GroundedCotBuilder:
    """Builds grounded CoT report rows with an LLM (any OpenAI-compatible endpoint via ``LLMClient``).

    Args:
        client: the LLM client (its disk cache, retries, rate limit and cost log apply).
        reading_order: the anatomy walk; ``None`` loads the chest default.
        rewrite_prompt, report_prompt: prompt templates; ``None`` loads ``cot_rewrite.v1`` /
            ``cot_report.v1`` from ``configs/prompts/synth/``.
        box_space: the space boxes are written in in the assistant text: ``"resized_px"``
            (Citrus-V / Qwen2.5-VL, ``CITRUS_V.bbox_tag``), ``"norm1000"`` (Qwen3-VL) or
            ``"orig_px"``.
        min_pixels, max_pixels, factor: Qwen smart-resize settings for ``"resized_px"`` (the
            processor's defaults: 56·56, 28·28·1280, 28).
        user_prompt: the user turn of each row (with its ``<image>`` placeholder).
        send_image: attach the box overlay to the CoT request (for a VLM endpoint).
        min_citations: replies citing fewer boxes are rejected.
        max_tokens: completion cap per request.
        tags: the rows' ``tags``.
    """

    def __init__(
        self,
        client: LLMClient,
        reading_order: ReadingOrder | None = None,
        *,
        rewrite_prompt: PromptTemplate | None = None,
        report_prompt: PromptTemplate | None = None,
        box_space: BoxSpace = "resized_px",
        min_pixels: int = 56 * 56,
        max_pixels: int = 28 * 28 * 1280,
        factor: int = 28,
        user_prompt: str = DEFAULT_USER_PROMPT,
        send_image: bool = True,
        min_citations: int = 1,
        max_tokens: int | None = None,
        tags: Mapping[str, list[str]] | None = None,
    ):
        if box_space not in ("resized_px", "norm1000", "orig_px"):
            raise ValueError(f"box_space must be resized_px / norm1000 / orig_px, got {box_space!r}")
        if user_prompt.count("<image>") != 1:
            raise ValueError("user_prompt must hold exactly one <image> placeholder")
        prompts = default_config_dir() / "prompts" / "synth"
        self.client = client
        self.reading_order = reading_order or ReadingOrder.from_yaml()
        self.rewrite_prompt = rewrite_prompt or load_prompt(prompts / "cot_rewrite.v1.md")
        self.report_prompt = report_prompt or load_prompt(prompts / "cot_report.v1.md")
        self.box_space = box_space
        self.resize = (min_pixels, max_pixels, factor)
        self.user_prompt = user_prompt
        self.send_image = send_image
        self.min_citations = min_citations
        self.max_tokens = max_tokens
        self.tags = dict(tags) if tags is not None else {"modality": ["X-Ray"], "task": ["Report Generation"],
                                                          "region": ["Chest"]}

    # ------------------------------------------------------------------ steps
    def arrange(self, boxes: Sequence[GroundedBox]) -> list[GroundedBox]:
        """Order boxes by the reading order, merge them as each step says, give ids ``B1``...

        Boxes matching no step are dropped (logged); each box goes to its first matching step.
        """
        by_step: list[list[GroundedBox]] = [[] for _ in self.reading_order.steps]
        dropped = []
        for box in boxes:
            for index, step in enumerate(self.reading_order.steps):
                if step.matches(box.name):
                    by_step[index].append(box)
                    break
            else:
                dropped.append(box.name)
        if dropped:
            logger.debug("boxes outside the reading order dropped: %s", dropped)
        out: list[GroundedBox] = []
        for step, members in zip(self.reading_order.steps, by_step):
            if not members:
                continue
            if step.merge == "all":
                groups = {step.name: members}
            elif step.merge == "side":
                groups = {}
                for box in members:
                    side = _side(box.name)
                    groups.setdefault(f"{side} {step.name}" if side else step.name, []).append(box)
            else:
                groups = {box.name.replace("_", " "): [box] for box in members}
            for name, group in groups.items():
                union = _union([b.box_xyxy_orig_px for b in group])
                out.append(GroundedBox(name, union, step.name, step.colour, f"B{len(out) + 1}"))
        return out

    def rewrite(self, ct_report: str) -> str:
        """Prompt 1: a CT report → an X-ray-aware narrative.

        Raises:
            LLMError: the request failed after the client's retries.
        """
        prompt = self.rewrite_prompt.render(report=ct_report.strip())
        return self.client.chat([user_message(prompt)], max_tokens=self.max_tokens).text.strip()

    def _text_box(self, box: tuple[float, float, float, float], orig_hw: tuple[int, int]) -> list[int]:
        height, width = orig_hw
        if self.box_space == "orig_px":
            sx = sy = 1.0
        elif self.box_space == "norm1000":
            sx, sy = 1000.0 / width, 1000.0 / height
        else:
            min_pixels, max_pixels, factor = self.resize
            rh, rw = smart_resize(height, width, factor, min_pixels, max_pixels)
            sx, sy = rw / width, rh / height
        x1, y1, x2, y2 = box
        return [round(x1 * sx), round(y1 * sy), round(x2 * sx), round(y2 * sy)]

    def image_size(self, orig_hw: tuple[int, int]) -> ImageSize:
        """Original and resized size of an image, for ``parse_boxes`` on the produced text."""
        min_pixels, max_pixels, factor = self.resize
        return ImageSize(tuple(orig_hw), smart_resize(orig_hw[0], orig_hw[1], factor, min_pixels, max_pixels))

    def build(
        self,
        image: str | Path,
        boxes: Sequence[GroundedBox],
        report: str,
        *,
        sample_id: str,
        source: Literal["ct", "xray"] = "ct",
        image_path_in_row: str | None = None,
    ) -> CotOutcome:
        """One grounded CoT row.

        Args:
            image: the radiograph (DRR or real X-ray) file; boxes are in its pixels.
            boxes: named boxes on it (``boxes_from_structures`` / ``boxes_from_detections`` /
                ``boxes_from_model_text``).
            report: the CT report (``source="ct"``: rewritten first) or the X-ray report.
            sample_id: the row's ``id``.
            source: ``"ct"`` or ``"xray"``.
            image_path_in_row: the path written into ``images`` (e.g. relative to the JSONL);
                default ``str(image)``.

        Returns:
            ``CotOutcome``; ``row`` is ``None`` and ``reason`` says why when rejected (LLM
            failure, nothing to cite, bad reply).
        """
        from PIL import Image

        if source not in ("ct", "xray"):
            raise ValueError(f"source must be 'ct' or 'xray', got {source!r}")
        with Image.open(image) as handle:
            width, height = handle.size
            overlay_source = handle.copy()
        arranged = self.arrange(boxes)
        if not arranged:
            return CotOutcome(None, "no box matches the reading order", "", "", arranged)
        if not report.strip():
            return CotOutcome(None, "empty report", "", "", arranged)
        try:
            narrative = self.rewrite(report) if source == "ct" else report.strip()
        except LLMError as err:
            return CotOutcome(None, f"rewrite request failed: {err}", "", "", arranged)
        if not narrative:
            return CotOutcome(None, "empty narrative from the rewrite", "", "", arranged)
        listing = "\n".join(f"{b.box_id}: {b.name} ({b.step}, {b.colour})" for b in arranged)
        order = "\n".join(f"{i}. {step.name}" for i, step in enumerate(self.reading_order.steps, start=1)
                          if any(b.step == step.name for b in arranged))
        prompt = self.report_prompt.render(narrative=narrative, boxes=listing, reading_order=order)
        images = [draw_boxes(overlay_source, arranged, self.reading_order.colours)] if self.send_image else []
        try:
            reply = self.client.chat([system_message("You write radiology reports."), user_message(prompt, images)],
                                     max_tokens=self.max_tokens).text
        except LLMError as err:
            return CotOutcome(None, f"report request failed: {err}", narrative, "", arranged)
        reason, cited = check_cot_reply(reply, [b.box_id for b in arranged], self.min_citations)
        if reason:
            return CotOutcome(None, reason, narrative, reply, arranged)
        by_id = {b.box_id: b for b in arranged}

        def substitute(match: re.Match[str]) -> str:
            box = by_id[match.group(1)]
            return "<bbox>[{}, {}, {}, {}]</bbox>".format(*self._text_box(box.box_xyxy_orig_px, (height, width)))

        think = _THINK.search(reply).group(1).strip()
        answer = _ANSWER.search(reply).group(1).strip()
        assistant = f"<think>\n{_CITE.sub(substitute, think)}\n</think>\n<answer>\n{answer}\n</answer>"
        order_cited = list(dict.fromkeys(cited))
        row = {
            "id": sample_id,
            "messages": [{"role": "user", "content": self.user_prompt}, {"role": "assistant", "content": assistant}],
            "images": [image_path_in_row or str(image)],
            "objects": {"ref": [by_id[i].name for i in order_cited],
                        "bbox": [[float(v) for v in by_id[i].box_xyxy_orig_px] for i in order_cited],
                        "bbox_type": "real", "image_id": [0] * len(order_cited)},
            "tags": {k: list(v) for k, v in self.tags.items()},
            "synth": {"pipeline": "grounded_cot", "source": source, "reading_order": self.reading_order.name,
                      "prompts": [self.rewrite_prompt.tag, self.report_prompt.tag] if source == "ct"
                      else [self.report_prompt.tag], "model": self.client.model},
        }
        parse_sample(row, sample_id)  # a builder bug, not a bad reply, if this raises
        return CotOutcome(row, None, narrative, reply, arranged)

    def build_many(self, items: Iterable[Mapping[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
        """``build`` over dicts of its arguments; returns ``(rows, rejects)`` where each reject is
        ``{"id", "reason"}``. Counts are logged."""
        rows, rejects = [], []
        for item in items:
            outcome = self.build(**item)
            if outcome.row is not None:
                rows.append(outcome.row)
            else:
                rejects.append({"id": str(item.get("sample_id")), "reason": outcome.reason or ""})
        logger.info("grounded CoT: %d rows kept, %d rejected", len(rows), len(rejects))
        return rows, rejects

"""The tag taxonomy of the Citrus-V paper (Table 2): 13 modalities, 15 tasks, 15 anatomical regions."""

from __future__ import annotations

__all__ = ["MODALITIES", "REGIONS", "TASKS", "TAXONOMY", "canonical_tag"]

MODALITIES = (
    "Histopathology", "CT", "X-Ray", "MRI", "NIR", "Ultrasound", "Microscopy", "OCT", "Dermoscopy",
    "Photograph", "Endoscopy", "Fundus", "Other",
)
TASKS = (
    "Examination Selection", "Report Analysis", "Prior Comparison", "Modality Recognition", "Organ Recognition",
    "Image Description", "Report Generation", "Lesion Localization", "Differential Diagnosis", "Symptoms Inference",
    "Treatment Generation", "Treatment Selection", "Treatment Details", "Basic", "Other",
)
REGIONS = (
    "Abdomen", "Chest", "Brain", "Neck", "Cell", "Lower Limb", "Upper Limb", "Oral Cavity", "Eye", "Breast",
    "Gastrointestinal Tract", "Pelvis", "Foot", "Joint", "Other",
)
TAXONOMY: dict[str, tuple[str, ...]] = {"modality": MODALITIES, "task": TASKS, "region": REGIONS}

_LOOKUP = {kind: {value.casefold(): value for value in values} for kind, values in TAXONOMY.items()}


def canonical_tag(kind: str, value: str) -> str:
    """The taxonomy's spelling of ``value`` (case-insensitive match).

    Raises:
        ValueError: ``kind`` is not modality / task / region, or ``value`` is not in it.
    """
    if kind not in _LOOKUP:
        raise ValueError(f"unknown tag kind {kind!r}; expected one of {sorted(_LOOKUP)}")
    try:
        return _LOOKUP[kind][str(value).strip().casefold()]
    except KeyError:
        raise ValueError(f"{value!r} is not a {kind} of the taxonomy ({', '.join(TAXONOMY[kind])})") from None

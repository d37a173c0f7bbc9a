"""Model-based enhancement of existing data (paper §3.1.2 and §3.2.1), through ``citrusv.llm``:

* ``consolidate``: short question sets about one image (grouped by pixel hash) merged into holistic
  questions, every original fact checked (rules, an LLM judge for long answers);
* ``reason``: verified visual-reasoning QA (``<think>`` / ``<answer>``), kept only when the final
  answer matches the generated standard answer;
* ``deid``: LLM rewrite of doctor–patient dialogues without personal information, checked with
  the rule-based PHI scrubber (``citrusv.curate.phi``).

Prompts are versioned files in ``configs/prompts/enhance/`` (``prompts``); checks are pure
functions (``checks``); ``common.run_units`` is the resumable run loop. ``citrusv enhance`` is the
command line.
"""

from .checks import FORMATS, FactCheck, check_fact, extract_choice, match_closed
from .common import Outcome, RunSummary, Unit, image_hash, output_paths, run_units
from .consolidate import ConsolidateConfig, Consolidator, group_by_image
from .deid import DialogueDeidentifier, medical_quantities, select_dialogues
from .prompts import PromptTemplate, load_prompt
from .reason import (
           ReasonConfig,
           ReasoningSynthesizer,
           question_difficulty,
           select_candidates,
)

__all__ = ["FORMATS", "ConsolidateConfig", "Consolidator", "DialogueDeidentifier", "FactCheck", "Outcome",
           "PromptTemplate", "ReasonConfig", "ReasoningSynthesizer", "RunSummary", "Unit", "check_fact",
           "extract_choice", "group_by_image", "image_hash", "load_prompt", "match_closed", "medical_quantities",
           "output_paths", "question_difficulty", "run_units", "select_candidates", "select_dialogues"]

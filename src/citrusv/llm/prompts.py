"""Versioned prompt files: ``configs/prompts/<task>/<name>.v<N>.md``, shared by every package that
talks to an LLM (``citrusv.enhance``, ``citrusv.synth``, ...).

Each file starts with a YAML front matter block naming the prompt and its version, then the
prompt text with ``$variable`` placeholders (``string.Template``, so JSON braces need no
escaping)::

    ---
    name: consolidate
    version: 1
    variables: [qa_list, num_questions]
    ---
    You are an expert ...

A prompt's ``tag`` (``"consolidate.v1"``) is stored in every row it helped produce. A changed
prompt gets a new file with the next version; old files stay so old rows can be traced.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from pathlib import Path

__all__ = ["PROMPTS_ROOT", "PromptTemplate", "load_prompt", "load_prompt_file"]

#: ``configs/prompts`` of a source checkout (one sub-folder per task).
PROMPTS_ROOT = Path(__file__).resolve().parents[3] / "configs" / "prompts"
_FILE = re.compile(r"^(?P<name>[a-z0-9_]+)\.v(?P<version>\d+)\.md$")


@dataclass(frozen=True)
class PromptTemplate:
    """One prompt file.

    Attributes:
        name, version: from the front matter (they must agree with the file name).
        text: the body, with ``$variable`` placeholders.
        variables: the placeholders the front matter declares.
        path: the file.
    """

    name: str
    version: int
    text: str
    variables: tuple[str, ...]
    path: Path

    @property
    def tag(self) -> str:
        """``"<name>.v<version>"``, stored in produced rows."""
        return f"{self.name}.v{self.version}"

    def render(self, **values: object) -> str:
        """The prompt with every declared variable filled in.

        Raises:
            ValueError: a declared variable is missing, or an undeclared one is given.
        """
        missing = sorted(set(self.variables) - set(values))
        extra = sorted(set(values) - set(self.variables))
        if missing or extra:
            raise ValueError(f"prompt {self.tag}: missing variables {missing}, unexpected {extra}")
        return string.Template(self.text).substitute({k: str(v) for k, v in values.items()})


def load_prompt_file(path: str | Path) -> PromptTemplate:
    """Read one prompt file (its name must be ``<name>.v<N>.md`` and agree with the front matter).

    Raises:
        FileNotFoundError: no such file; ValueError: a malformed prompt file.
    """
    import yaml

    path = Path(path)
    raw = path.read_text(encoding="utf-8")
    match = re.match(r"^---\n(.*?)\n---\n(.*)$", raw, re.DOTALL)
    if match is None:
        raise ValueError(f"{path}: a prompt file starts with a '---' YAML front matter block")
    header = yaml.safe_load(match.group(1)) or {}
    file_match = _FILE.match(path.name)
    if not isinstance(header, dict) or file_match is None:
        raise ValueError(f"{path}: expected a file named <name>.v<N>.md with a YAML mapping header")
    name, version = header.get("name"), header.get("version")
    if name != file_match["name"] or version != int(file_match["version"]):
        raise ValueError(f"{path}: front matter says {name!r} version {version!r}; the file name says "
                         f"{file_match['name']!r} version {file_match['version']}")
    variables = tuple(header.get("variables") or ())
    text = match.group(2).strip() + "\n"
    used = {m.group("named") or m.group("braced") for m in string.Template.pattern.finditer(text)
            if m.group("named") or m.group("braced")}
    if used != set(variables):
        raise ValueError(f"{path}: placeholders {sorted(used)} but front matter declares {sorted(variables)}")
    return PromptTemplate(name=name, version=version, text=text, variables=variables, path=path)


def load_prompt(name: str, version: int | None = None, root: str | Path = PROMPTS_ROOT) -> PromptTemplate:
    """The prompt ``name`` at ``version`` (default: the highest version present) in ``root``.

    Args:
        name: e.g. ``"consolidate"``.
        version: a version number, or ``None`` for the newest.
        root: the prompt folder, e.g. ``PROMPTS_ROOT / "enhance"``.

    Raises:
        FileNotFoundError: no such prompt (or version) under ``root``.
        ValueError: a malformed prompt file.
    """
    root = Path(root)
    versions = {}
    for path in root.glob(f"{name}.v*.md"):
        match = _FILE.match(path.name)
        if match and match["name"] == name:
            versions[int(match["version"])] = path
    if not versions:
        raise FileNotFoundError(f"no prompt {name!r} (files {name}.v<N>.md) under {root}")
    if version is None:
        version = max(versions)
    if version not in versions:
        raise FileNotFoundError(f"prompt {name!r} has versions {sorted(versions)} under {root}, not {version}")
    return load_prompt_file(versions[version])

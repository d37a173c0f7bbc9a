"""The common part of every benchmark's JSON: what ran, where, with which code and libraries."""

from __future__ import annotations

import datetime
import json
import platform
import subprocess
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


def write_report(name: str, out: Path, config: dict[str, Any], results: dict[str, Any]) -> None:
    """Write ``{name, git_commit, date, device, versions, config, **results}`` to ``out``."""
    import torch
    import transformers

    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    report = {
        "name": name,
        "git_commit": commit or None,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "device": {"type": "cuda" if torch.cuda.is_available() else "cpu",
                   "processor": platform.processor() or platform.machine(), "threads": torch.get_num_threads()},
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "transformers": transformers.__version__},
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in config.items()},
        **results,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"wrote {out}")

"""Lazy package attributes (PEP 562): public names load on first use, so importing a package
does not import torch before something needs it."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_attributes"]


def lazy_attributes(package: str, homes: Mapping[str, str],
                    namespace: dict[str, Any]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``: name → module that defines it (absolute, or
    relative to ``package``). A loaded name is cached in ``namespace`` (the package's globals)."""

    def __getattr__(name: str) -> Any:
        if name in homes:
            value = getattr(importlib.import_module(homes[name], package), name)
            namespace[name] = value
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted({*namespace.get("__all__", ()), *(n for n in namespace if not n.startswith("_"))})

    return __getattr__, __dir__

"""Import optional dependencies with an error that says which extra to install."""

from __future__ import annotations

import importlib
from types import ModuleType

from dsbuild.errors import ConfigError


def require(module: str, *, extra: str, purpose: str) -> ModuleType:
    """Import ``module`` or raise a one-line :class:`ConfigError` naming the pip extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ConfigError(
            f"{purpose} needs the optional package {module!r}: pip install 'dsbuild[{extra}]' (or 'dsbuild[all]')"
        ) from None

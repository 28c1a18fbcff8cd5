"""dsbuild's cache folder, shared by every component that caches (translations, alignments,
LLM answers, parallel text, tokenised text, the Maltese model)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root(*parts: str) -> Path:
    """``$DSBUILD_CACHE``, else ``$XDG_CACHE_HOME/dsbuild`` (``~/.cache/dsbuild``), joined with ``parts``.

    Read on every call, so a test or a build that sets ``DSBUILD_CACHE`` is followed at once.
    """
    root = os.environ.get("DSBUILD_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", str(Path.home() / ".cache")), "dsbuild")
    return Path(root).joinpath(*parts)

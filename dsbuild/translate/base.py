"""The translator interface: translate texts and score given translations (teacher forcing)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class Translator(Protocol):
    """Implementations register in ``dsbuild.registry.translators``."""

    name: str

    def translate(self, texts: Sequence[str], src_lang: str, tgt_lang: str) -> list[str]:
        """Translate each text; same length and order as ``texts``."""
        ...

    def score(self, sources: Sequence[str], targets: Sequence[str], src_lang: str, tgt_lang: str) -> list[list[float]]:
        """Per-token log-probabilities of each target given its source (teacher-forced, batched)."""
        ...

    def describe(self) -> dict[str, Any]:
        """Model id, revision and parameters, recorded in provenance."""
        ...

"""Session fixtures for the challenge-set tests: every challenge builder built once on its embedded default."""

from __future__ import annotations

from pathlib import Path

import pytest

CHALLENGE_BUILDERS = ("nli-hans", "nli-fragments", "nli-stress", "ner-invariance", "bilingual-words")


@pytest.fixture(scope="session")
def challenge_builds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """``{name: BuildResult}`` for each challenge builder with default options (offline, shipped data)."""
    from dsbuild.executor import build
    from dsbuild.registry import builders

    out = tmp_path_factory.mktemp("challenge-builds")
    return {name: build(builders.get(name)(), out) for name in CHALLENGE_BUILDERS}


@pytest.fixture(scope="session")
def challenge_out(challenge_builds: dict[str, object]) -> Path:
    return Path(next(iter(challenge_builds.values())).path).parents[1]  # type: ignore[attr-defined]

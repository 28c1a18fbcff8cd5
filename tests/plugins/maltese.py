"""Session fixtures for the Maltese tests: shipped annotations, the shipped classifier, one default build."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def maltese_sentences():
    from dsbuild.maltese import resources
    from dsbuild.maltese.readers import read_etymology_tsv

    return read_etymology_tsv(resources.annotations_path())


@pytest.fixture(scope="session")
def maltese_classifier():
    from dsbuild.maltese.etymology import load_classifier

    return load_classifier()


@pytest.fixture(scope="session")
def maltese_default_build(tmp_path_factory):
    """The embedded default build (shipped sentences, all pipelines), built once per session."""
    from dsbuild.executor import build
    from dsbuild.registry import builders

    out: Path = tmp_path_factory.mktemp("maltese-build")
    return build(builders.get("maltese")(), out)

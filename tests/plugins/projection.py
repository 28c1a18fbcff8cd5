"""Shared fixtures for the projection tests: a small europarl-ner projection build.

``europarl_projection`` builds europarl-ner (en -> es) on the first 200 sentence pairs with the
first 1,000 lines of the shipped parallel text and short eflomal runs, once per session, with a
private DSBUILD_CACHE (so the aligner really runs). About 10 s of CPU.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path
from typing import Any

import pytest

PARALLEL = Path(__file__).resolve().parents[2] / "builders" / "data" / "parallel" / "en-es"


def small_parallel(folder: Path, n: int = 1000) -> dict[str, str]:
    """The first ``n`` lines of the shipped en-es parallel text, as two plain files."""
    out = {}
    for lang in ("en", "es"):
        with gzip.open(PARALLEL / f"en-es.{lang}.gz", "rt", encoding="utf-8") as f:
            lines = [next(f) for _ in range(n)]
        path = folder / f"par.{lang}"
        path.write_text("".join(lines), encoding="utf-8")
        out[lang] = str(path)
    return out


def build_europarl(out: Path, cache: Path, **options: Any) -> Any:
    """Build europarl-ner with ``options`` into ``out`` using ``cache`` as DSBUILD_CACHE."""
    from dsbuild.config import resolve_options
    from dsbuild.executor import build
    from dsbuild.registry import builders

    cls = builders.get("europarl-ner")
    old = os.environ.get("DSBUILD_CACHE")
    os.environ["DSBUILD_CACHE"] = str(cache)
    try:
        return build(cls(resolve_options(cls.Options, options)), out, overwrite=True)
    finally:
        if old is None:
            os.environ.pop("DSBUILD_CACHE", None)
        else:
            os.environ["DSBUILD_CACHE"] = old


@pytest.fixture(scope="session")
def europarl_small_options(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    par = small_parallel(tmp_path_factory.mktemp("parallel"))
    return {"max_sentences": 200, "parallel_src": par["en"], "parallel_tgt": par["es"], "rel_iterations": 0.3}


@pytest.fixture(scope="session")
def europarl_projection(tmp_path_factory: pytest.TempPathFactory, europarl_small_options: dict[str, Any]) -> Any:
    """BuildResult of the small en -> es projection build (do not modify its files)."""
    return build_europarl(tmp_path_factory.mktemp("europarl-proj"), tmp_path_factory.mktemp("cache"),
                          **europarl_small_options)

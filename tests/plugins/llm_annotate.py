"""Session fixtures for the llm-annotate tests: a synthetic topic source file, its label schema and a
prompt template in the tiny topic LM's format, a scripted loopback server, and a build helper.

The tiny LM and the loopback server answering from it come from ``tests/plugins/tiny_lm.py``
(``tiny_lm_path``, ``llm_server``). The scripted server here answers from keywords instead, and
answers badly on purpose for texts that hold a marker word, so parse rejects are exercised exactly:
``zzgarble`` -> truncated JSON (unparseable), ``zzcooking`` -> ``cooking`` (out of schema).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

TOPIC_TEMPLATE = "Classify this text.\nText: {{ text }}\nTopic:"
UNPARSEABLE_MARK = "zzgarble"
OUT_OF_SCHEMA_MARK = "zzcooking"


@pytest.fixture(scope="session")
def topic_schema_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from dsbuild.llm.synthetic_topics import LABEL_DEFINITIONS

    path = tmp_path_factory.mktemp("schema") / "topics.yaml"
    path.write_text(yaml.safe_dump({"name": "synthetic-topics", "license": "cc0-1.0",
                                    "labels": [{"name": k, "definition": v} for k, v in LABEL_DEFINITIONS.items()]}),
                    encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def topic_template_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "topic.j2"
    path.write_text(TOPIC_TEMPLATE, encoding="utf-8")
    return path


def write_topic_source(path: Path, n: int, seed: int, *, extras: bool = True) -> list[dict[str, Any]]:
    """A JSONL source of ``n`` synthetic topic texts (with labels), plus, with ``extras``: an empty text,
    a duplicate of the first text, and one text of each bad-answer marker."""
    from dsbuild.llm.synthetic_topics import synthetic_topic_texts

    rows = synthetic_topic_texts(n, seed=seed)
    if extras:
        rows = rows + [
            {"id": "empty-1", "text": "   ", "language": "en", "label": "sport"},
            {"id": "dup-1", "text": "  " + rows[0]["text"].upper() + " ", "language": rows[0]["language"],
             "label": None},
            {"id": "garble-1", "text": f"{UNPARSEABLE_MARK} market price bank .", "language": "en", "label": None},
            {"id": "cooking-1", "text": f"{OUT_OF_SCHEMA_MARK} match goal team .", "language": "en", "label": None},
        ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return rows


@pytest.fixture(scope="session")
def topic_source_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("source") / "topics.jsonl"
    write_topic_source(path, 48, seed=777)
    return path


def keyword_answer(messages: list[dict[str, str]], body: dict[str, Any], enum: list[str] | None) -> list[str]:
    """A scripted teacher: the topic whose words occur most in the text; bad answers for the markers."""
    from dsbuild.llm.synthetic_topics import LABELS, TOPIC_WORDS, pseudo_word

    prompt = messages[-1]["content"]
    text = prompt.split("Text:", 1)[-1]
    n = int(body.get("n") or 1)
    if UNPARSEABLE_MARK in text:
        return ['{"topic": "spo'] * n
    if OUT_OF_SCHEMA_MARK in text:
        return ["cooking"] * n
    words = text.split()
    score = {lab: sum(w in words or pseudo_word(w) in words for w in TOPIC_WORDS[lab]) for lab in LABELS}
    return [json.dumps({"topic": max(LABELS, key=lambda lab: score[lab])})] * n


@pytest.fixture(scope="session")
def scripted_server() -> Iterator[Any]:
    from tests.llm_server import FakeLLMServer

    server = FakeLLMServer(keyword_answer, model="keyword-teacher", root="keyword-teacher@v1").start()
    yield server
    server.stop()


def build_llm_annotate(out: Path, **options: Any) -> Any:
    """Build llm-annotate in this process with ``options``; returns the BuildResult."""
    from dsbuild.config import resolve_options
    from dsbuild.executor import build
    from dsbuild.registry import builders

    cls = builders.get("llm-annotate")
    return build(cls(resolve_options(cls.Options, options)), out, progress=False)


def openai_options(server: Any, source: Path, schema: Path, template: Path, cache: Path, **extra: Any) -> dict[str, Any]:
    """Options for a build against a loopback server (fast retries, short timeouts)."""
    return {"source": str(source), "schema": str(schema), "template": str(template), "backend": "openai",
            "model": server.model, "base_url": server.base_url, "cache_dir": str(cache), "label_column": "label",
            "test_fraction": 0.5, "dev_fraction": 0.2, "batch_size": 8, "max_tokens": 16,
            "backend_options": {"backoff_base": 0.01, "backoff_max": 0.05, "max_attempts": 4, "timeout": 10,
                                "max_concurrency": 2}, **extra}

"""Session fixtures: a tiny causal LM trained on the synthetic topic task, and a loopback
OpenAI-compatible server that answers from it.

The model is trained once (well under a minute on 2 CPU cores) and cached on disk under
``$DSBUILD_TEST_CACHE`` (default ``~/.cache/dsbuild-tests``) ``/tiny-topic-lm-<hash>``, keyed by the
task's output and the training settings (:func:`dsbuild.llm.synthetic_topics.tiny_lm_key`).

Fixtures:

* ``tiny_lm_path``: the model folder (``AutoModelForCausalLM`` / ``AutoTokenizer``, with a chat
  template). It answers the topic label of ``topic_messages(text)`` conversations.
* ``tiny_lm_report``: what training recorded (``training.json``).
* ``tiny_llm``: a ``transformers`` backend on the tiny LM (no disk cache, one torch thread).
* ``topic_texts``: 80 held-out labelled texts (``synthetic_topic_texts(80, seed=4242)``).
* ``llm_server``: the :class:`tests.llm_server.FakeLLMServer` (session-wide, started once), reset
  before each test: ``.base_url``, ``.model``, ``.inject(...)``, ``.requests_for(...)``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(scope="session")
def tiny_lm_path() -> Path:
    from dsbuild.llm.synthetic_topics import cached_tiny_lm

    return cached_tiny_lm(seed=0)


@pytest.fixture(scope="session")
def tiny_lm_report(tiny_lm_path: Path) -> dict[str, Any]:
    return json.loads((tiny_lm_path / "training.json").read_text())


@pytest.fixture(scope="session")
def tiny_llm(tiny_lm_path: Path) -> Iterator[Any]:
    from dsbuild.llm.transformers_backend import TransformersLLM

    llm = TransformersLLM(str(tiny_lm_path), cache=False, threads=1, batch_size=16)
    yield llm
    llm.close()


@pytest.fixture(scope="session")
def topic_texts() -> list[dict[str, Any]]:
    from dsbuild.llm.synthetic_topics import synthetic_topic_texts

    return synthetic_topic_texts(80, seed=4242)


@pytest.fixture(scope="session")
def _llm_server_session(tiny_llm: Any) -> Iterator[Any]:
    from tests.llm_server import FakeLLMServer, tiny_lm_answer

    server = FakeLLMServer(tiny_lm_answer(tiny_llm), root=tiny_llm.model_id()).start()
    yield server
    server.stop()


@pytest.fixture()
def llm_server(_llm_server_session: Any) -> Any:
    """The loopback server with no faults and zeroed counters."""
    _llm_server_session.reset()
    return _llm_server_session

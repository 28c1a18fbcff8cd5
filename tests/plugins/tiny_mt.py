"""Session fixtures: the synthetic language pair and a tiny Marian model trained on it.

The model is trained once and cached on disk under
``$DSBUILD_TEST_CACHE`` (default ``~/.cache/dsbuild-tests``) ``/tiny-marian-<hash>``, where the
hash covers the grammar's output and the training settings (see
:func:`dsbuild.synthetic.tiny_marian_key`). A file lock lets parallel sessions share one run.

Fixtures:

* ``synthetic_pairs``: 60 held-out :class:`dsbuild.synthetic.SyntheticPair` s (seed 4242, none in
  the training data), each with entities; gold alignment and target spans included.
* ``tiny_marian_path``: the folder of the tiny model (``MarianMTModel.from_pretrained(path)``,
  ``MarianTokenizer.from_pretrained(path)``). It translates clean ``en`` sentences of the
  synthetic grammar into ``qsy`` and carries ``[`` ``]`` markers when the input has them.
* ``tiny_marian``: ``(model, tokenizer)`` loaded from that folder, in eval mode.
* ``tiny_marian_report``: what training recorded (``training.json``: time, steps, loss, settings).

Run the tiny model on one torch thread (``torch.set_num_threads(1)``, or ``threads=1`` on the
``hf-seq2seq`` translator): it is too small to gain from more, and on a busy machine two threads
spinning against each other make it 10-30x slower.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(scope="session")
def tiny_marian_path() -> Path:
    from dsbuild.synthetic import cached_tiny_marian

    return cached_tiny_marian(seed=0)


@pytest.fixture(scope="session")
def tiny_marian(tiny_marian_path: Path) -> tuple[Any, Any]:
    from transformers import MarianMTModel, MarianTokenizer

    tok = MarianTokenizer.from_pretrained(str(tiny_marian_path))
    model = MarianMTModel.from_pretrained(str(tiny_marian_path)).eval()
    return model, tok


@pytest.fixture(scope="session")
def tiny_marian_report(tiny_marian_path: Path) -> dict[str, Any]:
    """What training recorded (time, steps, loss, hyperparameters)."""
    return json.loads((tiny_marian_path / "training.json").read_text())


@pytest.fixture(scope="session")
def synthetic_pairs(tiny_marian_path: Path) -> list[Any]:
    from dsbuild.synthetic import held_out_pairs

    return held_out_pairs(tiny_marian_path, 60, seed=4242)

"""A toy sharded builder (source + steps) for the execution tests: workers, Ray, kills, resume.

``toy-sharded`` reads ``n`` synthetic sentences lazily, "translates" them (reverses each token),
rejects every ``reject_every``-th, and tags them. Its steps record facts (summed over shards) and
a model, and can be told to fail or to sleep on one shard through environment variables, so tests
can crash or kill a worker at a chosen point. Module-level, so worker processes can import it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from dsbuild.builder import Builder, BuildContext, ConfigSpec, DatasetInfo, Reject
from dsbuild.config import option
from dsbuild.features import example_to_row, ner_features
from dsbuild.pipeline import MapStep, Step
from dsbuild.registry import builders
from dsbuild.spans import Example

FAIL_ENV = "DSBUILD_TOY_FAIL_SHARD"    # "CONFIG/SPLIT/K": the step raises on the shard starting at sentence K
SLEEP_ENV = "DSBUILD_TOY_SLEEP"        # seconds each shard sleeps (to kill a build midway)


@dataclass
class ToyShardedOptions:
    n: int = option(50, "input sentences per split")
    reject_every: int = option(7, "every k-th sentence is rejected")


class Translate(Step):
    name = "translate"

    def __init__(self, builder: Builder, config: str, split: str) -> None:
        self.builder, self.config, self.split = builder, config, split

    def setup(self, ctx: BuildContext) -> None:
        self.loads = self.builder.cached("model", lambda: {"loaded_in": os.getpid()})
        ctx.add_model("toy-translator", revision="r1", kind="machine translation")

    def run(self, items: list[Example], ctx: BuildContext) -> list[Any]:
        delay = float(os.environ.get(SLEEP_ENV, "0") or 0)
        if delay:
            time.sleep(delay)
        first = int(items[0].id.rsplit("-", 1)[1])
        if os.environ.get(FAIL_ENV) == f"{self.config}/{self.split}/{first}":
            raise ValueError("toy translator broke on purpose")
        out: list[Any] = []
        for ex in items:
            k = int(ex.id.rsplit("-", 1)[1])
            ctx.facts["translated"] = ctx.facts.get("translated", 0) + 1
            if self.builder.options.reject_every and k % self.builder.options.reject_every == 0:
                out.append(Reject(ex.id, "toy-untranslatable", f"sentence {k}", ex.to_dict()))
            else:
                words = [w[::-1] for w in ex.words]
                out.append(Example.from_words(ex.id, words, tags=ex.tags()))
        ctx.facts.setdefault("by_split", {})[self.split] = ctx.facts.get("by_split", {}).get(self.split, 0) + len(items)
        return out


@builders.register("toy-sharded")
class ToySharded(Builder):
    name = "toy-sharded"
    version = "1.0.0"
    description = "Toy sharded builder for tests."
    Options = ToyShardedOptions
    history = [("1.0.0", "First toy.")]

    def info(self) -> DatasetInfo:
        return DatasetInfo(pretty_name="Toy sharded", summary="Tiny rows for tests.", languages=["en"],
                           license="cc-by-4.0", task_categories=["token-classification"],
                           task_ids=["named-entity-recognition"], tags=["toy"])

    def configs(self) -> list[ConfigSpec]:
        return [ConfigSpec("x", ner_features(["PER", "LOC"]), ["train", "test"], language="en"),
                ConfigSpec("y", ner_features(["PER", "LOC"]), ["train"], language="en")]

    def source(self, config: ConfigSpec, split: str) -> Iterator[Example]:
        for i in range(self.options.n):
            yield Example.from_words(f"{config.name}-{split}-{i}", ["Ana", "visits", f"Town{i}"],
                                     tags=["B-PER", "O", "B-LOC"])

    def count(self, config: ConfigSpec, split: str) -> int:
        return self.options.n

    def steps(self, config: ConfigSpec, split: str) -> list[Step]:
        return [Translate(self, config.name, split), MapStep("to-row", example_to_row)]

    def finish(self, ctx: BuildContext) -> None:
        facts = ctx.facts["split_facts"]
        ctx.quality["translated"] = sum(f.get("translated", 0) for splits in facts.values() for f in splits.values())


@pytest.fixture
def toy_sharded() -> type[ToySharded]:
    builders.register("toy-sharded", ToySharded)
    return ToySharded

"""Shared fixtures for the foundation tests: a built europarl-ner dataset and toy builders.

``europarl_dir`` is built once per session (about a second). The toy builders are small enough to
build in every test that needs one; they are registered only while a test uses ``toy_builders``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pytest

from dsbuild.builder import Builder, BuildContext, ConfigSpec, DatasetInfo, Reject, Source
from dsbuild.config import option
from dsbuild.features import example_to_row, ner_features
from dsbuild.registry import builders
from dsbuild.spans import Example


@pytest.fixture(scope="session")
def europarl_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``OUT/europarl-ner/VERSION``: the gold configs only (do not modify: copy it first)."""
    from dsbuild.executor import build

    out = tmp_path_factory.mktemp("europarl-out")
    return build(europarl_gold_builder(), out).path


def europarl_gold_builder() -> Builder:
    """europarl-ner with default options, minus projection when the builder has it (the gold configs
    are what these tests need; the projection benchmark has its own tests)."""
    import dataclasses

    from dsbuild.config import resolve_options

    cls = builders.get("europarl-ner")
    fields = {f.name for f in dataclasses.fields(cls.Options)}
    return cls(resolve_options(cls.Options, {"project": False} if "project" in fields else {}))


@dataclass
class ToyOptions:
    n: int = option(7, "examples per split")
    reject_every: int = option(3, "every k-th example (0, k, 2k...) is rejected; 0 rejects none")
    license: str = option("cc-by-4.0", "dataset licence id")
    license_name: str = option("", "licence name when license is 'other'")


class ToyBuilder(Builder):
    """Two configs (a: train+test, b: train) of tiny NER rows, with rejects; records generate calls."""

    name = "toy-ner"
    version = "0.1.0"
    description = "Toy NER builder for tests."
    Options = ToyOptions
    history = [("0.1.0", "First toy.")]
    calls: ClassVar[list[tuple[str, str]]] = []
    fail_on: ClassVar[tuple[str, str] | None] = None  # (config, split) that raises midway, to simulate a kill
    quality: ClassVar[dict[str, Any]] = {}

    def info(self) -> DatasetInfo:
        return DatasetInfo(
            pretty_name="Toy NER", summary="Tiny rows for tests.", languages=["en", "mt"], license=self.options.license,
            license_name=self.options.license_name, license_link="https://example.org/licence" if self.options.license_name else "",
            task_categories=["token-classification"], task_ids=["named-entity-recognition"], multilinguality="multilingual",
            tags=["toy"], sources=[Source("toy-source", "cc-by-4.0", url="https://example.org", citation="@misc{toy}")],
            method="Generated.", limitations="Not real data.",
        )

    def configs(self) -> list[ConfigSpec]:
        feats = ner_features(["PER", "LOC"])
        return [ConfigSpec("a", feats, ["train", "test"], language="en"), ConfigSpec("b", feats, ["train"], language="mt")]

    def generate(self, config: ConfigSpec, split: str, ctx: BuildContext) -> Iterator[dict[str, Any] | Reject]:
        type(self).calls.append((config.name, split))
        if (config.name, split) == ("a", "train"):  # recorded by one split only: must survive a resume
            ctx.add_seed("toy", 13)
            ctx.add_model("toy-model", revision="abc123", kind="aligner", threshold=0.5)
            ctx.facts["first_split_rows"] = self.options.n
        for i in range(self.options.n):
            if type(self).fail_on == (config.name, split) and i == self.options.n // 2:
                raise RuntimeError("simulated kill")
            ctx.read()
            ex = Example.from_words(f"{config.name}-{split}-{i}", ["Ana", "visits", f"Town{i}"],
                                    tags=["B-PER", "O", "B-LOC"])
            if self.options.reject_every and i % self.options.reject_every == 0:
                yield Reject(ex.id, "toy-reject", f"example {i} is a multiple of {self.options.reject_every}", ex.to_dict())
            else:
                yield example_to_row(ex)

    def finish(self, ctx: BuildContext) -> None:
        ctx.quality.update(type(self).quality)


class LossyBuilder(ToyBuilder):
    """Reads one example more than it emits: the executor must refuse to write."""

    name = "toy-lossy"

    def generate(self, config: ConfigSpec, split: str, ctx: BuildContext) -> Iterator[dict[str, Any] | Reject]:
        rows = list(super().generate(config, split, ctx))
        yield from rows[:-1]


@pytest.fixture
def toy_builders() -> Iterator[dict[str, type[Builder]]]:
    """Register the toy builders for one test and reset their call logs and switches."""
    classes = {"toy-ner": ToyBuilder, "toy-lossy": LossyBuilder}
    for name, cls in classes.items():
        builders.register(name, cls)
    ToyBuilder.calls.clear()
    ToyBuilder.fail_on = None
    ToyBuilder.quality = {}
    yield classes
    for name in classes:
        builders._items.pop(name, None)
    ToyBuilder.fail_on = None
    ToyBuilder.quality = {}

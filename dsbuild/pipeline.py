"""Steps and shards (after datatrove): a shard of input examples goes through small steps, one job each.

A sharded builder declares, per config and split, a lazily read **source** of input examples and
a list of **steps** (read, translate, project, QC, to-row...). The executor cuts the source into
shards of ``shard_size`` examples and runs the steps on each shard, in any worker::

    class Translate(Step):
        name = "translate"

        def run(self, items, ctx):            # the shard's live items, in order
            texts = self.builder.translator().translate([it.text for it in items], ...)
            return [replace(it, target=t) if t else Reject(it.id, "empty-translation", ...)
                    for it, t in zip(items, texts)]

Contract of :meth:`Step.run`: it gets the items that are still alive (not yet rejected) and
returns **one value per item**, in the same order: the item for the next step, or a
:class:`~dsbuild.builder.Reject`. The last step returns rows (dicts matching the config's
features). So every input example ends as exactly one row or one reject, and the executor can
count and check that without the builder calling ``ctx.read``. A last step may return a
:class:`Rows` instead of one row when one input becomes several output units (one row per event
trigger, say); each entry then counts as one input unit.

Steps load what they need (models) in :meth:`Step.setup`, which runs once per worker process,
not once per shard, and report facts (summed over shards in shard order) through ``ctx``.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from dsbuild.builder import BuildContext, Builder


@dataclass
class Rows:
    """Several output units (rows or rejects) made from one input item, e.g. one per event trigger."""

    items: list[Any] = field(default_factory=list)


class Step(ABC):
    """One job applied to the live items of a shard. See the module docstring for the contract."""

    #: short name shown in progress and timings (``translate``, ``project``...)
    name: str = "step"

    def setup(self, ctx: BuildContext) -> None:
        """Load what the step needs (models, tables). Runs once per worker, before its first shard."""

    @abstractmethod
    def run(self, items: list[Any], ctx: BuildContext) -> Sequence[Any]:
        """Return one value per item, in order: the item for the next step, a Reject, or (last step) a row."""


class MapStep(Step):
    """A step made from a function applied to each item: ``MapStep("to-row", make_row)``."""

    def __init__(self, name: str, fn: Callable[[Any], Any]) -> None:
        self.name = name
        self.fn = fn

    def run(self, items: list[Any], ctx: BuildContext) -> list[Any]:
        return [self.fn(item) for item in items]


def run_steps(steps: Sequence[Step], items: list[Any], ctx: BuildContext,
              on_step: Callable[[str, int], None] | None = None) -> list[Any]:
    """Run ``steps`` over ``items``; returns one final value per input item (row, Reject or Rows).

    Rejected items skip the remaining steps. ``on_step(name, n_live)`` is called as each step
    starts (for progress).
    """
    from dsbuild.builder import Reject
    from dsbuild.errors import DsbuildError

    slots: list[Any] = list(items)
    for step in steps:
        live = [i for i, value in enumerate(slots) if not isinstance(value, (Reject, Rows))]
        if not live:
            break
        if on_step is not None:
            on_step(step.name, len(live))
        with ctx.timer(f"step/{step.name}"):
            out = list(step.run([slots[i] for i in live], ctx))
        if len(out) != len(live):
            raise DsbuildError(f"step {step.name!r} returned {len(out)} values for {len(live)} items; a step must "
                               f"return one value (item, Reject or row) per item it is given (builder bug)")
        for i, value in zip(live, out):
            slots[i] = value
    return slots


def builder_steps(builder: Builder, config: Any, split: str) -> list[Step]:
    """The builder's steps for one config and split (``Builder.steps``), checked once."""
    steps = list(builder.steps(config, split))
    for step in steps:
        if not isinstance(step, Step):
            raise TypeError(f"{type(builder).__name__}.steps() returned {step!r}; steps must be dsbuild.pipeline.Step")
    return steps


def merge_facts(into: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """Fold shard facts: numbers add, dicts merge key by key, other values keep the first shard's."""
    for key, value in new.items():
        if key not in into:
            into[key] = json.loads(json.dumps(value))
        elif isinstance(value, dict) and isinstance(into[key], dict):
            merge_facts(into[key], value)
        elif _is_number(value) and _is_number(into[key]):
            into[key] = into[key] + value
    return into


def keep_first(into: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """Fold shard settings: dicts merge key by key, a value already there is kept."""
    for key, value in new.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            keep_first(into[key], value)
        else:
            into.setdefault(key, value)
    return into


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


__all__ = ["MapStep", "Rows", "Step", "builder_steps", "keep_first", "merge_facts", "run_steps"]

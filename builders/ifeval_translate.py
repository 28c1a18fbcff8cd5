"""ifeval-translate: IFEval prompts or Multi-IF conversations translated turn by turn, instructions kept checkable.

Recipe, on the generic translate-dataset core (:mod:`dsbuild.translate_dataset`):

1. **Source**: the shipped IFEval prompts (541, Apache-2.0; one turn each) or Multi-IF records
   (``--set source=FILE`` .jsonl/.csv/.parquet; ``turn_k_prompt``, ``turn_k_instruction_id_list``,
   ``turn_k_kwargs`` with their JSON-string (kwargs: double) encoding, or a ``turns`` list).
   Items whose relation kwargs contradict their own prompt (IFEval key 1174) are rejects
   (``kwargs-contradict-prompt``; ``contradictions=flag`` keeps them flagged).
2. **Translate** each turn's prompt (MT model or given translations), with the checkers' literal
   markers protected (``P.S.``, ``SECTION X``, ``<<title>>``, ``***``, URLs); each kwargs string the
   prompt writes (keywords, forbidden words, end phrases, first words, the prompt to repeat) is
   translated on its own and must then be found in the translated turn (``kwarg-not-found``).
3. **Instructions** whose checker cannot hold in the target language (letter case in scripts
   without case, ``change_case:english_*``, fixed English answers, response language, a-z letter
   counts outside Latin script, word counts in unspaced scripts) are dropped from the item with
   the reason in ``dropped_instructions`` (``unsupported=reject``: the item is rejected).
4. **Output**: the source config ``en`` and one config per target language, item-aligned by id,
   in the source's own layout (IFEval: ``prompt``, ``instruction_id_list``, ``kwargs``; Multi-IF:
   ``turn_k_*``), kwargs as one JSON object string per instruction.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import datasets

from builders._user_source import display_name
from builders.nlu_multi import MtOptions, check_langs, make_target, translator_choice
from dsbuild.builder import BuildContext, DatasetInfo, Reject, Source
from dsbuild.config import option
from dsbuild.errors import ConfigError
from dsbuild.pipeline import Step
from dsbuild.registry import builders
from dsbuild.translate_dataset import (BUILTIN_PATTERNS, DatasetSpec, FieldSpec, ProtectedPattern, QCSettings,
                                       SourceItem, Target, WorkItem)
from dsbuild.translate_dataset.base import TranslateDatasetBase
from dsbuild.translate_dataset.ifeval import (IfItem, Instruction, contradictions, missing_values, new_instructions,
                                              read_ifeval, read_multi_if, script_profile, translate_kwargs,
                                              uncheckable, unsupported_reason, value_strings)
from dsbuild.translate_dataset.steps import count

DATA_DIR = Path(__file__).parent / "data" / "ifeval_translate"
DEFAULT_SOURCE = DATA_DIR / "input_data.jsonl"
IFEVAL_CITATION = """@article{zhou2023instruction,
  title={Instruction-Following Evaluation for Large Language Models},
  author={Zhou, Jeffrey and Lu, Tianjian and Mishra, Swaroop and Brahma, Siddhartha and Basu, Sujoy and Luan, Yi and Zhou, Denny and Hou, Le},
  journal={arXiv preprint arXiv:2311.07911},
  year={2023}
}"""
MULTI_IF_CITATION = """@article{he2024multiif,
  title={Multi-IF: Benchmarking LLMs on Multi-Turn and Multilingual Instructions Following},
  author={He, Yun and others},
  journal={arXiv preprint arXiv:2410.15553},
  year={2024}
}"""
SPLIT = "train"
RECIPE_FLAGS = ("kwarg-not-found", "kwargs-contradict-prompt", "kwarg-not-checkable")
#: the checkers' literal markers, kept verbatim in the translated prompts
MARKER_PATTERNS = (ProtectedPattern("postscript", r"\bP\.(?:P\.)?S\.?"),
                   ProtectedPattern("title-brackets", r"<<[^<>\n]{0,80}>>"),
                   ProtectedPattern("separators", r"\*{3,}"))


@dataclass
class IfevalTranslateOptions(MtOptions):
    source: str = option("", "IFEval JSONL or Multi-IF records (.jsonl/.csv/.parquet); empty = the shipped IFEval "
                             "prompts (541)")
    source_format: Literal["auto", "ifeval", "multi-if"] = option("auto", "layout of the source: ifeval (prompt, "
                                                                          "instruction_id_list, kwargs), multi-if "
                                                                          "(turn_k_*), or auto (by its fields)")
    max_turns: int = option(3, "multi-if: turns per conversation")
    unsupported: Literal["drop", "reject"] = option("drop", "instructions that cannot hold in the target language: "
                                                            "drop them from the item (reason recorded) or reject the item")
    contradictions: Literal["reject", "flag"] = option("reject", "items whose kwargs contradict their prompt: reject, "
                                                                 "or keep with the flag kwargs-contradict-prompt")
    scripts: dict = option({}, "script of a target language the built-in table lacks, e.g. {qsy: Latn, xx: Ethi}")
    protect: list[str] = option(["urls"], "more built-in protected patterns (urls, numbers, code, emails, placeholders)")
    reject_on: list[str] = option(["protected-lost"], "QC flags that reject an item (e.g. add kwarg-not-found)")
    source_license: str = option("", "licence of a source given with source= (default: apache-2.0 for IFEval)")


@builders.register("ifeval-translate")
class IfevalTranslate(TranslateDatasetBase):
    name = "ifeval-translate"
    version = "1.0.0"
    description = ("IFEval prompts or Multi-IF three-turn conversations translated turn by turn: instruction ids kept, "
                   "kwargs strings translated consistently and verified, language-bound instructions dropped.")
    Options = IfevalTranslateOptions
    card_template = "ifeval-translate.md.j2"
    history = [("1.0.0", "First release: IFEval and Multi-IF readers (double-encoded kwargs), kwargs verification, "
                         "unsupported instructions dropped or rejected, contradiction check.")]

    # ------------------------------------------------------------------ source
    def path(self) -> Path:
        o = self.options
        path = Path(o.source) if o.source else DEFAULT_SOURCE
        if not path.is_file():
            raise ConfigError(f"ifeval-translate: source file {path} not found (option source)")
        return path

    def fmt(self) -> str:
        """``ifeval`` or ``multi-if``: the option, or judged from the first record's fields."""
        o = self.options
        if o.source_format != "auto":
            return o.source_format

        def judge() -> str:
            from dsbuild.translate_dataset.ifeval import _records

            for _, rec in _records(self.path()):
                return "multi-if" if isinstance(rec, dict) and ("turn_1_prompt" in rec or "turns" in rec) else "ifeval"
            return "ifeval"

        return self.cached("format", judge)

    def n_turns(self) -> int:
        return 1 if self.fmt() == "ifeval" else max(1, self.options.max_turns)

    def names(self, k: int) -> dict[str, str]:
        """Column names of turn ``k`` (1-based) in the source's own layout."""
        if self.fmt() == "ifeval":
            return {"prompt": "prompt", "ids": "instruction_id_list", "kwargs": "kwargs", "values": "kwarg_values"}
        return {"prompt": f"turn_{k}_prompt", "ids": f"turn_{k}_instruction_id_list", "kwargs": f"turn_{k}_kwargs",
                "values": f"turn_{k}_kwarg_values"}

    def items(self) -> list[IfItem]:
        def load() -> list[IfItem]:
            path = self.path()
            reader = read_ifeval(path) if self.fmt() == "ifeval" else read_multi_if(path, max_turns=self.n_turns())
            out = list(reader)
            return out[: self.options.max_items] if self.options.max_items > 0 else out

        return self.cached("items", load)

    # ------------------------------------------------------------------ core hooks
    def spec(self) -> DatasetSpec:
        def make() -> DatasetSpec:
            fields: list[FieldSpec] = []
            for k in range(1, self.n_turns() + 1):
                n = self.names(k)
                later = k > 1
                fields += [FieldSpec(n["prompt"], "translate", optional=later),
                           FieldSpec(n["values"], "consistent", of=n["prompt"], optional=True),
                           FieldSpec(n["ids"], "keep", optional=later), FieldSpec(n["kwargs"], "keep", optional=later)]
            return DatasetSpec(fields=tuple(fields), protect=self.protected())

        return self.cached("spec", make)  # the steps ask for it per item; protected() scans every item

    def protected(self) -> tuple[ProtectedPattern, ...]:
        """Markers, URLs (and the options' built-ins), and the section splitters the source uses."""
        from dsbuild.translate_dataset import patterns_from

        splitters = sorted({ins.kwargs["section_spliter"] for it in self.items() for t in it.turns
                            for ins in t.instructions if isinstance(ins.kwargs.get("section_spliter"), str)})
        extra = ((ProtectedPattern("section-splitters", r"\b(?:" + "|".join(map(_re_escape, splitters)) +
                                   r")\s+(?:X|\d+)\b"),) if splitters else ())
        return MARKER_PATTERNS + extra + patterns_from(self.options.protect, {}, where="option protect")

    def src_lang(self) -> str:
        return self.options.src_lang

    def split_names(self) -> list[str]:
        return [SPLIT]

    def read_source(self, split: str) -> Iterator[SourceItem | Reject]:
        for it in self.items():
            yield self._source_item(it)

    def _source_item(self, it: IfItem) -> SourceItem | Reject:
        if it.problem is not None:
            return Reject(it.id, it.problem[0], f"item {it.id!r} ({it.where}): {it.problem[1]}", it.to_dict())
        if not it.turns:
            return Reject(it.id, "bad-field", f"item {it.id!r} ({it.where}): no turns", it.to_dict())
        found = [(k, d) for k, t in enumerate(it.turns, 1) for _, d in contradictions(t.prompt, t.instructions)]
        if found and self.options.contradictions == "reject":
            return Reject(it.id, "kwargs-contradict-prompt", f"item {it.id!r} turn {found[0][0]}: {found[0][1]}",
                          it.to_dict())
        fields: dict[str, Any] = {}
        for k in range(1, self.n_turns() + 1):
            n = self.names(k)
            turn = it.turns[k - 1] if k <= len(it.turns) else None
            values = [v for i in new_instructions(it.turns, k - 1) for v in value_strings(turn.instructions[i].kwargs)
                      ] if turn is not None else []
            fields[n["prompt"]] = turn.prompt if turn else None
            fields[n["values"]] = _unique(values) or None
            fields[n["ids"]] = [i.id for i in turn.instructions] if turn else None
            fields[n["kwargs"]] = [_dump(i.kwargs) for i in turn.instructions] if turn else None
        return SourceItem(id=it.id, fields=fields, where=it.where,
                          extra={"contradictions": [d for _, d in found], "language": it.language or "English",
                                 "uncheckable": _unique([n for t in it.turns for n in uncheckable(t.instructions)])})

    def targets(self) -> list[Target]:
        o = self.options
        check_langs(self.name, o)
        translator_choice(self.name, o)  # no model and no translations: one line before any work
        return [make_target(self, o, lang, lang, script=o.scripts.get(lang)) for lang in o.target_langs]

    def qc_settings(self) -> QCSettings:
        from dsbuild.translate_dataset.qc import QC_FLAGS

        known = set(QC_FLAGS) | set(RECIPE_FLAGS)
        bad = [f for f in self.options.reject_on if f not in known]
        if bad:
            raise ConfigError(f"ifeval-translate: reject_on {bad} are not QC flags ({', '.join(sorted(known))})")
        return QCSettings(reject_on=tuple(self.options.reject_on))

    def field_features(self) -> dict[str, Any] | None:
        string = datasets.Value("string")
        out: dict[str, Any] = {}
        for k in range(1, self.n_turns() + 1):
            n = self.names(k)
            out.update({n["prompt"]: string, n["values"]: datasets.List(string), n["ids"]: datasets.List(string),
                        n["kwargs"]: datasets.List(string)})
        return out

    def extra_features(self) -> dict[str, Any]:
        string = datasets.Value("string")
        dropped = {"turn": datasets.Value("int32"), "instruction_id": string, "kwargs": string, "reason": string}
        return {"language": string, "dropped_instructions": datasets.List(dropped),
                "kwargs_missing": datasets.List(string), "notes": datasets.List(string)}

    def extra_steps(self, target: Target, split: str) -> list[Step]:
        return [Instructions(self, target)]

    def prepare_recipe(self, ctx: BuildContext) -> None:
        o = self.options
        ctx.add_input(self.path(), role=f"{self.fmt()} prompts (English source)",
                      license="" if o.source else "apache-2.0")
        for lang in o.target_langs:
            profile = script_profile(lang, o.scripts.get(lang))
            ctx.settings.setdefault("ifeval", {}).setdefault("scripts", {})[lang] = vars(profile)

    def recipe_facts(self, ctx: BuildContext) -> dict[str, Any]:
        facts: dict[str, Any] = {"format": self.fmt(), "turns": self.n_turns(), "unsupported": self.options.unsupported,
                                 "contradictions_policy": self.options.contradictions,
                                 "scripts": {lang: vars(script_profile(lang, self.options.scripts.get(lang)))
                                             for lang in self.options.target_langs},
                                 "per_config": {}}
        for config, splits in sorted(ctx.facts.get("split_facts", {}).items()):
            total: dict[str, Any] = {}
            from dsbuild.pipeline import merge_facts

            for f in splits.values():
                merge_facts(total, {k: f[k] for k in ("instructions", "dropped", "kwargs_checked") if k in f})
            facts["per_config"][config] = {k: dict(sorted(v.items())) for k, v in sorted(total.items())}
        return facts

    # ------------------------------------------------------------------ info
    def info(self) -> DatasetInfo:
        o = self.options
        shown = display_name(o.source) if o.source else "IFEval"
        if o.source:
            sources = [Source(name=shown, license=o.source_license or "unknown",
                              description="Prompts / conversations translated by this build.")]
        else:
            sources = [Source(name="IFEval (google-research instruction_following_eval/data/input_data.jsonl)",
                              license="apache-2.0", url="https://github.com/google-research/google-research",
                              citation=IFEVAL_CITATION,
                              description="541 English prompts with verifiable instructions; translated by this build "
                                          "(a change under Apache-2.0).")]
        sources.append(Source(name="Multi-IF (method)", license="-", citation=MULTI_IF_CITATION,
                              url="https://huggingface.co/datasets/facebook/Multi-IF",
                              description="The recipe followed: IFEval turned into translated multi-turn "
                                          "conversations, each turn keeping its instruction ids and arguments."))
        return DatasetInfo(
            pretty_name=f"ifeval-translate: {shown} -> {', '.join(o.target_langs)}",
            summary=(f"{shown} ({self.fmt()}) translated into {', '.join(o.target_langs)} turn by turn; instruction "
                     f"ids kept, kwargs strings translated consistently and verified in the prompt, instructions "
                     f"that cannot hold in a target language dropped ({o.unsupported})."),
            languages=sorted({o.src_lang, *o.target_langs}),
            license=(o.source_license or "unknown") if o.source else "apache-2.0",
            task_categories=["text-generation"], multilinguality="translation",
            source_datasets=["extended"], annotations_creators=["expert-generated"],
            language_creators=["machine-generated"] if o.model else ["found"],
            tags=["instruction-following", "ifeval", "multi-if", "translated"], sources=sources,
            method=(f"Translator: {'given translations' if not o.model else o.model}; unsupported instructions: "
                    f"{o.unsupported}; contradictions: {o.contradictions}."),
            limitations=("Kwargs strings are translated on their own and checked by case-insensitive substring "
                         "search in the translated prompt; inflected forms can miss (kwarg-not-found). Several "
                         "checkers stay weak outside English (sentence splitting, ASCII quotes and commas)."))


# ---------------------------------------------------------------------- the instruction step
class Instructions(Step):
    """Translated kwargs, unsupported instructions dropped (or the item rejected), kwargs verified."""

    name = "instructions"

    def __init__(self, builder: IfevalTranslate, target: Target) -> None:
        self.builder, self.target = builder, target

    def run(self, items: list[WorkItem], ctx: BuildContext) -> list[WorkItem | Reject]:
        b, t = self.builder, self.target
        profile = None if t.is_source else script_profile(t.lang, t.script)
        out: list[WorkItem | Reject] = []
        for it in items:
            it.extra.update({"dropped_instructions": [], "kwargs_missing": [], "notes": list(it.source.extra.get(
                "contradictions") or [])})
            if it.source.extra.get("contradictions"):
                it.flag("kwargs-contradict-prompt")
            if it.source.extra.get("uncheckable"):
                it.flag("kwarg-not-checkable")
                it.extra["notes"] += it.source.extra["uncheckable"]
            mapping = self._value_translations(it)
            prompts: list[str] = []
            rejected: Reject | None = None
            for k in range(1, b.n_turns() + 1):
                n = b.names(k)
                if it.source.fields.get(n["prompt"]) is None:
                    continue
                prompts.append(str(it.target.get(n["prompt"]) or ""))
                rejected = self._turn(it, k, n, profile, mapping, "\n".join(prompts), ctx)
                if rejected is not None:
                    break
            out.append(rejected if rejected is not None else it)
        return out

    @staticmethod
    def _value_translations(it: WorkItem) -> dict[str, str]:
        """Source kwargs string -> its translation, over every turn's consistent values."""
        mapping: dict[str, str] = {}
        for name, value in it.source.fields.items():
            if name.endswith("kwarg_values") and value:
                mapping.update(zip(value, it.target.get(name) or value))
        return mapping

    def _turn(self, it: WorkItem, k: int, n: dict[str, str], profile: Any, mapping: dict[str, str], prompts: str,
              ctx: BuildContext) -> Reject | None:
        """One turn: drop / reject unsupported instructions, translate and verify kwargs."""
        from dsbuild.translate_dataset.steps import reject

        ids = list(it.source.fields.get(n["ids"]) or [])
        kwargs = [json.loads(x) for x in it.source.fields.get(n["kwargs"]) or []]
        keep_ids, keep_kwargs = [], []
        for iid, kw in zip(ids, kwargs):
            count(ctx, iid, group="instructions")
            reason = unsupported_reason(Instruction(iid, kw), profile) if profile is not None else None
            if reason is not None:
                if self.builder.options.unsupported == "reject":
                    return reject(ctx, it.source, "unsupported-instruction",
                                  f"item {it.id!r} turn {k}: {iid} cannot hold in {self.target.lang} ({reason})")
                it.extra["dropped_instructions"].append({"turn": k, "instruction_id": iid, "kwargs": _dump(kw),
                                                         "reason": reason})
                count(ctx, reason, group="dropped")
                continue
            translated = kw if self.target.is_source else translate_kwargs(kw, mapping)
            missing = missing_values(translated, prompts)
            count(ctx, "checked", group="kwargs_checked")
            if missing:
                count(ctx, "missing", group="kwargs_checked")
                it.flag("kwarg-not-found")
                it.extra["kwargs_missing"] += [f"turn {k} {iid}: {m}" for m in missing]
            keep_ids.append(iid)
            keep_kwargs.append(_dump(translated))
        if ids and not keep_ids:
            return reject(ctx, it.source, "no-instructions-left",
                          f"item {it.id!r} turn {k}: every instruction was dropped for {self.target.lang} "
                          f"({', '.join(d['reason'] for d in it.extra['dropped_instructions'] if d['turn'] == k)})")
        it.target[n["ids"]] = keep_ids
        it.target[n["kwargs"]] = keep_kwargs
        return None


def _dump(kwargs: dict[str, Any]) -> str:
    return json.dumps(kwargs, sort_keys=True, ensure_ascii=False)


def _unique(values: list[str]) -> list[str]:
    out: list[str] = []
    for v in values:
        if v not in out:
            out.append(v)
    return out


def _re_escape(text: str) -> str:
    import re

    return re.escape(text)


__all__ = ["IfevalTranslate", "IfevalTranslateOptions"]

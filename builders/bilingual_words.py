"""bilingual-words: cognates, false cognates and non-cognates turned into two probing tasks.

Recipe: read a word-pair file with glosses (shipped: English-Spanish, written and checked by hand;
any pair via ``pair_file``) and check it -> ``same-meaning``: one yes/no judgement per pair ->
``meaning-choice``: for each word of each pair (both directions), pick its meaning from two glosses,
the distractor being the look-alike word's meaning for false cognates and another pair's meaning
otherwise (seeded) -> card with counts per category and label.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets

from builders._user_source import (SOURCE_CITATION_HELP, SOURCE_LICENSE_HELP, SOURCE_NAME_HELP, SOURCE_URL_HELP,
                                   dataset_license, user_source)
from dsbuild.builder import BuildContext, Builder, ConfigSpec, DatasetInfo, Reject, Source
from dsbuild.challenge.template_builder import challenge_data
from dsbuild.challenge.word_pairs import LANGUAGE_NAMES, WordPair, load_word_pairs
from dsbuild.config import option
from dsbuild.errors import ConfigError
from dsbuild.registry import builders

TASKS = {
    "same-meaning": "Do the two words mean the same? (yes for cognates and non-cognates, no for false cognates)",
    "meaning-choice": "Which of two meanings does the word have? Asked for each word of each pair (both directions).",
}


def language_name(code: str) -> str:
    return LANGUAGE_NAMES.get(code, code)


@dataclass
class BilingualWordsOptions:
    pair_file: str = option("", "word-pair TSV (A, B, category, gloss_A, gloss_B); default: the shipped en-es file")
    tasks: list[str] = option(list(TASKS), "tasks to build (each becomes a config)")
    seed: int = option(13, "seed for distractor choice and option order")
    source_name: str = option("", SOURCE_NAME_HELP)
    source_license: str = option("", SOURCE_LICENSE_HELP)
    source_url: str = option("", SOURCE_URL_HELP)
    source_citation: str = option("", SOURCE_CITATION_HELP)


@builders.register("bilingual-words")
class BilingualWords(Builder):
    name = "bilingual-words"
    version = "1.0.0"
    description = "Cognates, false cognates (interlingual homographs) and non-cognates as same-meaning and meaning-choice tasks."
    Options = BilingualWordsOptions
    card_template = "bilingual-words.md.j2"
    history = [("1.0.0", "First release: hand-checked English-Spanish pair file (81 pairs), two tasks.")]

    def _path(self) -> Path:
        return Path(self.options.pair_file) if self.options.pair_file else challenge_data() / "bilingual" / "en-es.tsv"

    def info(self) -> DatasetInfo:
        pairs = getattr(self, "pairs", None)
        langs = [pairs[0].lang_a, pairs[0].lang_b] if pairs else ["en", "es"]
        shipped = not self.options.pair_file
        # rows are the pairs and glosses: the pair file's licence is the dataset's
        license_, license_name = ("cc0-1.0", "") if shipped else dataset_license(self.options)
        return DatasetInfo(
            pretty_name=f"Bilingual word probes ({'-'.join(langs)})",
            summary="Word pairs across two languages (cognates, false cognates including interlingual homographs, "
                    "and non-cognates) with glosses, as a same-meaning judgement and a two-option meaning choice "
                    "whose distractor is the look-alike word's meaning for false cognates.",
            languages=langs,
            license=license_,
            license_name=license_name,
            task_categories=["text-classification", "multiple-choice"],
            task_ids=["multiple-choice-qa"],
            multilinguality="multilingual",
            annotations_creators=["expert-generated"],
            language_creators=["expert-generated"],
            tags=["cognates", "false-friends", "interlingual-homographs", "challenge-set", "lexical-semantics"],
            sources=[Source(name="dsbuild en-es word pairs", license="CC0-1.0 (written for dsbuild)",
                            description="Pairs and English glosses written and checked by hand for dsbuild; task design "
                                        "after the bilingual-homograph probes of Tanwar et al. (2025).")
                     if shipped else user_source(self.options, self._path(), description="Word-pair file given by the user.")],
            method="Each pair gives one same-meaning row; each word of each pair gives one meaning-choice row.",
            limitations="Glosses give one common sense per word; words with several senses (e.g. Spanish 'red' "
                        "net/network) are glossed with the senses listed. A small set: use it to probe, not to train.",
        )

    def configs(self) -> list[ConfigSpec]:
        for t in self.options.tasks:
            if t not in TASKS:
                raise ConfigError(f"bilingual-words: unknown task {t!r}; choose from {', '.join(TASKS)}")
        common = {"id": datasets.Value("string"), "pair_id": datasets.Value("string"), "category": datasets.Value("string"),
                  "identical_form": datasets.Value("bool"), "question": datasets.Value("string"),
                  "test_type": datasets.Value("string")}
        feats = {
            "same-meaning": datasets.Features({**common, "lang_a": datasets.Value("string"), "word_a": datasets.Value("string"),
                                               "lang_b": datasets.Value("string"), "word_b": datasets.Value("string"),
                                               "gloss_a": datasets.Value("string"), "gloss_b": datasets.Value("string"),
                                               "label": datasets.ClassLabel(names=["no", "yes"])}),
            "meaning-choice": datasets.Features({**common, "language": datasets.Value("string"), "word": datasets.Value("string"),
                                                 "other_language": datasets.Value("string"), "other_word": datasets.Value("string"),
                                                 "choices": datasets.List(datasets.Value("string")),
                                                 "answer": datasets.Value("int32"), "correct_gloss": datasets.Value("string"),
                                                 "distractor_gloss": datasets.Value("string"),
                                                 "distractor_kind": datasets.Value("string")}),
        }
        return [ConfigSpec(name=t, features=feats[t], splits=["test"], description=TASKS[t]) for t in self.options.tasks]

    def prepare(self, ctx: BuildContext) -> None:
        self.configs()
        dataset_license(self.options)  # a bad source_license fails before any work, not at the card
        path = self._path()
        self.pairs = load_word_pairs(path)
        ctx.add_input(path, role="word pairs with glosses", license="CC0-1.0" if not self.options.pair_file else "")
        ctx.add_seed("distractors", self.options.seed)
        ctx.facts["pairs_by_category"] = dict(sorted(Counter(p.category for p in self.pairs).items()))
        ctx.facts["identical_form_by_category"] = dict(sorted(Counter(p.category for p in self.pairs if p.identical_form).items()))
        ctx.facts["tasks"] = {t: TASKS[t] for t in self.options.tasks}

    def generate(self, config: ConfigSpec, split: str, ctx: BuildContext) -> Iterator[dict[str, Any] | Reject]:
        counts: dict[str, Counter[str]] = defaultdict(Counter)
        rows = self._same_meaning() if config.name == "same-meaning" else self._meaning_choice()
        for row in rows:
            ctx.read()
            label = row["label"] if config.name == "same-meaning" else f"correct option {row['answer']}"
            counts[row["category"]][label] += 1
            yield row
        ctx.facts["current"] = {"counts": {k: dict(sorted(v.items())) for k, v in sorted(counts.items())}}

    def _same_meaning(self) -> Iterator[dict[str, Any]]:
        for p in self.pairs:
            yield {"id": f"{p.id}-same", "pair_id": p.id, "category": p.category, "identical_form": p.identical_form,
                   "question": f'Do the {language_name(p.lang_a)} word "{p.word_a}" and the {language_name(p.lang_b)} '
                               f'word "{p.word_b}" mean the same?',
                   "test_type": "MFT", "lang_a": p.lang_a, "word_a": p.word_a, "lang_b": p.lang_b, "word_b": p.word_b,
                   "gloss_a": p.gloss_a, "gloss_b": p.gloss_b, "label": "yes" if p.same_meaning else "no"}

    def _meaning_choice(self) -> Iterator[dict[str, Any]]:
        by_category: dict[str, list[WordPair]] = defaultdict(list)
        for p in self.pairs:
            by_category[p.category].append(p)
        for p in self.pairs:
            first = random.Random(f"{self.options.seed}:{p.id}").randrange(2)  # correct option for side a; b gets the other
            for side in ("a", "b"):
                lang, word, gloss = (p.lang_a, p.word_a, p.gloss_a) if side == "a" else (p.lang_b, p.word_b, p.gloss_b)
                other_lang, other_word, other_gloss = (p.lang_b, p.word_b, p.gloss_b) if side == "a" else (p.lang_a, p.word_a, p.gloss_a)
                rng = random.Random(f"{self.options.seed}:{p.id}:{side}")
                if other_gloss != gloss:  # false cognate: the look-alike's meaning is the trap
                    distractor, kind = other_gloss, "look-alike word's meaning"
                else:
                    pool = sorted({q.gloss_a for q in by_category[p.category] if q.gloss_a != gloss})
                    distractor, kind = rng.choice(pool), "another word's meaning"
                correct_at = first if side == "a" else 1 - first  # answer positions balanced per pair
                choices = [distractor, gloss] if correct_at else [gloss, distractor]
                yield {"id": f"{p.id}-choice-{lang}", "pair_id": p.id, "category": p.category,
                       "identical_form": p.identical_form,
                       "question": f'What does the {language_name(lang)} word "{word}" mean?', "test_type": "MFT",
                       "language": lang, "word": word, "other_language": other_lang, "other_word": other_word,
                       "choices": choices, "answer": choices.index(gloss), "correct_gloss": gloss,
                       "distractor_gloss": distractor, "distractor_kind": kind}

    def finish(self, ctx: BuildContext) -> None:
        q: dict[str, Any] = {}
        for task, splits in ctx.facts.get("split_facts", {}).items():
            counts = splits.get("test", {}).get("counts", {})
            total: Counter[str] = Counter()
            for c in counts.values():
                total.update(c)
            n = sum(total.values())
            q[task] = {"rows": n, **{f"share of {k}": round(v / n, 4) for k, v in sorted(total.items())}} if n else {"rows": 0}
        q["glosses_checked"] = {"pairs": len(self.pairs), "missing_glosses": 0,
                                "same_meaning_pairs_with_identical_glosses": sum(p.same_meaning for p in self.pairs),
                                "false_cognates_with_different_glosses": sum(not p.same_meaning for p in self.pairs)}
        ctx.quality.update(q)

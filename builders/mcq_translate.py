"""mcq-translate: multiple-choice benchmarks (WinoGrande, MMLU clinical knowledge) in African languages.

A recipe on :class:`~dsbuild.translate_dataset.TranslateDatasetBase` after Alhanai et al. (2024,
"Bridging the Gap", arXiv:2412.12417). Offline default: the shipped English items
(``builders/data/mcq_translate``, a copy of the paper's release) with, per language (af, zu, xh,
am, ig), the paper's **human** translations as given translations (config ``<lang>``), its
**machine** translations (``<lang>-mt``, chrF-scored against the human ones) and its
**back-translations** of the human translations into English (``<lang>-bt``, chrF-scored
against the English). Optionally a model of yours translates the English too
(``translator=hf-seq2seq model=...``: config ``<lang>-model``).

Items: ``question`` (WinoGrande sentence with its blank ``_``, or MMLU question), ``options``
(WinoGrande's two fillers, or MMLU's A-D in order) and ``answer`` (kept: ``1``/``2`` or
``A``-``D``). Facts handled here:

* the human / MT / BT files share column names; only the folder says which is which;
* a WinoGrande ``qID``'s last character equals the answer: ids are ``wg-`` + a hash of the qID, and
  the qID is never written to rows, rejects or model inputs;
* WinoGrande's blank must stay exactly once, as its own token, and both options must still fill it:
  the QC flags ``protected-lost`` (Amharic back-translations drop it), ``protected-glued``
  (``_o``, ``u_``) and ``blank-unfillable``.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dsbuild.builder import BuildContext, DatasetInfo, Reject, Source
from dsbuild.config import option
from dsbuild.errors import ConfigError, InputError
from dsbuild.pipeline import Step
from dsbuild.registry import builders
from dsbuild.translate_dataset import (DatasetSpec, FieldSpec, GivenFields, QCSettings, SourceItem, Target,
                                       TranslateDatasetBase, WorkItem)
from dsbuild.translate_dataset.qc import QC_FLAGS
from dsbuild.translate_dataset.spec import BUILTIN_PATTERNS

DATA_DIR = Path(__file__).parent / "data" / "mcq_translate"
LANGS = ("af", "zu", "xh", "am", "ig")
BENCHMARKS = ("winogrande", "clinical_knowledge")
METHODS = ("human", "machine", "back-translation")
#: upstream folder of each benchmark and method (only the folder tells human, MT and BT apart)
FOLDERS = {("winogrande", "human"): "winogrande_s", ("winogrande", "machine"): "winogrande_s_mt",
           ("winogrande", "back-translation"): "winogrande_s_bt", ("clinical_knowledge", "human"): "mmlu_cm_ck_vir",
           ("clinical_knowledge", "machine"): "mmlu_cm_ck_vir_mt",
           ("clinical_knowledge", "back-translation"): "mmlu_cm_ck_vir_bt"}
CONFIG_SUFFIX = {"human": "", "machine": "-mt", "back-translation": "-bt"}
MMLU_SPLITS = ("dev", "val", "test")
RECIPE_FLAGS = ("blank-unfillable",)
_BLANK = re.compile(r"(?<![^\W_])_(?![^\W_])")  # a standalone single underscore

PAPER_CITATION = """@article{alhanai2024bridging,
  title={Bridging the Gap: Enhancing LLM Performance for Low-Resource African Languages with New Benchmarks, Fine-Tuning, and Cultural Adjustments},
  author={Tuka Alhanai and Adam Kasumovic and Mohammad Ghassemi and Aven Zitzelberger and Jessica Lundin and Guillaume Chabot-Couture},
  journal={arXiv preprint arXiv:2412.12417},
  year={2024}
}"""
WINOGRANDE_CITATION = """@article{sakaguchi2019winogrande,
  title={WinoGrande: An Adversarial Winograd Schema Challenge at Scale},
  author={Sakaguchi, Keisuke and Le Bras, Ronan and Bhagavatula, Chandra and Choi, Yejin},
  journal={arXiv preprint arXiv:1907.10641},
  year={2019}
}"""
MMLU_CITATION = """@inproceedings{hendrycks2021measuring,
  title={Measuring Massive Multitask Language Understanding},
  author={Dan Hendrycks and Collin Burns and Steven Basart and Andy Zou and Mantas Mazeika and Dawn Song and Jacob Steinhardt},
  booktitle={International Conference on Learning Representations},
  year={2021}
}"""


@dataclass
class McqTranslateOptions:
    data_dir: str = option("", "folder in the upstream layout (evaluation_benchmarks_afr_release: winogrande_s, "
                               "winogrande_s_mt, ..., .csv or .csv.gz); empty = the shipped copy")
    langs: list[str] = option(list(LANGS), "target languages (files <name>_<lang>.csv in data_dir)")
    benchmarks: list[str] = option(list(BENCHMARKS), "winogrande and/or clinical_knowledge")
    methods: list[str] = option(list(METHODS), "the paper's translations to include, one config each: human "
                                               "(<lang>), machine (<lang>-mt), back-translation (<lang>-bt)")
    winogrande_splits: list[str] = option(["dev"], "WinoGrande splits (the shipped translations cover dev only)")
    translator: str = option("", "also translate the English with a model: hf-seq2seq (config <lang>-model); "
                                 "empty = only the paper's translations")
    model: str = option("", "that translator's model (Hub id or folder)")
    revision: str = option("", "that model's revision")
    translator_options: dict = option({}, "more translator options, e.g. {beam_size: 4, threads: 1}")
    model_langs: dict = option({}, "the code the model knows a language by, when it differs from langs "
                                   "(e.g. {am: amh_Ethi})")
    reject_on: list[str] = option(["protected-lost", "options-collapsed"],
                                  f"QC flags that reject an item ({', '.join(QC_FLAGS + RECIPE_FLAGS)})")
    max_items: int = option(0, "only the first N items of each split (0 = all)")


@builders.register("mcq-translate")
class McqTranslate(TranslateDatasetBase):
    name = "mcq-translate"
    version = "1.0.0"
    description = ("WinoGrande and MMLU clinical knowledge in af, zu, xh, am, ig: the paper's human translations, "
                   "machine translations and back-translations, item-aligned, with per-item QC (Alhanai et al. 2024).")
    Options = McqTranslateOptions
    card_template = "mcq-translate.md.j2"
    history = [("1.0.0", "First release: human, MT and BT configs per language; blank and options QC; chrF.")]

    # ------------------------------------------------------------------ hooks
    def spec(self) -> DatasetSpec:
        return self.cached("spec", lambda: DatasetSpec(fields=(FieldSpec("question", "translate"), FieldSpec("options", "translate_each"),
                                   FieldSpec("answer", "keep", answer_for="options", answer_format="auto")),
                           protect=(BUILTIN_PATTERNS["winogrande-blank"],)))

    def src_lang(self) -> str:
        return "en"

    def qc_settings(self) -> QCSettings:
        return QCSettings(reject_on=tuple(self.options.reject_on))

    def split_names(self) -> list[str]:
        o = self.options
        out = [f"winogrande_{s}" for s in o.winogrande_splits] if "winogrande" in o.benchmarks else []
        return out + ([f"clinical_knowledge_{s}" for s in MMLU_SPLITS] if "clinical_knowledge" in o.benchmarks else [])

    def read_source(self, split: str) -> Iterator[SourceItem | Reject]:
        benchmark, _, part = split.rpartition("_")
        rows = self._english(benchmark, part)
        n = self.options.max_items
        return iter(rows[:n] if n > 0 else rows)

    def targets(self) -> list[Target]:
        o = self.options
        out = []
        for lang in o.langs:
            for method in o.methods:
                config = lang + CONFIG_SUFFIX[method]
                reference = "source" if method == "back-translation" else lang if method == "machine" and \
                    "human" in o.methods else None
                out.append(Target(config=config, lang="en" if method == "back-translation" else lang, method=method,
                                  translator="given", given=self.given(lang, method), reference=reference,
                                  from_lang=lang if method == "back-translation" else "en",
                                  description=_describe(lang, method)))
            if o.translator:
                out.append(Target(config=f"{lang}-model", lang=lang, method="machine", translator=o.translator,
                                  model=o.model, revision=o.revision, translator_options=dict(o.translator_options),
                                  reference=lang if "human" in o.methods else None,
                                  model_lang=str(o.model_langs[lang]) if lang in o.model_langs else None,
                                  description=f"en -> {lang}: translated by this build with {o.model}"))
        return out

    def extra_steps(self, target: Target, split: str) -> list[Step]:
        return [BlankCheck(split)] if split.startswith("winogrande") else []

    # ------------------------------------------------------------------ data
    def data_dir(self) -> Path:
        return Path(self.options.data_dir) if self.options.data_dir else DATA_DIR

    def data_file(self, folder: str, stem: str) -> Path:
        """``folder/stem.csv`` or ``.csv.gz`` in the data folder; one line when neither exists."""
        for suffix in (".csv", ".csv.gz"):
            path = self.data_dir() / folder / f"{stem}{suffix}"
            if path.is_file():
                return path
        raise ConfigError(f"mcq-translate: {folder}/{stem}.csv not found in {self.data_dir().name or 'data_dir'} "
                          f"(option data_dir, langs, benchmarks); it needs the upstream layout "
                          f"(evaluation_benchmarks_afr_release)")

    def _english(self, benchmark: str, part: str) -> list[SourceItem]:
        """English items of one benchmark split (cached per process)."""
        def load() -> list[SourceItem]:
            if benchmark == "winogrande":
                path = self.data_file("winogrande_s", "winogrande")
                return [SourceItem(winogrande_id(r["qID"]), _wg_fields(r, "English"), where=f"{_name(path)}:{line}")
                        for line, r in _csv_dicts(path) if r.get("Split") == part]
            path = self.data_file("mmlu_cm_ck_vir", f"clinical_knowledge_{part}")
            return [SourceItem(mmlu_id(part, n), _mmlu_fields(r, path, line), where=f"{_name(path)}:{line}")
                    for n, (line, r) in enumerate(_csv_rows(path), 1)]

        return self.cached(f"en/{benchmark}/{part}", load)

    def given(self, lang: str, method: str) -> GivenFields:
        """The paper's ``method`` translations into ``lang`` of every included benchmark split."""
        def load() -> GivenFields:
            table: dict[tuple[str, str], Any] = {}
            digest = hashlib.sha256()
            for path, ids_rows in self._translation_files(lang, method):
                digest.update(path.read_bytes())
                for item_id, fields in ids_rows:
                    table[(item_id, "question")] = fields["question"]
                    table[(item_id, "options")] = fields["options"]
            name = f"Alhanai et al. 2024 {method} translations ({lang})" if method != "back-translation" else \
                f"Alhanai et al. 2024 back-translations ({lang} human -> en)"
            return GivenFields(table, name=name, revision=f"sha256:{digest.hexdigest()[:16]}")

        return self.cached(f"given/{lang}/{method}", load)

    def _translation_files(self, lang: str, method: str) -> Iterator[tuple[Path, list[tuple[str, dict[str, Any]]]]]:
        o = self.options
        if "winogrande" in o.benchmarks:
            path = self.data_file(FOLDERS[("winogrande", method)], f"winogrande_{lang}")
            splits = set(o.winogrande_splits)
            # joined on qID: the af/zu/xh files are in another row order than the English
            yield path, [(winogrande_id(r["qID"]), _wg_fields(r, None)) for _, r in _csv_dicts(path)
                         if r.get("Split") in splits]
        if "clinical_knowledge" in o.benchmarks:
            for part in MMLU_SPLITS:
                path = self.data_file(FOLDERS[("clinical_knowledge", method)], f"clinical_knowledge_{part}_{lang}")
                # row i translates English row i (no ids upstream)
                yield path, [(mmlu_id(part, n), _mmlu_fields(r, path, line))
                             for n, (line, r) in enumerate(_csv_rows(path), 1)]

    # ------------------------------------------------------------------ prepare, facts, info
    def prepare_recipe(self, ctx: BuildContext) -> None:
        o = self.options
        for name, values, allowed in (("benchmarks", o.benchmarks, BENCHMARKS), ("methods", o.methods, METHODS)):
            bad = [v for v in values if v not in allowed]
            if bad or not values:
                raise ConfigError(f"mcq-translate: option {name}: {bad or 'empty'}; choose from {', '.join(allowed)}")
        bad = [f for f in o.reject_on if f not in QC_FLAGS + RECIPE_FLAGS]
        if bad:
            raise ConfigError(f"mcq-translate: reject_on {bad} are not QC flags ({', '.join(QC_FLAGS + RECIPE_FLAGS)})")
        if o.translator and not o.model:
            raise ConfigError(f"mcq-translate: translator {o.translator} needs --set model=HUB_ID_OR_FOLDER")
        unknown = sorted(set(o.model_langs) - set(o.langs))
        if unknown:
            raise ConfigError(f"mcq-translate: option model_langs names {unknown}, which are not in langs {o.langs}")
        licence = "MIT (Bill & Melinda Gates Foundation); items from WinoGrande (Apache-2.0) and MMLU (MIT)"
        for split in self.split_names():
            benchmark, _, part = split.rpartition("_")
            path = self.data_file("winogrande_s", "winogrande") if benchmark == "winogrande" else \
                self.data_file("mmlu_cm_ck_vir", f"clinical_knowledge_{part}")
            ctx.add_input(path, role="English source items", license=licence)
        for lang in o.langs:
            for method in o.methods:
                for path, _ in self._translation_files(lang, method):
                    ctx.add_input(path, role=f"{method} translations ({lang})", license=licence)
        agg = self.data_dir() / "human_eval_aggregates"
        for table in ("table_A1.csv", "table_A10.csv", "table_A16.csv"):
            if (agg / table).is_file():
                ctx.add_input(agg / table, role="human evaluation aggregates (paper tables A1, A10, A16)",
                              license="MIT (Bill & Melinda Gates Foundation)")

    def recipe_facts(self, ctx: BuildContext) -> dict[str, Any]:
        """Per language: chrF MT vs human, chrF BT vs English, flag rates per method; the paper's
        human-evaluation aggregates."""
        per_config = ctx.facts.get("translate_dataset", {}).get("per_config", {})
        per_lang: dict[str, Any] = {}
        for lang in self.options.langs:
            mt, bt = per_config.get(f"{lang}-mt", {}), per_config.get(f"{lang}-bt", {})
            model = per_config.get(f"{lang}-model", {})
            per_lang[lang] = {"chrf_mt_vs_human": mt.get("chrf_reference"), "chrf_bt_vs_english": bt.get("chrf_reference"),
                              "chrf_model_vs_human": model.get("chrf_reference"),
                              "flag_rates": {m: per_config.get(lang + CONFIG_SUFFIX[m], {}).get("flag_rates", {})
                                             for m in self.options.methods}}
        return {"per_language": per_lang, "human_evaluation": human_evaluation(self.data_dir(), self.options.langs)}

    def info(self) -> DatasetInfo:
        o = self.options
        return DatasetInfo(
            pretty_name="mcq-translate: WinoGrande and MMLU clinical knowledge in African languages",
            summary=(f"WinoGrande ({', '.join(o.winogrande_splits)}) and MMLU clinical knowledge in English and in "
                     f"{', '.join(o.langs)}: the human translations, machine translations and back-translations of "
                     f"Alhanai et al. (2024), item-aligned by id, with per-item QC columns."),
            languages=sorted({"en", *o.langs}), license="other", license_name="mit-and-apache-2.0-upstream",
            license_link="builders/data/mcq_translate/LICENSE.md",
            task_categories=["multiple-choice"], task_ids=["multiple-choice-qa"], multilinguality="translation",
            source_datasets=["extended|winogrande", "extended|mmlu"], annotations_creators=["expert-generated"],
            language_creators=["expert-generated", "machine-generated"],
            tags=["translated-benchmark", "mcq-translate", "african-languages"],
            sources=[
                Source(name="InstituteforDiseaseModeling/Bridging-the-Gap-Low-Resource-African-Languages",
                       license="MIT (Copyright (c) 2024 Bill & Melinda Gates Foundation)",
                       url="https://github.com/InstituteforDiseaseModeling/Bridging-the-Gap-Low-Resource-African-Languages",
                       citation=PAPER_CITATION,
                       description="Human translations, machine translations, back-translations and human-evaluation "
                                   "aggregates (commit 9af6ce2f, data/evaluation_benchmarks_afr_release)."),
                Source(name="WinoGrande", license="Apache-2.0", url="https://github.com/allenai/winogrande",
                       citation=WINOGRANDE_CITATION, description="English WinoGrande items."),
                Source(name="MMLU (clinical knowledge)", license="MIT (Copyright (c) 2020 Dan Hendrycks)",
                       url="https://github.com/hendrycks/test", citation=MMLU_CITATION,
                       description="English MMLU clinical-knowledge items."),
            ],
            method="Human, machine and back-translations of the paper as given translations; per-item QC.",
            limitations=("WinoGrande ids are hashes of the upstream qIDs (whose last character is the answer). The MT "
                         "engine of the paper's machine translations is not named upstream. WinoGrande translations "
                         "cover dev only, and the paper scores on test. Human ratings are noisy (kappa near 0)."))


# ---------------------------------------------------------------------- the recipe's QC step
class BlankCheck(Step):
    """WinoGrande: the translated sentence has exactly one standalone blank and both options fill it
    (non-empty, without a blank of their own); else ``blank-unfillable``."""

    name = "blank-check"

    def __init__(self, split: str) -> None:
        self.split = split

    def run(self, items: list[WorkItem], ctx: BuildContext) -> list[WorkItem]:
        for it in items:
            if not blank_fillable(str(it.target.get("question") or ""), list(it.target.get("options") or [])):
                it.flag("blank-unfillable")
        return list(items)


def blank_fillable(sentence: str, options: list[str]) -> bool:
    """Exactly one standalone ``_`` in ``sentence``, and every option a non-empty filler without ``_``."""
    return len(_BLANK.findall(sentence)) == 1 and sentence.count("_") == 1 and len(options) == 2 and \
        all(o.strip() and "_" not in o for o in options)


# ---------------------------------------------------------------------- reading the upstream files
def winogrande_id(qid: str) -> str:
    """A WinoGrande item id that does not leak the answer (the qID's last character is the answer)."""
    return "wg-" + hashlib.sha256(qid.encode()).hexdigest()[:12]


def mmlu_id(part: str, n: int) -> str:
    return f"ck-{part}-{n:04d}"


def _open_text(path: Path) -> str:
    data = path.read_bytes()
    if path.suffix == ".gz":
        data = gzip.decompress(data)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise InputError(f"not valid UTF-8 at byte {err.start}", source=_name(path), hint="save the file as UTF-8") from None


def _csv_dicts(path: Path) -> list[tuple[int, dict[str, str]]]:
    reader = csv.DictReader(io.StringIO(_open_text(path), newline=""))
    return [(n + 2, row) for n, row in enumerate(reader)]


def _csv_rows(path: Path) -> list[tuple[int, list[str]]]:
    return [(n + 1, row) for n, row in enumerate(csv.reader(io.StringIO(_open_text(path), newline="")))]


def _wg_fields(row: dict[str, str], language: str | None) -> dict[str, Any]:
    """question, options, answer of a WinoGrande row; ``language`` None: the non-English columns."""
    if language is None:
        names = [k for k in row if k.endswith(" Sentence") and not k.startswith("English")]
        language = names[0].rsplit(" ", 1)[0] if names else "English"
    return {"question": row.get(f"{language} Sentence"),
            "options": [row.get(f"{language} Option 1"), row.get(f"{language} Option 2")],
            "answer": row.get("Answer")}


def _mmlu_fields(row: list[str], path: Path, line: int) -> dict[str, Any]:
    if len(row) != 6:
        raise InputError(f"expected 6 columns (question, A, B, C, D, answer), got {len(row)}", source=_name(path),
                         line=line, hint="use the upstream MMLU CSV layout without a header")
    return {"question": row[0], "options": row[1:5], "answer": row[5]}


def _name(path: Path) -> str:
    from dsbuild.builder import BuildContext

    return BuildContext.portable_path(path)


def _describe(lang: str, method: str) -> str:
    return {"human": f"en -> {lang}: human translations (Alhanai et al. 2024)",
            "machine": f"en -> {lang}: the paper's machine translations (engine not named upstream)",
            "back-translation": f"{lang} -> en: machine back-translations of the human {lang} translations"}[method]


def human_evaluation(data_dir: Path, langs: list[str]) -> dict[str, Any]:
    """The paper's aggregate ratings per language (tables A10, A1, A16), with their source."""
    folder = data_dir / "human_eval_aggregates"
    out: dict[str, Any] = {"source": "Alhanai et al. 2024, appendix tables A1, A10, A16 (upstream results/tables/)",
                           "items_rated": 3674, "per_language": {}}
    rows: dict[str, dict[str, dict[str, str]]] = {}
    for table in ("table_A10.csv", "table_A1.csv", "table_A16.csv"):
        path = folder / table
        if path.is_file():
            rows[table] = {r[next(iter(r))]: r for _, r in _csv_dicts(path)}
    for lang in langs:
        a10, a1 = rows.get("table_A10.csv", {}), rows.get("table_A1.csv", {})
        kappa = rows.get("table_A16.csv", {}).get(lang, {})
        out["per_language"][lang] = {
            "considered_good": _int(a10.get("Considered Good", {}).get(lang)),
            "appropriate_and_good": _int(a1.get("Appropriate + Good", {}).get(lang)),
            "quality_cohen_kappa": _float(kappa.get("Q1 Cohen's Kappa")),
            "appropriateness_cohen_kappa": _float(kappa.get("Q2 Cohen's Kappa"))}
    return out


def _int(value: str | None) -> int | None:
    return int(value) if value not in (None, "") else None


def _float(value: str | None) -> float | None:
    return float(value) if value not in (None, "") else None


__all__ = ["McqTranslate", "McqTranslateOptions", "blank_fillable", "human_evaluation", "winogrande_id"]

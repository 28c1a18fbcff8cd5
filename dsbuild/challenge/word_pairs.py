"""Bilingual word-pair files: cognates, false cognates (interlingual homographs) and non-cognates.

A pair file is tab-separated UTF-8 with a header ``A  B  category  gloss_A  gloss_B`` where ``A``
and ``B`` are language codes (e.g. ``en es``). Every problem is reported at load time with the
file and line: missing words or glosses, unknown categories, cognate/non-cognate pairs whose
glosses differ, false cognates whose glosses are the same, repeated pairs.
"""

from __future__ import annotations

import csv
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from dsbuild.errors import InputError

CATEGORIES = ("cognate", "false_cognate", "non_cognate")
SAME_MEANING = {"cognate": True, "non_cognate": True, "false_cognate": False}
LANGUAGE_NAMES = {"en": "English", "es": "Spanish", "de": "German", "fr": "French", "it": "Italian", "pt": "Portuguese",
                  "nl": "Dutch", "ca": "Catalan", "eu": "Basque", "gl": "Galician", "ro": "Romanian", "mt": "Maltese",
                  "pl": "Polish", "sv": "Swedish", "da": "Danish", "zh": "Chinese", "ar": "Arabic"}


@dataclass(frozen=True)
class WordPair:
    """One pair with its category, the meaning of each word (glosses in English) and its file line."""

    id: str
    lang_a: str
    word_a: str
    lang_b: str
    word_b: str
    category: str
    gloss_a: str
    gloss_b: str
    line: int

    @property
    def same_meaning(self) -> bool:
        return SAME_MEANING[self.category]

    @property
    def identical_form(self) -> bool:
        """Same spelling ignoring case and accents (an interlingual homograph when meanings differ)."""
        return _fold(self.word_a) == _fold(self.word_b)


def _fold(word: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFD", word.casefold()) if not unicodedata.combining(c))


def load_word_pairs(path: str | Path) -> list[WordPair]:
    """Read and check a pair file (see the module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise InputError("file not found", source=path, hint="check the path of the word-pair file")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as err:
        raise InputError(f"not UTF-8 ({err.reason})", source=path, hint="save the file as UTF-8") from None
    if not lines:
        raise InputError("empty file", source=path, hint="the first line is a header: A<TAB>B<TAB>category<TAB>gloss_A<TAB>gloss_B")
    header = lines[0].lstrip("\ufeff").split("\t")
    if len(header) < 5 or header[2] != "category" or header[3] != f"gloss_{header[0]}" or header[4] != f"gloss_{header[1]}":
        raise InputError(f"bad header {header!r}", source=path, line=1,
                         hint="use 'A<TAB>B<TAB>category<TAB>gloss_A<TAB>gloss_B' with language codes, e.g. "
                              "'en\tes\tcategory\tgloss_en\tgloss_es'")
    lang_a, lang_b = header[0], header[1]
    if lang_a == lang_b:
        raise InputError(f"both columns are language {lang_a!r}", source=path, line=1, hint="name two different languages")
    pairs: list[WordPair] = []
    seen: dict[tuple[str, str], int] = {}
    for lineno, raw in enumerate(csv.reader(lines[1:], delimiter="\t", quoting=csv.QUOTE_NONE), start=2):
        if not any(c.strip() for c in raw):
            continue
        cells = [c.strip() for c in raw] + [""] * (5 - len(raw))
        word_a, word_b, category, gloss_a, gloss_b = cells[:5]
        if not word_a or not word_b:
            raise InputError(f"missing word ({lang_a}={word_a!r}, {lang_b}={word_b!r})", source=path, line=lineno,
                             hint="give both words of the pair")
        if category not in CATEGORIES:
            raise InputError(f"unknown category {category!r}", source=path, line=lineno, hint=f"use one of {', '.join(CATEGORIES)}")
        for lang, gloss, word in ((lang_a, gloss_a, word_a), (lang_b, gloss_b, word_b)):
            if not gloss:
                raise InputError(f"missing gloss_{lang} for {word!r}", source=path, line=lineno,
                                 hint=f"write the meaning of {word!r} (in English) in column gloss_{lang}; "
                                      "every word needs a gloss for the meaning-choice task")
        if SAME_MEANING[category] and gloss_a != gloss_b:
            raise InputError(f"{category} pair {word_a!r}/{word_b!r} has different glosses ({gloss_a!r} vs {gloss_b!r})",
                             source=path, line=lineno,
                             hint="a cognate or non-cognate pair shares one meaning: give the same gloss, or mark it false_cognate")
        if not SAME_MEANING[category] and gloss_a == gloss_b:
            raise InputError(f"false_cognate pair {word_a!r}/{word_b!r} has the same gloss {gloss_a!r}", source=path, line=lineno,
                             hint="false cognates differ in meaning: fix a gloss, or mark the pair cognate")
        key = (word_a, word_b)
        if key in seen:
            raise InputError(f"pair {word_a!r}/{word_b!r} repeats line {seen[key]}", source=path, line=lineno,
                             hint="remove the duplicate")
        seen[key] = lineno
        pairs.append(WordPair(f"{lang_a}-{lang_b}-{len(pairs) + 1:04d}", lang_a, word_a, lang_b, word_b, category,
                              gloss_a, gloss_b, lineno))
    if not pairs:
        raise InputError("no word pairs after the header", source=path, hint="add one pair per line")
    return pairs

"""Per-item quality checks of a translated item, and chrF statistics that add up over shards.

Each check returns flags (stable short codes); :class:`QCSettings` says which flags reject the
item (``reject_on``) and sets the thresholds. The checks:

* ``protected-lost`` / ``protected-added`` / ``protected-glued``: see :mod:`.protect`;
* ``untranslated``: the translated text equals the source (letters present), or
  ``source-script``: it is mostly in the source's script while the target language is written in
  another (Amharic in Ethiopic, say): script by :func:`unicodedata.name`;
* ``length-ratio``: target/source character ratio outside ``length_ratio`` bounds;
* ``options-collapsed``: two answer options that differ in the source became identical;
* ``span-lost`` / ``consistent-not-found``: set by the span and consistency steps;
* ``backtranslation-low-chrf``: with a reverse model, chrF of the back-translation against the
  source under ``min_backtranslation_chrf``.
"""

from __future__ import annotations

import functools
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

#: flags the generic QC can set, in the order the card lists them
QC_FLAGS: tuple[str, ...] = ("protected-lost", "protected-added", "protected-glued", "untranslated", "source-script",
                             "length-ratio", "options-collapsed", "span-lost", "consistent-not-found",
                             "backtranslation-low-chrf")

#: the script most text of a language is written in (ISO 639-1/3 codes); others are not checked
LANGUAGE_SCRIPTS: dict[str, str] = {
    **dict.fromkeys(["am", "amh", "ti", "tir"], "ETHIOPIC"),
    **dict.fromkeys(["ar", "ara", "fa", "fas", "ur", "urd", "ps"], "ARABIC"),
    **dict.fromkeys(["ru", "rus", "uk", "ukr", "bg", "bul", "sr", "srp", "mk", "be", "kk"], "CYRILLIC"),
    **dict.fromkeys(["hi", "hin", "mr", "mar", "ne", "nep", "sa"], "DEVANAGARI"),
    **dict.fromkeys(["zh", "zho", "cmn", "yue"], "CJK"), **dict.fromkeys(["ja", "jpn"], "CJK"),
    **dict.fromkeys(["ko", "kor"], "HANGUL"), **dict.fromkeys(["el", "ell"], "GREEK"),
    **dict.fromkeys(["he", "heb", "yi"], "HEBREW"), **dict.fromkeys(["th", "tha"], "THAI"),
    **dict.fromkeys(["bn", "ben", "as"], "BENGALI"), **dict.fromkeys(["ta", "tam"], "TAMIL"),
    **dict.fromkeys(["te", "tel"], "TELUGU"), **dict.fromkeys(["ka", "kat"], "GEORGIAN"),
    **dict.fromkeys(["hy", "hye"], "ARMENIAN"), **dict.fromkeys(["gu", "guj"], "GUJARATI"),
    **dict.fromkeys(["km", "khm"], "KHMER"), **dict.fromkeys(["my", "mya"], "MYANMAR"),
    **dict.fromkeys(["en", "eng", "es", "spa", "fr", "fra", "de", "deu", "it", "ita", "pt", "por", "tr", "tur",
                     "af", "afr", "zu", "zul", "xh", "xho", "ig", "ibo", "st", "sot", "sn", "sna", "tn", "tsn",
                     "ts", "tso", "nso", "bm", "bam", "yo", "yor", "ha", "hau", "sw", "swa", "nl", "nld", "mt",
                     "mlt", "eu", "eus", "ca", "cat", "pl", "pol", "cs", "ces", "ro", "ron", "vi", "vie", "id",
                     "ind", "pcm"], "LATIN"),
}


@dataclass
class QCSettings:
    """What the QC flags and which flags reject.

    Attributes:
        reject_on: flags that turn an item into a reject (reason = the flag); others are only listed
            in ``qc_flags``. ``empty-translation`` always rejects.
        length_ratio: ``(low, high)`` bounds of target/source characters; outside: ``length-ratio``.
        min_chars_untranslated: a text shorter than this (letters) is never flagged ``untranslated``
            (names and numbers stay the same across languages).
        backtranslation_model: a reverse MT model (Hub id or folder) for ``hf-seq2seq``; empty: none.
        backtranslation_options: more options of the reverse translator.
        min_backtranslation_chrf: under it: ``backtranslation-low-chrf``.
        placeholder: mask format for protected patterns (``{i}`` = match number).
    """

    reject_on: tuple[str, ...] = ("protected-lost", "options-collapsed")
    length_ratio: tuple[float, float] = (0.33, 3.0)
    min_chars_untranslated: int = 12
    backtranslation_model: str = ""
    backtranslation_options: dict[str, Any] = field(default_factory=dict)
    min_backtranslation_chrf: float = 30.0
    placeholder: str = "<x{i}>"


def dominant_script(text: str) -> str | None:
    """The Unicode script most letters of ``text`` belong to (``LATIN``, ``ETHIOPIC``...), or None."""
    counts: Counter[str] = Counter(_script(ch) for ch in text if ch.isalpha())
    counts.pop("", None)
    return counts.most_common(1)[0][0] if counts else None


@functools.lru_cache(maxsize=4096)
def _script(ch: str) -> str:
    """The first word of a letter's Unicode name (its script), CJK for Han and kana."""
    word = unicodedata.name(ch, "").split(" ", 1)[0]
    return "CJK" if word in ("CJK", "HIRAGANA", "KATAKANA") else word


def expected_script(lang: str) -> str | None:
    """The script of a language code (``am`` -> ``ETHIOPIC``; ``spa_Latn`` -> ``LATIN``), or None if unknown."""
    if "_" in lang and len(lang.split("_")[-1]) == 4:  # an NLLB code names its script
        tail = lang.split("_")[-1]
        by_code = {"Latn": "LATIN", "Ethi": "ETHIOPIC", "Arab": "ARABIC", "Cyrl": "CYRILLIC", "Deva": "DEVANAGARI",
                   "Hans": "CJK", "Hant": "CJK", "Jpan": "CJK", "Hang": "HANGUL", "Grek": "GREEK", "Hebr": "HEBREW"}
        return by_code.get(tail)
    return LANGUAGE_SCRIPTS.get(lang.split("-")[0].lower())


def copy_flags(source: str, target: str, src_lang: str, tgt_lang: str, *, script: str | None = None,
               min_chars: int = 12) -> list[str]:
    """``untranslated`` (target == source) or ``source-script`` (target in the source's script while
    the target language uses another). Nothing when the two languages are the same (back-translation)."""
    if src_lang.split("_")[0] == tgt_lang.split("_")[0]:
        return []
    letters = sum(ch.isalpha() for ch in source)
    if letters >= min_chars and _norm(source) == _norm(target):
        return ["untranslated"]
    want = script or expected_script(tgt_lang)
    src_script, tgt_script = dominant_script(source), dominant_script(target)
    if want and src_script and tgt_script == src_script and want != src_script and letters >= min_chars:
        return ["source-script"]
    return []


def length_ratio(source: str, target: str) -> float | None:
    """Characters of the target per character of the source (None for an empty source)."""
    n = len(source.strip())
    return round(len(target.strip()) / n, 4) if n else None


def options_collapsed(source_options: Sequence[str], target_options: Sequence[str]) -> bool:
    """Whether two options that differ in the source are identical in the target."""
    seen: dict[str, str] = {}
    for s, t in zip(source_options, target_options):
        key = _norm(t)
        if key in seen and seen[key] != _norm(s):
            return True
        seen.setdefault(key, _norm(s))
    return False


def found_in(value: str, text: str) -> bool:
    """Whether ``value`` occurs in ``text`` (case-insensitive, whitespace-normalised)."""
    return bool(value.strip()) and _norm(value) in _norm(text)


def _norm(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text).casefold().split())


# ---------------------------------------------------------------------------- chrF
def chrf_stats(hypothesis: str, reference: str) -> list[int]:
    """sacrebleu chrF sufficient statistics of one pair (they add up over a corpus)."""
    return [int(x) for x in _chrf()._extract_corpus_statistics([hypothesis], [[reference]])[0]]


def chrf_from_stats(stats: Sequence[int]) -> float:
    """Corpus chrF (0-100) from summed statistics."""
    return round(float(_chrf()._compute_score_from_stats(list(stats)).score), 2)


def sentence_chrf(hypothesis: str, reference: str) -> float:
    """Sentence chrF (0-100)."""
    return round(float(_chrf().sentence_score(hypothesis, [reference]).score), 2)


_CHRF: list[Any] = []


def _chrf() -> Any:
    if not _CHRF:
        from sacrebleu.metrics import CHRF

        _CHRF.append(CHRF())
    return _CHRF[0]


__all__ = ["LANGUAGE_SCRIPTS", "QCSettings", "QC_FLAGS", "chrf_from_stats", "chrf_stats", "copy_flags",
           "dominant_script", "expected_script", "found_in", "length_ratio", "options_collapsed", "sentence_chrf"]

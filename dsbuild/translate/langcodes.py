"""Language codes: ISO 639-1 / 639-3 in, each model family's own code out.

Users write ``es``, ``spa``, ``spa_Latn``, ``es_XX`` or ``es-ES``; NLLB wants ``spa_Latn``,
M2M100 ``es``, mBART ``es_XX``, multilingual Marian ``>>spa<<``. :func:`parse_code` splits what
the user wrote into a language (ISO 639-3), an optional script and region;
:func:`resolve_code` picks the matching code among the codes a model supports, or raises
:class:`~dsbuild.errors.ConfigError` listing close matches.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass

from dsbuild.errors import ConfigError

# ISO 639-1 -> (ISO 639-3, English name). 639-3 is the individual/macrolanguage code used by
# ISO 639-3 itself (spa, deu, fra, zho, ara...).
_ISO1 = """
aa aar Afar|ab abk Abkhazian|af afr Afrikaans|ak aka Akan|am amh Amharic|an arg Aragonese|ar ara Arabic|
as asm Assamese|av ava Avaric|ay aym Aymara|az aze Azerbaijani|ba bak Bashkir|be bel Belarusian|
bg bul Bulgarian|bm bam Bambara|bn ben Bengali|bo bod Tibetan|br bre Breton|bs bos Bosnian|ca cat Catalan|
ce che Chechen|co cos Corsican|cs ces Czech|cy cym Welsh|da dan Danish|de deu German|dv div Dhivehi|
dz dzo Dzongkha|ee ewe Ewe|el ell Greek|en eng English|eo epo Esperanto|es spa Spanish|et est Estonian|
eu eus Basque|fa fas Persian|ff ful Fulah|fi fin Finnish|fj fij Fijian|fo fao Faroese|fr fra French|
fy fry Western Frisian|ga gle Irish|gd gla Scottish Gaelic|gl glg Galician|gn grn Guarani|gu guj Gujarati|
gv glv Manx|ha hau Hausa|he heb Hebrew|hi hin Hindi|hr hrv Croatian|ht hat Haitian|hu hun Hungarian|
hy hye Armenian|ia ina Interlingua|id ind Indonesian|ig ibo Igbo|ii iii Sichuan Yi|is isl Icelandic|
it ita Italian|iu iku Inuktitut|ja jpn Japanese|jv jav Javanese|ka kat Georgian|kg kon Kongo|ki kik Kikuyu|
kk kaz Kazakh|kl kal Kalaallisut|km khm Khmer|kn kan Kannada|ko kor Korean|kr kau Kanuri|ks kas Kashmiri|
ku kur Kurdish|kv kom Komi|kw cor Cornish|ky kir Kyrgyz|la lat Latin|lb ltz Luxembourgish|lg lug Ganda|
li lim Limburgish|ln lin Lingala|lo lao Lao|lt lit Lithuanian|lu lub Luba-Katanga|lv lav Latvian|
mg mlg Malagasy|mi mri Maori|mk mkd Macedonian|ml mal Malayalam|mn mon Mongolian|mr mar Marathi|
ms msa Malay|mt mlt Maltese|my mya Burmese|nb nob Norwegian Bokmal|ne nep Nepali|nl nld Dutch|
nn nno Norwegian Nynorsk|no nor Norwegian|ny nya Chichewa|oc oci Occitan|om orm Oromo|or ori Odia|
os oss Ossetian|pa pan Punjabi|pl pol Polish|ps pus Pashto|pt por Portuguese|qu que Quechua|
rm roh Romansh|rn run Rundi|ro ron Romanian|ru rus Russian|rw kin Kinyarwanda|sa san Sanskrit|
sc srd Sardinian|sd snd Sindhi|se sme Northern Sami|sg sag Sango|si sin Sinhala|sk slk Slovak|
sl slv Slovenian|sm smo Samoan|sn sna Shona|so som Somali|sq sqi Albanian|sr srp Serbian|ss ssw Swati|
st sot Southern Sotho|su sun Sundanese|sv swe Swedish|sw swa Swahili|ta tam Tamil|te tel Telugu|
tg tgk Tajik|th tha Thai|ti tir Tigrinya|tk tuk Turkmen|tl tgl Tagalog|tn tsn Tswana|to ton Tonga|
tr tur Turkish|ts tso Tsonga|tt tat Tatar|ug uig Uyghur|uk ukr Ukrainian|ur urd Urdu|uz uzb Uzbek|
ve ven Venda|vi vie Vietnamese|wa wln Walloon|wo wol Wolof|xh xho Xhosa|yi yid Yiddish|yo yor Yoruba|
za zha Zhuang|zh zho Chinese|zu zul Zulu
"""
ISO1_TO_ISO3: dict[str, str] = {}
NAMES: dict[str, str] = {}  # ISO 639-3 -> English name
for _entry in _ISO1.replace("\n", "").split("|"):
    _a, _b, _name = _entry.strip().split(" ", 2)
    ISO1_TO_ISO3[_a] = _b
    NAMES[_b] = _name
ISO3_TO_ISO1 = {v: k for k, v in ISO1_TO_ISO3.items()}

# ISO 639-2/B codes some users still write -> 639-3
ISO2B_TO_ISO3 = {"alb": "sqi", "arm": "hye", "baq": "eus", "bur": "mya", "chi": "zho", "cze": "ces", "dut": "nld",
                 "fre": "fra", "geo": "kat", "ger": "deu", "gre": "ell", "ice": "isl", "mac": "mkd", "mao": "mri",
                 "may": "msa", "per": "fas", "rum": "ron", "slo": "slk", "tib": "bod", "wel": "cym"}

# A macrolanguage and the individual language a model family usually uses for it (NLLB's choices).
MACRO_MEMBERS: dict[str, tuple[str, ...]] = {
    "ara": ("arb",), "fas": ("pes", "prs"), "msa": ("zsm", "ind"), "swa": ("swh",), "est": ("ekk",), "lav": ("lvs",),
    "mon": ("khk",), "nep": ("npi",), "orm": ("gaz",), "sqi": ("als",), "uzb": ("uzn",), "pus": ("pbt",),
    "mlg": ("plt",), "aze": ("azj", "azb"), "que": ("quy",), "yid": ("ydd",), "kau": ("knc",), "grn": ("gug",),
    "zho": ("cmn", "yue"), "kur": ("kmr", "ckb"), "nor": ("nob", "nno"), "ori": ("ory",), "ful": ("fuv",),
    "hbs": ("hrv", "srp", "bos"), "aka": ("twi",), "kon": ("kng",), "lah": ("pnb",),
}
MEMBER_TO_MACRO = {m: macro for macro, members in MACRO_MEMBERS.items() for m in members}

#: which script to pick when a model offers several for one language and the user named none
DEFAULT_SCRIPT = {"zho": "Hans", "kas": "Arab", "knc": "Latn", "taq": "Latn", "bjn": "Latn", "ace": "Latn",
                  "min": "Latn", "srp": "Cyrl", "uzn": "Latn", "pan": "Guru", "snd": "Arab"}

_CODE_RE = re.compile(r"^(?:>>)?([A-Za-z]{2,3})(?:[_-]([A-Za-z]{4}))?(?:[_-]([A-Za-z]{2}|\d{3}))?(?:<<)?$")


@dataclass(frozen=True)
class LangCode:
    """A parsed language code: ISO 639-3 language, optional script (``Latn``) and region (``ES``)."""

    lang: str
    script: str | None = None
    region: str | None = None
    given: str = ""

    @property
    def iso1(self) -> str | None:
        return ISO3_TO_ISO1.get(self.lang) or ISO3_TO_ISO1.get(MEMBER_TO_MACRO.get(self.lang, ""))

    def candidates(self) -> list[str]:
        """ISO 639-3 codes that may stand for this language, most specific first."""
        out = [self.lang]
        out += [m for m in MACRO_MEMBERS.get(self.lang, ()) if m not in out]
        macro = MEMBER_TO_MACRO.get(self.lang)
        if macro and macro not in out:
            out.append(macro)
        return out


def parse_code(code: str) -> LangCode:
    """Parse ``es``, ``spa``, ``spa_Latn``, ``es_XX``, ``es-ES``, ``zh-Hant``, ``>>spa<<``.

    Raises ConfigError when the code is not ISO 639-1/2/3 shaped or the 639-1 code is unknown.
    """
    m = _CODE_RE.match(code.strip()) if isinstance(code, str) else None
    if not m:
        raise ConfigError(f"language code {code!r} is not a code: use ISO 639-1 (es) or 639-3 (spa), "
                          f"optionally with a script (spa_Latn) or region (es_XX)" + _name_hint(code))
    lang, script, region = m.group(1).lower(), m.group(2), m.group(3)
    if len(lang) == 2:
        if lang not in ISO1_TO_ISO3:
            raise ConfigError(f"unknown ISO 639-1 language code {code!r}.{_close_hint(lang, ISO1_TO_ISO3)}")
        lang = ISO1_TO_ISO3[lang]
    lang = ISO2B_TO_ISO3.get(lang, lang)
    return LangCode(lang, script.title() if script else None, region.upper() if region else None, code)


def _close_hint(code: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(code, list(known), n=5, cutoff=0.5)
    if not close:
        return ""
    return " Close matches: " + ", ".join(f"{c} ({NAMES.get(ISO1_TO_ISO3.get(c, c), '') or c})" for c in close) + "."


def _name_hint(text: object) -> str:
    """`spanish` -> ' Did you mean es (Spanish)?'"""
    if not isinstance(text, str):
        return ""
    by_name = {name.lower(): iso3 for iso3, name in NAMES.items()}
    hit = by_name.get(text.strip().lower())
    if hit:
        return f". Did you mean {ISO3_TO_ISO1.get(hit, hit)} ({NAMES[hit]})?"
    return ""


def resolve_code(code: str, supported: Iterable[str], *, family: str, model: str = "") -> str:
    """The code in ``supported`` (a model's own codes) that means the language ``code``.

    ``family`` chooses the code shape: ``nllb`` (``spa_Latn``), ``m2m100`` (``es``/``ast``),
    ``mbart`` (``es_XX``), ``marian-multi`` (``>>spa<<``). An exact match of a supported code
    always wins. Raises ConfigError naming the model and listing close supported codes.
    """
    supported = list(supported)
    if code in supported:
        return code
    parsed = parse_code(code)
    matches: list[str] = []
    for lang in parsed.candidates():
        iso1 = ISO3_TO_ISO1.get(lang)
        if family == "nllb":
            hits = [s for s in supported if s.split("_")[0] == lang]
            if parsed.script:
                hits = [s for s in hits if s.endswith("_" + parsed.script)]
            if len(hits) > 1:
                preferred = DEFAULT_SCRIPT.get(lang)
                hits = [s for s in hits if preferred and s.endswith("_" + preferred)] or hits
        elif family == "m2m100":
            hits = [s for s in supported if s in (iso1, lang)]
        elif family == "mbart":
            hits = [s for s in supported if iso1 and s.split("_")[0] == iso1]
        elif family == "marian-multi":
            hits = [s for s in supported if s.strip("<>") in (lang, iso1)]
        else:
            hits = [s for s in supported if s in (lang, iso1)]
        if len(hits) == 1:
            return hits[0]
        if len(hits) > 1:
            matches = hits
            break
    where = f" by model {model!r}" if model else ""
    if matches:
        raise ConfigError(f"language code {code!r} is ambiguous{where}: it could be {', '.join(matches)}; "
                          f"give one of them")
    close = difflib.get_close_matches(code, supported, n=5, cutoff=0.4)
    # also suggest codes of the same language written another way, e.g. 'es' for 'spa_Latn'
    same = [s for s in supported if s.split("_")[0].strip("<>") in {parsed.lang, parsed.iso1}]
    suggestions = list(dict.fromkeys(same + close))[:6]
    name = NAMES.get(parsed.lang) or NAMES.get(MEMBER_TO_MACRO.get(parsed.lang, ""), "")
    raise ConfigError(
        f"language {code!r}{f' ({name})' if name else ''} is not supported{where}."
        + (f" Close matches: {', '.join(suggestions)}." if suggestions else "")
        + f" The model supports {len(supported)} codes"
        + (f", e.g. {', '.join(supported[:8])}" if supported else "") + "."
    )

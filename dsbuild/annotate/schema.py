"""Label schemas: label names with definitions, from a YAML file or the IPTC Media Topic mapping.

A schema file is YAML::

    name: my-topics                 # optional; default: the file name
    license: cc-by-4.0              # optional: licence of the definitions, shown in the card
    source: https://example.org     # optional: where the definitions come from
    labels:
      - name: sport
        definition: Competitive physical activity and the bodies that organise it.
        description: Matches, athletes, clubs, referees, doping.   # optional, more detail for the prompt
      - name: politics
        definition: ...

or, shorter, ``labels: {sport: "definition", politics: "definition"}``. Every label needs a
definition (the teacher labels from them); names must be unique (case and spacing ignored).

``load_schema("iptc")`` is the shipped schema: the 17 top-level IPTC Media Topics with IPTC's
definitions. ``load_schema("path/iptc_mapping.json")`` reads the IPTC mapping file of Kuzman &
Ljubešić (bare ``NaN`` for empty cells, retired codes dropped) at ``level`` 1 (17 labels) or deeper.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from dsbuild.errors import ConfigError

DATA_DIR = Path(__file__).resolve().parents[2] / "builders" / "data" / "llm_annotate"
#: schemas shipped with dsbuild, by the name ``load_schema`` accepts
SHIPPED = {"iptc": DATA_DIR / "iptc_top_level.yaml"}


class SchemaError(ConfigError):
    """A label schema file that cannot be used (one line naming the file and what to fix)."""


@dataclass(frozen=True)
class Label:
    """One label: its name (what the teacher must answer), definition and optional extra description."""

    name: str
    definition: str
    description: str = ""
    code: str = ""


@dataclass(frozen=True)
class LabelSchema:
    """An ordered, closed set of labels with definitions."""

    name: str
    labels: tuple[Label, ...]
    origin: str = ""  # where it was read from, named portably (shipped file or the user's file name)
    license: str = ""
    source: str = ""
    _index: dict[str, str] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._index.update({normalise_label(lab.name): lab.name for lab in self.labels})

    @property
    def names(self) -> list[str]:
        """Label names in schema order (the ClassLabel order of built datasets)."""
        return [lab.name for lab in self.labels]

    def lookup(self, answer: str) -> str | None:
        """The label whose normalised name equals ``answer``'s (case, spacing, ``&``/``and`` ignored)."""
        return self._index.get(normalise_label(answer))

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "license": self.license, "source": self.source, "origin": self.origin,
                "labels": [{"name": lab.name, "definition": lab.definition, "description": lab.description,
                            "code": lab.code} for lab in self.labels]}

    def hash(self) -> str:
        """SHA-256 of the names, definitions and descriptions (part of the prompt hash)."""
        blob = json.dumps([[lab.name, lab.definition, lab.description] for lab in self.labels], ensure_ascii=False)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def normalise_label(text: str) -> str:
    """Casefolded, NFKC, ``&`` as ``and``, runs of spaces/underscores/hyphens as one space."""
    text = unicodedata.normalize("NFKC", str(text)).casefold().replace("&", " and ")
    return re.sub(r"[\s_\-]+", " ", text).strip(" .")


def load_schema(spec: str | Path, *, level: int = 1) -> LabelSchema:
    """A schema by shipped name (``iptc``), YAML file, or IPTC mapping JSON file (``level``: depth)."""
    text = str(spec).strip()
    if text in SHIPPED:
        return _from_yaml(SHIPPED[text])
    path = Path(text).expanduser()
    if not path.is_file():
        raise SchemaError(f"label schema {text!r}: no such file (give a YAML file with labels and definitions, "
                          f"or one of: {', '.join(sorted(SHIPPED))})")
    if path.suffix.lower() == ".json":
        return from_iptc_mapping(path, level=level)
    return _from_yaml(path)


def _shown(path: Path) -> str:
    from dsbuild.builder import BuildContext

    return BuildContext.portable_path(path)


def _from_yaml(path: Path) -> LabelSchema:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as err:
        raise SchemaError(f"label schema {path}: cannot read it ({err}); give a UTF-8 YAML file") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        raise SchemaError(f"label schema {path}{where}: invalid YAML ({getattr(err, 'problem', err)})") from None
    if isinstance(data, dict) and "labels" in data:
        raw_labels, meta = data["labels"], data
    else:
        raw_labels, meta = data, {}
    labels = _labels_from(raw_labels, path)
    return _checked(LabelSchema(name=str(meta.get("name") or path.stem), labels=tuple(labels), origin=_shown(path),
                                license=str(meta.get("license") or ""), source=str(meta.get("source") or "")), path)


def _labels_from(raw: Any, path: Path) -> list[Label]:
    """Labels from a list of ``{name, definition}`` mappings or a ``{name: definition}`` mapping."""
    if raw is None or raw == [] or raw == {}:
        raise SchemaError(f"label schema {path}: no labels; list them under 'labels:' with a definition each")
    if isinstance(raw, dict):
        return [Label(str(k).strip(), _text(v)) for k, v in raw.items()]
    if not isinstance(raw, list):
        raise SchemaError(f"label schema {path}: 'labels' must be a list of {{name, definition}} or a mapping "
                          f"name: definition, not {type(raw).__name__}")
    out = []
    for i, entry in enumerate(raw, 1):
        if isinstance(entry, str):
            out.append(Label(entry.strip(), ""))
        elif isinstance(entry, dict) and entry.get("name") is not None:
            out.append(Label(str(entry["name"]).strip(), _text(entry.get("definition")),
                             _text(entry.get("description")), _text(entry.get("code"))))
        else:
            raise SchemaError(f"label schema {path}: label #{i} has no 'name' ({entry!r:.60})")
    return out


def _text(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return " ".join(str(value).split())


def _checked(schema: LabelSchema, path: Path | str) -> LabelSchema:
    """Refuse empty names, duplicates (after normalisation) and labels without a definition."""
    if not schema.labels:
        raise SchemaError(f"label schema {path}: no labels; list them under 'labels:' with a definition each")
    if any(not lab.name for lab in schema.labels):
        raise SchemaError(f"label schema {path}: a label has an empty name")
    seen: dict[str, str] = {}
    dups = []
    for lab in schema.labels:
        key = normalise_label(lab.name)
        if key in seen:
            dups.append(f"{seen[key]!r} / {lab.name!r}")
        seen.setdefault(key, lab.name)
    if dups:
        raise SchemaError(f"label schema {path}: duplicate labels {', '.join(dups)} (names must differ in more "
                          f"than case and spacing); remove or rename them")
    missing = [lab.name for lab in schema.labels if not lab.definition]
    if missing:
        shown = ", ".join(repr(m) for m in missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise SchemaError(f"label schema {path}: no definition for {shown}; the teacher labels from the "
                          f"definitions, so give each label a 'definition'")
    return schema


# --------------------------------------------------------------------------- IPTC mapping file
def read_iptc_mapping(path: str | Path) -> dict[str, dict[str, Any]]:
    """The IPTC mapping file as a dict, with its bare ``NaN`` cells (not strict JSON) read as ``None``.

    Any other non-JSON constant (``Infinity``) is refused: it would mean a different file.
    """
    path = Path(path)

    def constant(name: str) -> None:
        if name == "NaN":
            return None
        raise SchemaError(f"IPTC mapping {path}: unexpected constant {name} (only bare NaN, meaning an empty "
                          f"cell, is accepted)")

    try:
        data = json.loads(path.read_text(encoding="utf-8"), parse_constant=constant)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise SchemaError(f"IPTC mapping {path}: cannot read it as JSON ({err})") from None
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise SchemaError(f"IPTC mapping {path}: expected one object of QCode -> entry objects")
    return data


def from_iptc_mapping(path: str | Path, *, level: int = 1) -> LabelSchema:
    """Labels of one IPTC level (1 = the 17 top-level topics), retired codes dropped, in QCode order
    of the file (its top-level order is the one the Kuzman & Ljubešić prompt lists)."""
    path = Path(path)
    if not 1 <= level <= 4:
        raise SchemaError(f"IPTC mapping {path}: level must be 1-4 (the file has no deeper levels), got {level}")
    data = read_iptc_mapping(path)
    labels = []
    for code, entry in data.items():
        if entry.get("RetiredDate"):  # 273 retired codes: not part of the current vocabulary
            continue
        if entry.get(f"Level{level}/NewsCode") != code or (level < 6 and entry.get(f"Level{level + 1}/NewsCode")):
            continue
        labels.append(Label(_text(entry.get("Name (en-GB)")), _text(entry.get("Definition (en-GB)")), code=code))
    schema = LabelSchema(name=f"iptc-media-topics-level{level}", labels=tuple(labels), origin=_shown(path),
                         license="IPTC NewsCodes: free of charge, IPTC acknowledged",
                         source="https://iptc.org/standards/media-topics/")
    return _checked(schema, path)


def iptc_top_level_yaml(mapping_path: str | Path) -> str:
    """The text of the shipped ``iptc_top_level.yaml``, made from the IPTC mapping file.

    Names, codes and definitions are IPTC's (level 1, retired codes dropped). ``description`` lists
    the level-2 topics under each label (the prompt shows it); ``keywords`` are the names of all
    current deeper topics, which only the ``definition-overlap`` stand-in teacher reads.
    """
    data = read_iptc_mapping(mapping_path)
    current = {code: e for code, e in data.items() if not e.get("RetiredDate")}
    top = from_iptc_mapping(mapping_path, level=1)
    labels = []
    for lab in top.labels:
        below = [e for c, e in current.items() if e.get("Level1/NewsCode") == lab.code and c != lab.code]
        level2 = [_text(e["Name (en-GB)"]) for e in below if e.get("Level2/NewsCode") and not e.get("Level3/NewsCode")]
        labels.append({"name": lab.name, "code": lab.code, "definition": lab.definition,
                       "description": "Subtopics: " + "; ".join(level2) + ".",
                       "keywords": sorted({_text(e["Name (en-GB)"]) for e in below})})
    doc = {"name": "iptc-media-topics-top-level",
           "license": "IPTC NewsCodes (free of charge; IPTC must be acknowledged); file from "
                      "TajaKuzman/IPTC-Media-Topic-Classification under BSD-2-Clause",
           "source": "https://iptc.org/standards/media-topics/ via https://github.com/TajaKuzman/"
                     "IPTC-Media-Topic-Classification (commit c1a538d2929cf4ec4b116a794eab886f85c6aa59, "
                     "data/iptc_mapping.json)",
           "labels": labels}
    header = ("# The 17 top-level IPTC Media Topics (schema version 2023-10-24), made by\n"
              "# dsbuild.annotate.schema.iptc_top_level_yaml from iptc_mapping.json (see README.md here).\n"
              "# Credit: IPTC Media Topics (International Press Telecommunications Council).\n")
    return header + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=110)


def label_keywords(path: str | Path) -> dict[str, list[str]]:
    """The optional ``keywords`` of each label in a schema YAML file (empty lists when none)."""
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    entries = data.get("labels") if isinstance(data, dict) else data
    if not isinstance(entries, list):
        return {}
    return {str(e["name"]).strip(): [str(k) for k in e.get("keywords") or []]
            for e in entries if isinstance(e, dict) and e.get("name") is not None}


__all__ = ["DATA_DIR", "SHIPPED", "Label", "LabelSchema", "SchemaError", "from_iptc_mapping", "iptc_top_level_yaml",
           "label_keywords", "load_schema", "normalise_label", "read_iptc_mapping"]

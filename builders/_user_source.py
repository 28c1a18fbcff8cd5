"""What builders say about a source the user supplied: its name, licence, URL and citation.

Builders that read a user's file or Hub dataset (``maltese --set source=...``, ``events --set
source_path=...``) declare the four options below and turn them into the card's :class:`Source`
entry and the dataset's Hub ``license`` with :func:`user_source` and :func:`dataset_license`.
A licence nobody stated is ``unknown`` (a value the Hub accepts), never ``other`` without a name,
which the Hub and ``dsbuild validate`` reject.

Sources are named without the folder they sat in (:func:`display_name`), and so are paths inside
settings and model descriptions that reach the card (:func:`portable_value`): a published dataset
must not depend on, or reveal, where it was built.

(A private module: the builder registry does not import modules whose name starts with ``_``.)
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from dsbuild.builder import BuildContext, Source
from dsbuild.errors import ConfigError

SOURCE_NAME_HELP = "name of your source for the card (default: its file name or Hub id)"
SOURCE_LICENSE_HELP = ("licence of your source: a Hub licence id (cc-by-4.0, mit, ...) or the short name of "
                       "another licence; empty: the card says the licence is unknown")
SOURCE_URL_HELP = "where your source can be found, for the card"
SOURCE_CITATION_HELP = "BibTeX entry of your source, for the card"

#: what the card says when nobody stated the source's licence
UNKNOWN = "unknown"


def display_name(value: str | Path) -> str:
    """A source as rows and cards name it: a local file or folder by its portable path (shipped data
    relative to the package, the user's by file name), anything else (a Hub id) as given."""
    text = str(value)
    if not text:
        return ""
    try:
        local = Path(text).exists()
    except OSError:  # a name too long for a path, say: not a local file
        local = False
    return BuildContext.portable_path(text) if local else text


def portable_value(value: Any) -> Any:
    """``value`` (settings or a model description, JSON-like) with every absolute path replaced by its
    portable name, for facts and model parameters that reach the card: a model folder, a given
    translations file or an aligner's extra corpus are named, not located."""
    if isinstance(value, dict):
        return {k: portable_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(portable_value(v) for v in value)
    if isinstance(value, (str, os.PathLike)) and os.path.isabs(value):
        return BuildContext.portable_path(value)
    return value


def dataset_license(options: Any) -> tuple[str, str]:
    """``(license, license_name)`` for :class:`DatasetInfo` from ``options.source_license``.

    A Hub licence id (any case) is used as it is; another stated licence becomes ``other`` with a
    Hub-safe short name (lowercase, ``-``); nothing stated is ``unknown``.
    """
    stated = str(getattr(options, "source_license", "") or "").strip()
    if not stated or stated.lower() == UNKNOWN:
        return UNKNOWN, ""
    if stated.lower() == "other":
        raise ConfigError("source_license 'other' does not say which licence; give its short name instead "
                          "(e.g. --set source_license=europarl-terms), or leave it empty if unknown")
    from dsbuild.cards import allowed_values  # late import: cards pulls in jinja2 and huggingface_hub

    if stated.lower() in allowed_values()["licenses"]:
        return stated.lower(), ""
    name = re.sub(r"[^a-z0-9.]+", "-", stated.lower()).strip("-.")
    if not name:
        raise ConfigError(f"source_license {stated!r}: give a licence id such as cc-by-4.0, or a short name "
                          f"in letters and digits")
    return "other", name


def user_source(options: Any, given: str | Path, *, description: str, citation: str = "") -> Source:
    """The card's :class:`Source` entry for the user's source ``given`` (a path or a Hub id), named
    and licensed as the ``source_*`` options say (``unknown`` licence when not stated)."""
    dataset_license(options)  # an unusable source_license fails here, with the option named
    return Source(name=str(getattr(options, "source_name", "") or "") or display_name(given),
                  license=str(getattr(options, "source_license", "") or "").strip() or UNKNOWN,
                  url=str(getattr(options, "source_url", "") or ""),
                  citation="\n".join(c for c in (str(getattr(options, "source_citation", "") or "").strip(), citation) if c),
                  description=description)


__all__ = ["SOURCE_CITATION_HELP", "SOURCE_LICENSE_HELP", "SOURCE_NAME_HELP", "SOURCE_URL_HELP", "UNKNOWN",
           "dataset_license", "display_name", "portable_value", "user_source"]

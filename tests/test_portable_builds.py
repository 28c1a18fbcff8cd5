"""Published datasets do not carry the machine that built them, and user sources carry their licence.

1. **Portable builds.** The checkout (``dsbuild/``, ``builders/``, ``cards/``) is copied to two
   folders of different depth, and the same builders are built from each with ``python -m dsbuild
   build`` (``PYTHONPATH`` = the copy, one shared ``DSBUILD_CACHE``: the first copy's builds run on
   a cold cache, the second's on a warm one). Every published file except ``provenance.json`` must
   be byte-identical across the copies, and none may contain a copy's folder: rows, rejects and
   cards name inputs by shipped-data-relative path or file name; only provenance.json keeps where
   they lay. Builds given a user file by *absolute* path (different in each copy) must leak it
   nowhere but provenance.json either, and give the same rows.
2. **User sources.** A builder given a custom source takes ``source_license`` / ``source_name`` /
   ``source_url`` / ``source_citation`` into its card; without ``source_license`` the card says
   ``unknown``, a value the Hub accepts, so ``validate`` passes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from dsbuild.cards import parse_front_matter
from dsbuild.config import resolve_options
from dsbuild.errors import ConfigError
from dsbuild.executor import build
from dsbuild.registry import builders
from dsbuild.validate import validate_dataset

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("dsbuild", "builders", "cards")

#: (builder, --set options): small, offline builds of every builder with shipped data (about 30 s per copy)
SHIPPED_BUILDS: list[tuple[str, list[str]]] = [
    ("europarl-ner", ["project=false"]),
    ("ner-invariance", ["max_examples=30"]),
    ("maltese", []),
    ("events", ["parallel=none"]),  # the en-eu text's card entries are checked in test_events_quality.py
    ("translate-train", ["max_examples=40", "extra_parallel=false"]),
]

SEED_PAIRS = [
    {"id": "p1", "language": "en", "premise": "A man is playing a guitar on a small stage.",
     "hypothesis": "A man is playing an instrument.", "label": "entailment"},
    {"id": "p2", "language": "en", "premise": "Two women are walking in the park with 3 dogs.",
     "hypothesis": "Two women are sleeping at home.", "label": "contradiction"},
    {"id": "p3", "language": "en", "premise": "A young boy is sleeping on the couch.",
     "hypothesis": "A boy is tired.", "label": "neutral"},
    {"id": "p4", "language": "en", "premise": "The old woman bought 12 apples at the market.",
     "hypothesis": "A woman bought fruit.", "label": "unknown-label"},  # a reject: its JSON must not leak either
]
SEEDS_CONLL = "Ana\tB-PER\nvisited\tO\nParis\tB-LOC\nin\tO\n2019\tO\n.\tO\n\nThe\tO\nUnited\tB-ORG\nNations\tI-ORG\nmet\tO\n.\tO\n\n"
CONLLU = "# sent_id = a\n1\tIl-\til-\tDET\tDEFART\t_\t2\tdet\t_\t_\n2\tkelb\tkelb\tNOUN\tNN\t_\t0\troot\t_\t_\n\n"


# ------------------------------------------------------------------------------- helpers
def _write_user_files(folder: Path) -> None:
    """The user's own input files (same bytes in every copy)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "seeds.jsonl").write_text("".join(json.dumps(p) + "\n" for p in SEED_PAIRS), encoding="utf-8")
    (folder / "ner-seeds.conll").write_text(SEEDS_CONLL, encoding="utf-8")


@dataclass
class Copy:
    """One copy of the checkout and what was built from it."""

    root: Path  # holds the packages, the user's files (data/) and the outputs
    out: Path  # shipped data, and user files by a path relative to the working folder
    out_user: Path  # user files by absolute path (so the options differ between copies)

    @property
    def data(self) -> Path:
        return self.root / "data"


def _make_copy(root: Path) -> Copy:
    for package in PACKAGES:
        shutil.copytree(REPO / package, root / package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    _write_user_files(root / "data")
    return Copy(root, root / "out", root / "out-user")


def _run(copy: Copy, name: str, out: Path, sets: list[str], env: dict[str, str]) -> None:
    """``python -m dsbuild build NAME`` from ``copy`` (its packages first on the path, run from its folder)."""
    cmd = [sys.executable, "-m", "dsbuild", "build", name, "--out", str(out)]
    for s in sets:
        cmd += ["--set", s]
    proc = subprocess.run(cmd, cwd=copy.root, env={**env, "PYTHONPATH": str(copy.root)},
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"{name} from {copy.root} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"


def _build_all(copy: Copy, env: dict[str, str], *, reverse: bool) -> None:
    """Every build of one copy. ``reverse``: the other copy runs them in the opposite order, so the
    two copies rarely build the same thing at the same moment (they share one cache)."""
    jobs: list[tuple[str, Path, list[str]]] = [(name, copy.out, sets) for name, sets in SHIPPED_BUILDS]
    # a user file by a relative path: the same options in both copies, so the same bytes are expected
    jobs.append(("nli-stress", copy.out, ["source=data/seeds.jsonl", "drop_unknown_labels=true",
                                          "operators=[distraction-premise,numerical]"]))
    # user files by absolute path: options differ between copies, rows must not
    jobs.append(("nli-stress", copy.out_user, [f"source={copy.data / 'seeds.jsonl'}", "drop_unknown_labels=true",
                                               "operators=[distraction-premise,numerical]"]))
    jobs.append(("ner-invariance", copy.out_user, [f"source_path={copy.data / 'ner-seeds.conll'}",
                                                   "operators=[swap-entities,typos]"]))
    for name, out, sets in reversed(jobs) if reverse else jobs:
        _run(copy, name, out, sets, env)


def _published(out: Path) -> dict[str, bytes]:
    """Every file of every built dataset under ``out`` (relative path -> bytes)."""
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def copies(tmp_path_factory: pytest.TempPathFactory) -> tuple[Copy, Copy]:
    """Two copies of the checkout at different depths, with the same builds run from each."""
    base = tmp_path_factory.mktemp("portable")
    a = _make_copy(base / "first" / "checkout")
    b = _make_copy(base / "second" / "somewhere" / "else" / "dsbuild-copy")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "DSBUILD_CACHE": str(base / "cache"), "TOKENIZERS_PARALLELISM": "false"}
    env.pop("PYTHONPATH", None)
    with ThreadPoolExecutor(2) as pool:  # the two copies side by side: one core each
        futures = [pool.submit(_build_all, a, env, reverse=False), pool.submit(_build_all, b, env, reverse=True)]
        for f in futures:
            f.result()
    return a, b


def _leaks(files: dict[str, bytes], *folders: Path) -> list[str]:
    """Files other than provenance.json naming any of ``folders``."""
    needles = [str(f).encode() for f in folders]
    return [rel for rel, data in files.items()
            if not rel.endswith("provenance.json") and any(n in data for n in needles)]


# ------------------------------------------------------------------------------- 1. portable builds
@pytest.mark.slow
def test_same_options_from_two_checkouts_give_identical_files(copies: tuple[Copy, Copy]) -> None:
    a, b = copies
    files_a, files_b = _published(a.out), _published(b.out)
    assert files_a.keys() == files_b.keys()
    built = {rel.split("/")[0] for rel in files_a}
    assert built == {name for name, _ in SHIPPED_BUILDS} | {"nli-stress"}
    different = [rel for rel in files_a if files_a[rel] != files_b[rel] and not rel.endswith("provenance.json")]
    assert different == [], f"published files differ between checkouts: {different}"
    assert _leaks(files_a, a.root) == [] and _leaks(files_b, b.root) == []


@pytest.mark.slow
def test_no_published_file_names_a_local_folder(copies: tuple[Copy, Copy]) -> None:
    a, b = copies
    files_a, files_b = _published(a.out_user), _published(b.out_user)
    assert _leaks(files_a, a.root) == [] and _leaks(files_b, b.root) == []
    # the rows (and rejects) do not depend on where the user's file lay: it is named by file name
    data_files = [rel for rel in files_a if rel.endswith(".parquet")]
    assert any("rejects.parquet" in rel for rel in data_files)
    assert [rel for rel in data_files if files_a[rel] != files_b.get(rel)] == []
    # provenance.json still says where the inputs were (for the person who built it)
    prov = json.loads(files_a["nli-stress/1.0.0/provenance.json"])
    seed = next(i for i in prov["inputs"] if i["role"] == "seed NLI pairs")
    assert (seed["path"], seed["name"], seed["local_path"]) == ("seeds.jsonl", "seeds.jsonl", str(a.data / "seeds.jsonl"))


@pytest.mark.slow
def test_cards_name_shipped_inputs_relative_to_the_package(copies: tuple[Copy, Copy]) -> None:
    a, _ = copies
    card = (a.out / "europarl-ner" / "2.0.0" / "README.md").read_text(encoding="utf-8")
    assert "| builders/data/europarl_ner/en-europarl.test.conll02 | en gold CoNLL |" in card
    prov = json.loads((a.out / "europarl-ner" / "2.0.0" / "provenance.json").read_text(encoding="utf-8"))
    paths = [i["path"] for i in prov["inputs"]]
    assert paths == sorted(paths) and all(p.startswith("builders/data/") for p in paths)


def test_card_options_show_paths_without_local_folders(tmp_path: Path) -> None:
    """Option values that are absolute paths: shipped data relative to the package, user files by name."""
    shipped = REPO / "builders" / "data" / "challenge" / "bilingual" / "en-es.tsv"
    user = tmp_path / "my-folder" / "pairs.tsv"
    user.parent.mkdir()
    shutil.copy(shipped, user)
    for given, shown in ((shipped, "builders/data/challenge/bilingual/en-es.tsv"), (user, "pairs.tsv")):
        cls = builders.get("bilingual-words")
        res = build(cls(resolve_options(cls.Options, {"pair_file": str(given)})), tmp_path / given.stem / "out")
        card = (res.path / "README.md").read_text(encoding="utf-8")
        assert f'| pair_file | `"{shown}"` |' in card and f"Pair file: `{shown}`" in card
        assert str(given.parent) not in card and str(REPO) not in card


# ------------------------------------------------------------------------------- 2. user sources
def _build(name: str, out: Path, **options: object) -> Path:
    cls = builders.get(name)
    return build(cls(resolve_options(cls.Options, options)), out).path


def _seed_file(folder: Path) -> Path:
    _write_user_files(folder)
    return folder / "seeds.jsonl"


def test_custom_source_with_licence_validates_and_card_names_it(tmp_path: Path) -> None:
    seeds = _seed_file(tmp_path / "user")
    path = _build("nli-stress", tmp_path / "out", source=str(seeds), drop_unknown_labels=True,
                  operators=["distraction-premise"], source_license="cc-by-4.0", source_name="My NLI seeds",
                  source_url="https://example.org/seeds", source_citation="@misc{seeds, title = {My NLI seeds}}")
    assert validate_dataset(path) == []
    card = (path / "README.md").read_text(encoding="utf-8")
    meta, body = parse_front_matter(card)
    assert meta["license"] == "cc-by-4.0" and "license_name" not in meta
    assert "- **My NLI seeds** (https://example.org/seeds)." in body and "Licence: cc-by-4.0." in body
    assert "- My NLI seeds: cc-by-4.0" in body and "@misc{seeds, title = {My NLI seeds}}" in body
    assert str(tmp_path) not in card


def test_custom_source_without_licence_is_unknown_and_validates(tmp_path: Path) -> None:
    seeds = _seed_file(tmp_path / "user")
    path = _build("nli-stress", tmp_path / "out", source=str(seeds), drop_unknown_labels=True,
                  operators=["distraction-premise"])
    assert validate_dataset(path) == []  # used to fail: license 'other' without license_name
    card = (path / "README.md").read_text(encoding="utf-8")
    meta, body = parse_front_matter(card)
    assert meta["license"] == "unknown"
    assert "- seeds.jsonl: unknown" in body and "The licence of this dataset is unknown" in body
    assert "--set source_license=ID" in body
    assert str(tmp_path) not in card


def test_maltese_custom_source_takes_a_licence_outside_the_hub_list(tmp_path: Path) -> None:
    src = tmp_path / "user" / "s.conllu"
    src.parent.mkdir()
    src.write_text(CONLLU, encoding="utf-8")
    path = _build("maltese", tmp_path / "out", source=str(src), pipelines=["raw"],
                  source_license="Korpus Malti Terms 1.0", source_name="Korpus sample")
    assert validate_dataset(path) == []
    meta, body = parse_front_matter((path / "README.md").read_text(encoding="utf-8"))
    assert (meta["license"], meta["license_name"]) == ("other", "korpus-malti-terms-1.0")
    assert "- Korpus sample: Korpus Malti Terms 1.0" in body
    unknown = _build("maltese", tmp_path / "out-unknown", source=str(src), pipelines=["raw"])
    assert validate_dataset(unknown) == []
    assert parse_front_matter((unknown / "README.md").read_text(encoding="utf-8"))[0]["license"] == "unknown"


@pytest.mark.parametrize("name", ["maltese", "nli-stress", "translate-train", "events", "ner-invariance",
                                  "europarl-ner", "bilingual-words"])
def test_every_builder_with_a_user_source_takes_the_source_options(name: str) -> None:
    fields = set(builders.get(name).Options.__dataclass_fields__)
    assert {"source_name", "source_license", "source_url", "source_citation"} <= fields


def test_source_license_other_without_a_name_is_refused(tmp_path: Path) -> None:
    seeds = _seed_file(tmp_path / "user")
    with pytest.raises(ConfigError, match="source_license 'other'"):
        _build("nli-stress", tmp_path / "out", source=str(seeds), source_license="other")

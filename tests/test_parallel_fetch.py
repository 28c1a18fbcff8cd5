"""``dsbuild parallel fetch`` and ``parallel_text`` against a local OPUS-shaped server (issue 15, part 4).

The server runs in a thread of the test process on 127.0.0.1 (a free port), answers the OPUS API
(``/opusapi/?source=..&target=..&preprocessing=moses&version=latest``) with JSON and serves Moses
zips; it is stopped (shutdown + join, bounded) when the module's tests end.
"""

from __future__ import annotations

import errno
import gzip
import io
import json
import os
import socket
import threading
import urllib.parse
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from dsbuild.cli import app
from dsbuild.parallel import SHIPPED_DIR, ParallelError, fetch, parallel_text
from dsbuild.parallel.overlap import OverlapFilter, remove_overlap
from dsbuild.parallel.store import read_manifest

runner = CliRunner()

EN = ["The cat sleeps .", "Rebels attacked a police station in Mosul on Tuesday .", "", "Good morning .",
      "one two three four five six seven eight nine ten eleven twelve", "We went home .", "It rains ."]
EU = ["Katua lo dago .", "Matxinoek polizia-etxe bat eraso zuten Mosulen asteartean .", "Kaixo .", "Egun on .",
      "bat bi hiru lau bost sei zazpi zortzi bederatzi hamar hamaika hamabi", "Etxera joan ginen .", "Euria ari du ."]
#: a sentence of the data being projected: the second pair contains it
EXCLUDED = "Rebels attacked a police station in Mosul on Tuesday"
LICENSE = "Creative Commons Attribution 2.0 France (CC BY 2.0 FR)\n\nhttps://creativecommons.org/licenses/by/2.0/fr/\n"


def moses_zip(corpus: str, en: list[str], eu: list[str], *, licence: str | None = LICENSE) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(f"{corpus}.en-eu.en", "".join(line + "\n" for line in en))
        zf.writestr(f"{corpus}.en-eu.eu", "".join(line + "\n" for line in eu))
        if licence:
            zf.writestr("LICENSE", licence)
        zf.writestr("README", f"{corpus} test corpus\n")
    return buf.getvalue()


class OpusServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), OpusHandler)
        self.requests: list[str] = []
        base = f"http://127.0.0.1:{self.server_address[1]}"
        self.api = f"{base}/opusapi/"
        self.files = {
            "/download/TestCorp.zip": moses_zip("TestCorp", EN, EU),
            "/download/Other.zip": moses_zip("Other", EN[:2], EU[:2], licence=None),
            "/download/Broken.zip": b"PK\x03\x04 this is not a zip archive at all",
            "/download/Uneven.zip": moses_zip("Uneven", EN, EU[:3]),
        }
        entry = {"source": "en", "target": "eu", "preprocessing": "moses", "documents": ""}
        self.corpora = [
            {**entry, "corpus": "TestCorp", "version": "v2024-01-01", "url": f"{base}/download/TestCorp.zip",
             "size": 1, "alignment_pairs": 7},
            {**entry, "corpus": "Other", "version": "v1", "url": f"{base}/download/Other.zip", "size": 1,
             "alignment_pairs": 2},
            {**entry, "corpus": "Broken", "version": "v1", "url": f"{base}/download/Broken.zip", "size": 1,
             "alignment_pairs": 3},
            {**entry, "corpus": "Uneven", "version": "v1", "url": f"{base}/download/Uneven.zip", "size": 1,
             "alignment_pairs": 5},
            # bigger than the default --max-download-mb: only taken when named
            {**entry, "corpus": "Huge", "version": "v9", "url": f"{base}/download/Huge.zip", "size": 900_000,
             "alignment_pairs": 9_000_000},
            # another preprocessing: never listed as Moses
            {**entry, "corpus": "TestCorp", "version": "v2024-01-01", "preprocessing": "xml",
             "url": f"{base}/download/TestCorp-xml.zip", "size": 1, "alignment_pairs": 7},
        ]


class OpusHandler(BaseHTTPRequestHandler):
    server: OpusServer

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    def do_GET(self) -> None:  # noqa: N802
        url = urllib.parse.urlsplit(self.path)
        self.server.requests.append(url.path)
        if url.path == "/opusapi/":
            q = dict(urllib.parse.parse_qsl(url.query))
            pair = {q.get("source"), q.get("target")}
            corpora = [c for c in self.server.corpora if {c["source"], c["target"]} == pair
                       and c["preprocessing"] == q.get("preprocessing", c["preprocessing"])
                       and c["corpus"] == q.get("corpus", c["corpus"])]
            self._send(200, json.dumps({"corpora": corpora}).encode(), "application/json")
        elif url.path in self.server.files:
            self._send(200, self.server.files[url.path], "application/zip")
        else:
            self._send(404, b"not found", "text/plain")

    def _send(self, code: int, body: bytes, ctype: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def opus() -> Iterator[OpusServer]:
    server = OpusServer()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
        assert not thread.is_alive()


def lines(path: Path) -> list[str]:
    return gzip.decompress(path.read_bytes()).decode("utf-8").splitlines()


def one_error_line(result: Any) -> str:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    out = [ln for ln in result.stderr.splitlines() if ln.strip()]
    errors = [ln for ln in out if ln.startswith("error: ")]
    assert len(errors) == 1 and errors[0] == out[-1], out
    return errors[0]


def test_fetch_filters_records_and_is_found_again(opus: OpusServer, tmp_path: Path) -> None:
    folder, manifest = fetch("en", "eu", corpus="TestCorp", exclude=[EXCLUDED], exclude_name="events.txt",
                             max_tokens=10, api=opus.api, root=tmp_path)
    assert folder == tmp_path / "en-eu" / "TestCorp-v2024-01-01"
    assert manifest.counts == {"downloaded": 7, "empty": 1, "overlap": 1, "too-long": 1, "kept": 4}
    assert lines(folder / "en-eu.en.gz") == ["The cat sleeps .", "Good morning .", "We went home .", "It rains ."]
    assert lines(folder / "en-eu.eu.gz") == ["Katua lo dago .", "Egun on .", "Etxera joan ginen .", "Euria ari du ."]
    assert (manifest.corpus, manifest.version, manifest.origin) == ("TestCorp", "v2024-01-01", "opus")
    assert manifest.licence == "Creative Commons Attribution 2.0 France (CC BY 2.0 FR)"
    assert manifest.exclude["sentences"] == 1 and manifest.exclude["name"] == "events.txt"
    assert (folder / "LICENSE").read_text() == LICENSE and manifest.readme == "README"
    assert read_manifest(folder) == manifest
    # found again, in either orientation; fetched text wins over the shipped en-eu text
    text = parallel_text("eu", "en", cache=tmp_path)
    assert text is not None and text.folder == folder and text.pairs == 4
    assert text.paths() == [(folder / "en-eu.eu.gz", folder / "en-eu.en.gz")]
    assert text.describe()["corpus"] == "TestCorp" and text.describe()["pairs_used"] == 4
    shipped = parallel_text("en", "eu", cache=tmp_path, prefer="shipped")
    assert shipped is not None and shipped.manifest.origin == "shipped" and shipped.folder == SHIPPED_DIR / "en-eu"
    assert parallel_text("en", "eu", cache=tmp_path, corpus="shipped").manifest.origin == "shipped"
    assert parallel_text("en", "de", cache=tmp_path) is None


def test_fetch_twice_same_bytes_one_download_and_max_pairs(opus: OpusServer, tmp_path: Path) -> None:
    opus.requests.clear()
    folder, _ = fetch("en", "eu", corpus="TestCorp", api=opus.api, root=tmp_path / "a")
    first = {p.name: p.read_bytes() for p in folder.iterdir()}
    folder2, _ = fetch("en", "eu", corpus="TestCorp", api=opus.api, root=tmp_path / "b")
    assert {p.name: p.read_bytes() for p in folder2.iterdir()} == first
    # again into the first cache with fewer pairs: the kept zip is reused, not downloaded again
    _, manifest = fetch("en", "eu", corpus="TestCorp", max_pairs=2, api=opus.api, root=tmp_path / "a")
    assert manifest.counts["kept"] == 2 and manifest.counts["over-max-pairs"] == 4
    assert lines(folder / "en-eu.en.gz") == EN[:2]
    assert opus.requests.count("/download/TestCorp.zip") == 2


def test_default_corpus_is_the_largest_small_enough_one(opus: OpusServer, tmp_path: Path) -> None:
    _, manifest = fetch("en", "eu", api=opus.api, root=tmp_path)
    assert manifest.corpus == "TestCorp"  # Huge has more pairs but is over the download limit
    _, other = fetch("eu", "en", corpus="other", api=opus.api, root=tmp_path)  # names match case-insensitively
    assert other.corpus == "Other" and other.licence.startswith("unknown: not stated in the download")
    # two fetched corpora: the one with most pairs is used, whatever the order of fetches
    assert parallel_text("en", "eu", cache=tmp_path).manifest.corpus == "TestCorp"
    assert parallel_text("en", "eu", cache=tmp_path, corpus="Other").manifest.corpus == "Other"


def test_cli_fetch_with_exclude_file_then_project_finds_it(opus: OpusServer, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    excl = tmp_path / "events.jsonl"
    excl.write_text(json.dumps({"id": "x", "tokens": EXCLUDED.split()}) + "\n")
    monkeypatch.setenv("DSBUILD_CACHE", str(tmp_path / "cache"))
    result = runner.invoke(app, ["parallel", "fetch", "en", "eu", "--corpus", "TestCorp", "--max-pairs", "3",
                                 "--exclude", str(excl), "--api", opus.api])
    assert result.exit_code == 0, result.output
    assert "TestCorp v2024-01-01 (opus, en-eu, 3 pairs" in result.stdout and "overlap" in result.stdout
    manifest = read_manifest(tmp_path / "cache" / "parallel" / "en-eu" / "TestCorp-v2024-01-01")
    assert manifest.counts["overlap"] == 1 and manifest.exclude["name"] == "events.jsonl"
    # the one way to find parallel text: dsbuild.project.parallel_text delegates to the store
    from dsbuild.project import parallel_text as aligner_text

    opts = aligner_text("en", "eu", tokenizer="whitespace")
    assert opts["extra_src"] == [["The", "cat", "sleeps", "."], ["Good", "morning", "."],
                                 "one two three four five six seven eight nine ten eleven twelve".split()]
    assert opts["extra_tgt"][0] == ["Katua", "lo", "dago", "."]
    assert parallel_text("en", "eu", corpus="shipped").pairs == 23_510
    shown = runner.invoke(app, ["parallel", "show", "en", "eu"])
    assert shown.exit_code == 0 and "used: TestCorp" in shown.stdout and "shipped" in shown.stdout


def test_unknown_pair_and_corpus_are_one_line(opus: OpusServer, tmp_path: Path) -> None:
    line = one_error_line(runner.invoke(app, ["parallel", "fetch", "en", "xx", "--api", opus.api,
                                              "--cache-dir", str(tmp_path)]))
    assert "no Moses-format corpus for en-xx" in line and "language codes" in line
    line = one_error_line(runner.invoke(app, ["parallel", "fetch", "en", "eu", "--corpus", "Nope", "--api", opus.api,
                                              "--cache-dir", str(tmp_path)]))
    assert "no Moses-format corpus 'Nope' for en-eu" in line and "TestCorp" in line and "--corpus" in line
    line = one_error_line(runner.invoke(app, ["parallel", "fetch", "en", "e u", "--api", opus.api]))
    assert "'e u' is not a language code" in line
    line = one_error_line(runner.invoke(app, ["parallel", "fetch", "en", "en", "--api", opus.api]))
    assert "two different languages" in line
    assert not (tmp_path / "en-xx").exists()


def test_unreachable_server_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    api = f"http://127.0.0.1:{port}/opusapi/"
    line = one_error_line(runner.invoke(app, ["parallel", "fetch", "en", "eu", "--api", api,
                                              "--cache-dir", str(tmp_path)]))
    assert "cannot reach the server" in line and "--api" in line
    with pytest.raises(ParallelError, match="cannot reach the server"):
        fetch("en", "eu", api=api, root=tmp_path)
    line = one_error_line(runner.invoke(app, ["parallel", "corpora", "en", "eu", "--api", api]))
    assert "cannot reach the server" in line


def test_corrupt_or_uneven_archive_is_one_line_and_not_kept(opus: OpusServer, tmp_path: Path) -> None:
    line = one_error_line(runner.invoke(app, ["parallel", "fetch", "en", "eu", "--corpus", "Broken", "--api", opus.api,
                                              "--cache-dir", str(tmp_path)]))
    assert "not a valid zip archive" in line and "fetch again" in line
    assert not (tmp_path / "en-eu" / "Broken-v1").exists()  # no half store, no bad zip reused
    with pytest.raises(ParallelError, match="different line counts"):
        fetch("en", "eu", corpus="Uneven", api=opus.api, root=tmp_path)
    assert not (tmp_path / "en-eu" / "Uneven-v1").exists()
    assert parallel_text("en", "eu", cache=tmp_path).manifest.origin == "shipped"


def test_read_only_cache_is_one_line(opus: OpusServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "ro"
    cache.mkdir()
    # tests run as root, where chmod stops nothing: the first write under the cache fails as a
    # read-only filesystem would make it fail
    real_mkdir = Path.mkdir

    def mkdir(self: Path, *args: Any, **kwargs: Any) -> None:
        if str(self).startswith(str(cache)) and self != cache:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(self))
        real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", mkdir)
    line = one_error_line(runner.invoke(app, ["parallel", "fetch", "en", "eu", "--corpus", "TestCorp",
                                              "--api", opus.api, "--cache-dir", str(cache)]))
    assert str(cache) in line and "Read-only file system (errno 30)" in line and "--cache-dir" in line
    with pytest.raises(ParallelError, match="cannot write the parallel-text cache"):
        fetch("en", "eu", corpus="TestCorp", api=opus.api, root=cache)


def test_overlap_rule() -> None:
    flt = OverlapFilter(["Rebels attacked a police station in Mosul .", "Hello ."])
    assert flt.overlaps("REBELS attacked a police   station in Mosul.")  # case and whitespace ignored
    assert flt.overlaps("Yesterday rebels attacked a police station in Mosul . Two died .")  # contains a long one
    assert flt.overlaps("hello.") and not flt.overlaps("Hello . How are you ?")  # short ones: equality only
    assert not flt.overlaps("Rebels attacked a police station in Erbil .")
    kept, removed = remove_overlap([("Hello .", "Kaixo ."), ("Bye .", "Agur ."), ("x", "hello .")], ["Hello ."])
    assert kept == [("Bye .", "Agur .")] and removed == 2


@pytest.mark.parametrize("pair", ["en-es", "en-eu", "en-fr"])
def test_shipped_text_matches_its_manifest(pair: str) -> None:
    folder = SHIPPED_DIR / pair
    manifest = read_manifest(folder)
    assert manifest.pair == pair and manifest.origin == "shipped" and manifest.licence
    total = 0
    for s in manifest.sets:
        counts = {lang: len(lines(folder / f)) for lang, f in s.files.items()}
        assert set(counts) == set(pair.split("-")) and set(counts.values()) == {s.pairs}, (s.name, counts)
        total += s.pairs
        if manifest.sources:  # every pair is attributed to a listed source
            assert sum(src["pairs"] for src in manifest.sources if src["set"] == s.name) == s.pairs
    assert manifest.counts["kept"] == total
    readme = (folder / manifest.readme).resolve()
    assert readme.is_file() and pair in readme.read_text()

"""The test Hub server's own protocol details, checked with plain HTTP (no HF client involved).

The end-to-end tests in test_hub.py drive it with huggingface_hub and datasets; these pin the
headers and status codes those clients rely on, so a server regression shows up by name.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
from urllib.parse import urlsplit

import pytest

from tests.hubserver import Blob, LocalHub, git_blob_oid
from tests.plugins.hub import TEST_TOKEN

REPO = "test-user/protocol"
DATA = bytes(range(256)) * 40  # binary: goes through LFS


def request(hub: LocalHub, method: str, path: str, body: bytes | None = None,
            headers: dict[str, str] | None = None, host: str = "127.0.0.1") -> http.client.HTTPResponse:
    port = urlsplit(hub.endpoint).port
    conn = http.client.HTTPConnection(host, port, timeout=10)
    conn.request(method, path, body=body, headers=headers or {})
    response = conn.getresponse()
    response.data = response.read()  # type: ignore[attr-defined]
    conn.close()
    return response


@pytest.fixture
def seeded(local_hub: LocalHub) -> LocalHub:
    state = local_hub.state
    with state.lock:
        repo = state.repo(REPO) or state.create_repo("dataset", REPO, private=False)
        sha256 = hashlib.sha256(DATA).hexdigest()
        state.lfs[sha256] = DATA
        repo.lfs_oids.add(sha256)
        files = {**repo.commits[repo.branches["main"]].files, "notes.txt": Blob(b"hello\n"),
                 "cfg/train-00000-of-00001.parquet": Blob(DATA, lfs_sha256=sha256)}
        commit = state.new_commit(repo, repo.branches["main"], files, "seed", "")
        repo.branches["main"] = commit.sha
    return local_hub


def test_resolve_regular_file_headers(seeded: LocalHub) -> None:
    head = request(seeded, "HEAD", f"/datasets/{REPO}/resolve/main/notes.txt")
    assert head.status == 200
    assert head.getheader("ETag") == '"' + git_blob_oid(b"hello\n") + '"'
    assert head.getheader("X-Repo-Commit") == seeded.state.repo(REPO).branches["main"]
    assert head.getheader("Content-Length") == "6" and head.data == b""
    assert request(seeded, "GET", f"/datasets/{REPO}/resolve/main/notes.txt").data == b"hello\n"


def test_resolve_lfs_file_redirects_to_the_cdn_host_with_linked_headers(seeded: LocalHub) -> None:
    head = request(seeded, "HEAD", f"/datasets/{REPO}/resolve/main/cfg/train-00000-of-00001.parquet")
    assert head.status == 302
    sha256 = hashlib.sha256(DATA).hexdigest()
    assert head.getheader("X-Linked-Etag") == f'"{sha256}"'
    assert head.getheader("X-Linked-Size") == str(len(DATA))
    location = urlsplit(head.getheader("Location"))
    assert location.hostname == "localhost" and location.hostname != urlsplit(seeded.endpoint).hostname
    ranged = request(seeded, "GET", location.path, headers={"Range": "bytes=10-19"}, host="localhost")
    assert ranged.status == 206 and ranged.data == DATA[10:20]
    assert ranged.getheader("Content-Range") == f"bytes 10-19/{len(DATA)}"
    assert request(seeded, "GET", location.path).data == DATA


def test_errors_carry_the_codes_the_client_maps(seeded: LocalHub) -> None:
    missing_repo = request(seeded, "GET", "/api/datasets/test-user/nope")
    assert missing_repo.status == 404 and missing_repo.getheader("X-Error-Code") == "RepoNotFound"
    missing_rev = request(seeded, "GET", f"/api/datasets/{REPO}/revision/nope")
    assert missing_rev.status == 404 and missing_rev.getheader("X-Error-Code") == "RevisionNotFound"
    missing_file = request(seeded, "HEAD", f"/datasets/{REPO}/resolve/main/nope.txt")
    assert missing_file.status == 404 and missing_file.getheader("X-Error-Code") == "EntryNotFound"
    no_auth = request(seeded, "POST", "/api/repos/create", json.dumps({"name": "x", "type": "dataset"}).encode())
    assert no_auth.status == 401
    malformed = request(seeded, "POST", "/api/repos/create", b"{not json",
                        {"Authorization": f"Bearer {TEST_TOKEN}", "Content-Type": "application/json"})
    assert malformed.status == 400 and "malformed JSON" in malformed.getheader("X-Error-Message")


def test_commit_checks_parent_and_lfs_objects(seeded: LocalHub) -> None:
    auth = {"Authorization": f"Bearer {TEST_TOKEN}", "Content-Type": "application/x-ndjson"}

    def commit(*lines: dict) -> http.client.HTTPResponse:
        body = b"".join(json.dumps(line).encode() + b"\n" for line in lines)
        return request(seeded, "POST", f"/api/datasets/{REPO}/commit/main", body, auth)

    stale = commit({"key": "header", "value": {"summary": "x", "parentCommit": "0" * 40}})
    assert stale.status == 412
    unknown_lfs = commit({"key": "header", "value": {"summary": "x"}},
                         {"key": "lfsFile", "value": {"path": "a.parquet", "algo": "sha256", "oid": "f" * 64, "size": 1}})
    assert unknown_lfs.status == 400
    head = seeded.state.repo(REPO).branches["main"]
    ok = commit({"key": "header", "value": {"summary": "edit", "parentCommit": head}},
                {"key": "file", "value": {"path": "notes.txt", "encoding": "base64",
                                          "content": base64.b64encode(b"bye\n").decode()}},
                {"key": "deletedFile", "value": {"path": "cfg/train-00000-of-00001.parquet"}})
    assert ok.status == 200
    new = json.loads(ok.data)["commitOid"]
    files = seeded.state.repo(REPO).commits[new].files
    assert files["notes.txt"].content == b"bye\n" and "cfg/train-00000-of-00001.parquet" not in files
    tree = json.loads(request(seeded, "GET", f"/api/datasets/{REPO}/tree/{new}?recursive=true").data)
    assert [entry["path"] for entry in tree] == [".gitattributes", "notes.txt"]

"""A small in-memory Hugging Face Hub for tests: enough of the protocol for push, tag and load.

It implements the endpoints that huggingface_hub 2.4 and datasets 5.2 call (read from the
installed client code) when ``Dataset.push_to_hub``, ``HfApi.create_commit / create_tag /
create_branch / list_repo_refs`` and ``datasets.load_dataset(repo, revision=...)`` run against
``HF_ENDPOINT=http://127.0.0.1:PORT`` with ``HF_HUB_DISABLE_XET=1``:

- ``POST /api/repos/create``, ``GET /api/{type}s/{repo}[/revision/{rev}]``
- ``POST /api/{type}s/{repo}/preupload/{rev}`` (upload mode per file: LFS or regular)
- ``POST /{prefix}{repo}.git/info/lfs/objects/batch`` + ``PUT /_lfs/{oid}`` (basic transfer,
  sha256 and size checked) + ``POST /_lfs/{oid}/verify``
- ``POST /api/{type}s/{repo}/commit/{rev}`` (NDJSON: header, base64 files, LFS pointers,
  deleted files and folders; ``parentCommit`` checked; ``?create_pr=1`` opens ``refs/pr/N``)
- ``POST|DELETE /api/{type}s/{repo}/tag/...``, ``POST|DELETE /api/{type}s/{repo}/branch/...``,
  ``GET /api/{type}s/{repo}/refs``, ``GET /api/{type}s/{repo}/commits/{rev}``
- ``GET /api/{type}s/{repo}/tree/{rev}[/{path}]``, ``POST /api/{type}s/{repo}/paths-info/{rev}``
- ``HEAD|GET /{prefix}{repo}/resolve/{rev}/{path}`` with ETag, X-Repo-Commit, Content-Length,
  Range requests; LFS files answer 302 with X-Linked-Etag/X-Linked-Size and a Location on another
  host name for loopback (``localhost``, standing in for the CDN), served by ``GET /_lfs/{oid}/{size}``
- ``POST /api/validate-yaml`` (parses the card's YAML front matter), ``GET /api/whoami-v2``

Commits are content-addressed (sha1 of parent, tree and message), so a commit sha identifies an
exact file set. Faults are injected per endpoint with :meth:`HubState.fail` (or, from a client
process, ``POST /_control/faults``). Only loopback is
served; every loop is bounded by the request size or the commit history length.

Run standalone (prints the endpoint, serves until killed)::

    python -m tests.hubserver --token test-token
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import re
import threading
import time
import traceback
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

LFS_SUFFIXES = (".parquet", ".arrow", ".bin", ".safetensors", ".pt", ".zip", ".gz", ".zst", ".npy", ".h5")
REGULAR_MAX_BYTES = 10 * 1024 * 1024
MAX_BODY_BYTES = 512 * 1024 * 1024
REPO_TYPES = {"datasets": "dataset", "models": "model", "spaces": "space"}
URL_PREFIX = {"dataset": "datasets/", "model": "", "space": "spaces/"}
USER = "test-user"


def git_blob_oid(content: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


def lfs_pointer(sha256: str, size: int) -> bytes:
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


@dataclass(frozen=True)
class Blob:
    """One file in a commit. LFS files keep their sha256; content is stored either way."""

    content: bytes
    lfs_sha256: str | None = None

    @property
    def size(self) -> int:
        return len(self.content)

    @property
    def oid(self) -> str:
        """The git oid the Hub reports: the blob itself, or the LFS pointer file for LFS files."""
        if self.lfs_sha256 is not None:
            return git_blob_oid(lfs_pointer(self.lfs_sha256, self.size))
        return git_blob_oid(self.content)

    @property
    def etag(self) -> str:
        return self.lfs_sha256 if self.lfs_sha256 is not None else git_blob_oid(self.content)


@dataclass
class Commit:
    sha: str
    parent: str | None
    files: dict[str, Blob]
    title: str
    message: str
    date: str


@dataclass
class Repo:
    repo_type: str
    repo_id: str
    private: bool
    commits: dict[str, Commit] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    prs: dict[int, str] = field(default_factory=dict)
    lfs_oids: set[str] = field(default_factory=set)  # LFS objects uploaded to this repo

    def resolve(self, rev: str) -> str | None:
        """Commit sha for a branch, tag, ``refs/pr/N``, ``refs/heads/X``, ``refs/tags/X`` or sha."""
        if rev in self.branches:
            return self.branches[rev]
        if rev in self.tags:
            return self.tags[rev]
        if rev.startswith("refs/heads/"):
            return self.branches.get(rev[len("refs/heads/"):])
        if rev.startswith("refs/tags/"):
            return self.tags.get(rev[len("refs/tags/"):])
        match = re.fullmatch(r"refs/pr/(\d+)", rev)
        if match:
            return self.prs.get(int(match[1]))
        if re.fullmatch(r"[0-9a-f]{7,40}", rev):
            hits = [sha for sha in self.commits if sha.startswith(rev)]
            return hits[0] if len(hits) == 1 else None
        return None

    def writable_ref(self, rev: str) -> tuple[str, Any] | None:
        """('branch', name) or ('pr', number) for a revision a commit may be pushed to."""
        if rev.startswith("refs/heads/"):
            rev = rev[len("refs/heads/"):]
        if rev in self.branches:
            return "branch", rev
        match = re.fullmatch(r"refs/pr/(\d+)", rev)
        if match and int(match[1]) in self.prs:
            return "pr", int(match[1])
        return None

    def history(self, sha: str) -> list[Commit]:
        """Commits from ``sha`` back to the first one (bounded by the number of commits)."""
        out: list[Commit] = []
        current: str | None = sha
        for _ in range(len(self.commits)):
            if current is None:
                break
            commit = self.commits[current]
            out.append(commit)
            current = commit.parent
        return out


class HttpError(Exception):
    def __init__(self, status: int, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.code = status, message, code


class HubState:
    """Repositories, LFS objects, accepted tokens, injected faults and a log of requests."""

    def __init__(self, tokens: set[str] | None = None) -> None:
        self.lock = threading.RLock()
        self.repos: dict[tuple[str, str], Repo] = {}
        self.lfs: dict[str, bytes] = {}
        self.tokens = set(tokens or {"test-token"})
        self.faults: dict[str, int] = {}
        #: host name LFS downloads are redirected to (another name for loopback, like a CDN); None serves
        #: LFS content directly from /resolve/
        self.cdn_host: str | None = "localhost"
        self.requests: list[tuple[str, str]] = []
        #: tracebacks of unexpected exceptions in handlers (server bugs, not injected faults)
        self.server_errors: list[str] = []
        self._clock = 0

    # -- test controls -------------------------------------------------------------------------
    def fail(self, endpoint: str, status: int = 500) -> None:
        """Make every request to ``endpoint`` (e.g. 'commit', 'tag', 'preupload') answer ``status``."""
        with self.lock:
            self.faults[endpoint] = status

    def clear_faults(self) -> None:
        with self.lock:
            self.faults.clear()

    def repo(self, repo_id: str, repo_type: str = "dataset") -> Repo | None:
        with self.lock:
            return self.repos.get((repo_type, repo_id))

    # -- model ---------------------------------------------------------------------------------
    def _now(self) -> str:
        self._clock += 1  # distinct, increasing timestamps even within one second
        moment = dt.datetime(2026, 1, 1) + dt.timedelta(seconds=self._clock)
        return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")

    def new_commit(self, repo: Repo, parent: str | None, files: dict[str, Blob], title: str, message: str) -> Commit:
        digest = hashlib.sha1()
        digest.update(json.dumps([parent, title, message, self._clock]).encode())
        for path in sorted(files):
            digest.update(f"{path}\0{files[path].oid}\n".encode())
        commit = Commit(digest.hexdigest(), parent, dict(files), title, message, self._now())
        repo.commits[commit.sha] = commit
        return commit

    def create_repo(self, repo_type: str, repo_id: str, private: bool) -> Repo:
        repo = Repo(repo_type, repo_id, private)
        attributes = b"*.parquet filter=lfs diff=lfs merge=lfs -text\n*.arrow filter=lfs diff=lfs merge=lfs -text\n"
        first = self.new_commit(repo, None, {".gitattributes": Blob(attributes)}, "initial commit", "")
        repo.branches["main"] = first.sha
        self.repos[(repo_type, repo_id)] = repo
        return repo


class HubHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in separate writes: avoid 40 ms delayed ACKs
    server: HubHTTPServer
    timeout = 60  # a stuck client cannot hold a handler thread forever

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass

    # -- plumbing ------------------------------------------------------------------------------
    @property
    def state(self) -> HubState:
        return self.server.state

    @property
    def base(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks, total = [], 0
            while True:  # bounded: each chunk adds to total, capped below
                size_line = self.rfile.readline(1024)
                if not size_line:
                    raise HttpError(400, "truncated chunked body")
                size = int(size_line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline(1024)
                    break
                total += size
                if total > MAX_BODY_BYTES:
                    raise HttpError(413, "body too large")
                chunks.append(self.rfile.read(size))
                self.rfile.readline(1024)
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            raise HttpError(413, "body too large")
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None,
              content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))  # HEAD too: the size of what GET would send
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)

    def _json(self, obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(obj).encode(), headers)

    def _error(self, err: HttpError) -> None:
        headers = {"X-Error-Message": err.message}
        if err.code:
            headers["X-Error-Code"] = err.code
        self._json({"error": err.message}, err.status, headers)

    def _token(self) -> str | None:
        auth = self.headers.get("Authorization", "")
        return auth[len("Bearer "):] if auth.startswith("Bearer ") else None

    def _require_write(self) -> None:
        token = self._token()
        if token is None:
            raise HttpError(401, "You must be authenticated to write to the Hub")
        if token not in self.state.tokens:
            raise HttpError(401, "Invalid credentials in Authorization header")

    def _fault(self, endpoint: str) -> None:
        status = self.state.faults.get(endpoint)
        if status is not None:
            raise HttpError(status, f"injected failure on {endpoint}")

    def _repo(self, repo_type: str, repo_id: str) -> Repo:
        repo = self.state.repos.get((repo_type, repo_id))
        if repo is None or (repo.private and self._token() not in self.state.tokens):
            raise HttpError(404, f"Repository not found: {repo_id}", "RepoNotFound")
        return repo

    def _commit_at(self, repo: Repo, rev: str) -> Commit:
        sha = repo.resolve(rev)
        if sha is None:
            raise HttpError(404, f"Invalid rev id: {rev}", "RevisionNotFound")
        return repo.commits[sha]

    def _dispatch(self) -> None:
        url = urlsplit(self.path)
        self.query = parse_qs(url.query)
        path = url.path
        with self.state.lock:
            self.state.requests.append((self.command, path))
        try:
            body = self._read_body() if self.command in ("POST", "PUT", "DELETE") else b""
            for method, pattern, handler in ROUTES:
                if method != self.command and not (method == "GET" and self.command == "HEAD"):
                    continue
                match = re.fullmatch(pattern, path)
                if match:
                    with self.state.lock:
                        handler(self, body, **{k: unquote(v) for k, v in match.groupdict().items() if v is not None})
                    return
            raise HttpError(404, f"no route for {self.command} {path}")
        except HttpError as err:
            self._error(err)
        except json.JSONDecodeError as err:
            self._error(HttpError(400, f"malformed JSON body: {err}"))
        except Exception as err:  # a bug in this server: answer 500 and keep it for the tests to fail on
            with self.state.lock:
                self.state.server_errors.append(f"{self.command} {path}: {traceback.format_exc()}")
            self._error(HttpError(500, f"test hub server bug: {err!r}"))

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = _dispatch

    # -- endpoints -----------------------------------------------------------------------------
    def control_faults(self, body: bytes) -> None:
        """Test control from a client process: ``{"endpoint": "commit", "status": 500}``, or ``{}`` to clear."""
        payload = json.loads(body or b"{}")
        if payload.get("endpoint"):
            self.state.faults[payload["endpoint"]] = int(payload.get("status", 500))
        else:
            self.state.faults.clear()
        commits = sum(1 for method, path in self.state.requests if method == "POST" and "/commit/" in path)
        self._json({"faults": self.state.faults, "commit_requests": commits})

    def whoami(self, body: bytes) -> None:
        self._require_write()
        self._json({"type": "user", "name": USER, "fullname": "Test User", "orgs": [],
                    "auth": {"type": "access_token", "accessToken": {"role": "write"}}})

    def validate_yaml(self, body: bytes) -> None:
        content = json.loads(body or b"{}").get("content", "")
        match = re.match(r"^---\s*\n(.*?)\n---\s*$", content, re.S | re.M)
        errors = []
        if match:
            try:
                meta = yaml.safe_load(match[1])
                if meta is not None and not isinstance(meta, dict):
                    errors.append({"message": "YAML metadata must be a mapping"})
            except yaml.YAMLError as err:
                errors.append({"message": f"YAML does not parse: {err}"})
        if errors:
            self._json({"errors": errors, "warnings": []}, 400)
        else:
            self._json({"errors": [], "warnings": []})

    def create_repo(self, body: bytes) -> None:
        self._require_write()
        self._fault("create_repo")
        payload = json.loads(body or b"{}")
        repo_type = payload.get("type") or "model"
        repo_id = f"{payload.get('organization') or USER}/{payload['name']}"
        url = f"{self.base}/{URL_PREFIX[repo_type]}{repo_id}"
        if (repo_type, repo_id) in self.state.repos:
            self._json({"error": "You already created this repo", "url": url}, 409)
            return
        self.state.create_repo(repo_type, repo_id, payload.get("visibility") == "private" or bool(payload.get("private")))
        self._json({"url": url, "name": repo_id})

    def repo_info(self, body: bytes, rtype: str, repo_id: str, rev: str | None = None) -> None:
        repo = self._repo(REPO_TYPES[rtype], repo_id)
        commit = self._commit_at(repo, rev or "main")
        files = commit.files
        card = _card_data(files.get("README.md"))
        self._json({
            "_id": hashlib.sha1(repo_id.encode()).hexdigest()[:24], "id": repo_id, "author": repo_id.split("/")[0],
            "sha": commit.sha, "private": repo.private, "gated": False, "disabled": False, "lastModified": commit.date,
            "createdAt": repo.history(commit.sha)[-1].date, "downloads": 0, "likes": 0, "tags": [],
            "cardData": card, "siblings": [{"rfilename": p} for p in sorted(files)],
        })

    def preupload(self, body: bytes, rtype: str, repo_id: str, rev: str) -> None:
        self._require_write()
        self._fault("preupload")
        repo = self._repo(REPO_TYPES[rtype], repo_id)
        create_pr = self.query.get("create_pr", ["0"])[0] in ("1", "true", "True")
        sha = repo.resolve(rev)
        if sha is None and not create_pr:
            raise HttpError(404, f"Invalid rev id: {rev}", "RevisionNotFound")
        existing = repo.commits[sha].files if sha else {}
        out = []
        for item in json.loads(body)["files"]:
            sample = base64.b64decode(item.get("sample", ""))
            lfs = item["path"].endswith(LFS_SUFFIXES) or b"\0" in sample or item.get("size", 0) > REGULAR_MAX_BYTES
            old = existing.get(item["path"])
            oid = None
            if old is not None:
                oid = old.lfs_sha256 if lfs else git_blob_oid(old.content)
            out.append({"path": item["path"], "uploadMode": "lfs" if lfs else "regular", "shouldIgnore": False, "oid": oid})
        self._json({"files": out, "commitOid": sha})

    def lfs_batch(self, body: bytes, prefix: str | None, repo_id: str) -> None:
        self._require_write()
        self._fault("lfs_batch")
        repo = self._repo(REPO_TYPES.get((prefix or "").rstrip("/"), "model"), repo_id)
        payload = json.loads(body)
        if payload.get("operation") != "upload":
            raise HttpError(400, "only the upload operation is supported")
        objects = []
        for obj in payload["objects"]:
            entry: dict[str, Any] = {"oid": obj["oid"], "size": obj["size"], "authenticated": True}
            if obj["oid"] not in repo.lfs_oids:  # LFS objects belong to a repo, as on the Hub
                href = f"{self.base}/_lfs/{obj['oid']}/{obj['size']}"
                where = f"?repo={URL_PREFIX[repo.repo_type]}{repo.repo_id}"
                entry["actions"] = {"upload": {"href": href + where, "header": {}},
                                    "verify": {"href": f"{href}/verify{where}", "header": {}}}
            objects.append(entry)
        self._send(200, json.dumps({"transfer": "basic", "objects": objects, "hash_algo": "sha256"}).encode(),
                   content_type="application/vnd.git-lfs+json")

    def _lfs_repo(self) -> Repo:
        """The repo an upload URL from lfs_batch is for (``?repo=datasets/ns/name``)."""
        where = self.query.get("repo", [""])[0]
        prefix, repo_id = where.split("/", 1) if where.count("/") == 2 else ("", where)  # models have no prefix
        repo = self.state.repos.get((REPO_TYPES.get(prefix, "model"), repo_id))
        if repo is None:
            raise HttpError(404, f"upload URL names no known repo: {where!r}")
        return repo

    def lfs_upload(self, body: bytes, oid: str, size: str) -> None:
        self._fault("lfs_upload")
        repo = self._lfs_repo()
        if hashlib.sha256(body).hexdigest() != oid or len(body) != int(size):
            raise HttpError(400, f"uploaded content does not match oid {oid} / size {size}")
        self.state.lfs[oid] = body
        repo.lfs_oids.add(oid)
        self._send(200, b"", content_type="text/plain")

    def lfs_verify(self, body: bytes, oid: str, size: str) -> None:
        if oid not in self._lfs_repo().lfs_oids or len(self.state.lfs[oid]) != int(size):
            raise HttpError(404, f"LFS object {oid} not uploaded")
        self._json({"success": True})

    def commit(self, body: bytes, rtype: str, repo_id: str, rev: str) -> None:
        self._require_write()
        self._fault("commit")
        repo = self._repo(REPO_TYPES[rtype], repo_id)
        create_pr = self.query.get("create_pr", ["0"])[0] in ("1", "true", "True")
        lines = [json.loads(line) for line in body.decode().splitlines() if line.strip()]
        if not lines or lines[0].get("key") != "header":
            raise HttpError(400, "commit payload must start with a header line")
        header = lines[0]["value"]
        parent_commit = header.get("parentCommit")
        if create_pr:  # a new pull request starts from parentCommit, or the head of rev
            base = repo.resolve(parent_commit or rev)
            if base is None:
                raise HttpError(404, f"Invalid rev id: {parent_commit or rev}", "RevisionNotFound")
            target = None
        else:
            target = repo.writable_ref(rev)
            if target is None:
                raise HttpError(404, f"Invalid rev id: {rev} is not a branch or an open pull request", "RevisionNotFound")
            base = repo.branches[target[1]] if target[0] == "branch" else repo.prs[target[1]]
            if parent_commit is not None and not base.startswith(parent_commit):
                raise HttpError(412, f"A commit has happened since; parent commit {parent_commit} is not the head of {rev}")
        files = dict(repo.commits[base].files)
        for line in lines[1:]:
            key, value = line["key"], line["value"]
            path = value["path"]
            if key == "file":
                if value.get("encoding", "base64") != "base64":
                    raise HttpError(400, f"unsupported encoding for {path}")
                files[path] = Blob(base64.b64decode(value["content"]))
            elif key == "lfsFile":
                content = self.state.lfs.get(value["oid"]) if value["oid"] in repo.lfs_oids else None
                if content is None:
                    raise HttpError(400, f"LFS object {value['oid']} for {path} was never uploaded")
                files[path] = Blob(content, lfs_sha256=value["oid"])
            elif key == "deletedFile":
                if path not in files:
                    raise HttpError(404, f"A file with this name doesn't exist: {path}", "EntryNotFound")
                del files[path]
            elif key == "deletedFolder":
                prefix = path.rstrip("/") + "/"
                for name in [p for p in files if p.startswith(prefix)]:
                    del files[name]
            else:
                raise HttpError(400, f"unknown commit operation {key!r}")
        commit = self.state.new_commit(repo, base, files, header.get("summary") or "commit", header.get("description", ""))
        prefix = URL_PREFIX[repo.repo_type]
        out: dict[str, Any] = {"success": True, "commitOid": commit.sha,
                               "commitUrl": f"{self.base}/{prefix}{repo_id}/commit/{commit.sha}"}
        if create_pr:
            number = max([0, *repo.prs]) + 1
            repo.prs[number] = commit.sha
            out["pullRequestUrl"] = f"{self.base}/{prefix}{repo_id}/discussions/{number}"
        elif target[0] == "branch":
            repo.branches[target[1]] = commit.sha
        else:
            repo.prs[target[1]] = commit.sha
        self._json(out)

    def create_tag(self, body: bytes, rtype: str, repo_id: str, rev: str) -> None:
        self._require_write()
        self._fault("tag")
        repo = self._repo(REPO_TYPES[rtype], repo_id)
        self._fault("create_tag")
        tag = json.loads(body)["tag"]
        commit = self._commit_at(repo, rev)
        if tag in repo.tags:
            raise HttpError(409, f"Tag {tag} already exists")
        repo.tags[tag] = commit.sha
        self._json({"success": True})

    def delete_tag(self, body: bytes, rtype: str, repo_id: str, rev: str) -> None:
        self._require_write()
        self._fault("tag")
        repo = self._repo(REPO_TYPES[rtype], repo_id)
        if repo.tags.pop(rev, None) is None:
            raise HttpError(404, f"Tag {rev} not found", "RevisionNotFound")
        self._json({"success": True})

    def create_branch(self, body: bytes, rtype: str, repo_id: str, rev: str) -> None:
        self._require_write()
        self._fault("branch")
        repo = self._repo(REPO_TYPES[rtype], repo_id)
        start = json.loads(body or b"{}").get("startingPoint") or "main"
        commit = self._commit_at(repo, start)
        if rev in repo.branches:
            raise HttpError(409, f"Branch {rev} already exists")
        repo.branches[rev] = commit.sha
        self._json({"success": True})

    def delete_branch(self, body: bytes, rtype: str, repo_id: str, rev: str) -> None:
        self._require_write()
        repo = self._repo(REPO_TYPES[rtype], repo_id)
        if rev == "main" or repo.branches.pop(rev, None) is None:
            raise HttpError(404 if rev != "main" else 403, f"cannot delete branch {rev}")
        self._json({"success": True})

    def refs(self, body: bytes, rtype: str, repo_id: str) -> None:
        repo = self._repo(REPO_TYPES[rtype], repo_id)
        out: dict[str, Any] = {
            "branches": [{"name": n, "ref": f"refs/heads/{n}", "targetCommit": s} for n, s in sorted(repo.branches.items())],
            "tags": [{"name": n, "ref": f"refs/tags/{n}", "targetCommit": s} for n, s in sorted(repo.tags.items())],
            "converts": [],
        }
        if self.query.get("include_prs"):
            out["pullRequests"] = [{"name": f"refs/pr/{n}", "ref": f"refs/pr/{n}", "targetCommit": s}
                                   for n, s in sorted(repo.prs.items())]
        self._json(out)

    def commits(self, body: bytes, rtype: str, repo_id: str, rev: str) -> None:
        repo = self._repo(REPO_TYPES[rtype], repo_id)
        commit = self._commit_at(repo, rev)
        self._json([{"id": c.sha, "title": c.title, "message": c.message, "date": c.date, "authors": [{"user": USER}]}
                    for c in repo.history(commit.sha)])

    def tree(self, body: bytes, rtype: str, repo_id: str, rev: str, path: str | None = None) -> None:
        repo = self._repo(REPO_TYPES[rtype], repo_id)
        commit = self._commit_at(repo, rev)
        recursive = self.query.get("recursive", ["false"])[0].lower() in ("1", "true")
        expand = self.query.get("expand", ["false"])[0].lower() in ("1", "true")
        path = (path or "").strip("/")
        if path and path in commit.files:
            self._json([_entry(repo, commit, path, expand)])
            return
        prefix = path + "/" if path else ""
        names = [p for p in commit.files if p.startswith(prefix)]
        if path and not names:
            raise HttpError(404, f"{path} does not exist on {rev}", "EntryNotFound")
        entries: set[str] = set()
        for name in names:
            parts = name[len(prefix):].split("/")
            depth = len(parts) if recursive else 1
            for i in range(1, depth + 1):
                entries.add(prefix + "/".join(parts[:i]))
        self._json([_entry(repo, commit, e, expand) for e in sorted(entries)])

    def paths_info(self, body: bytes, rtype: str, repo_id: str, rev: str) -> None:
        repo = self._repo(REPO_TYPES[rtype], repo_id)
        commit = self._commit_at(repo, rev)
        if self.headers.get("Content-Type", "").startswith("application/json"):
            form = json.loads(body or b"{}")
            paths, expand = form.get("paths", []), bool(form.get("expand"))
        else:
            form = parse_qs(body.decode())
            paths, expand = form.get("paths", []), form.get("expand", ["False"])[0].lower() in ("1", "true")
        out = []
        for path in paths:
            path = path.strip("/")
            if path in commit.files or any(p.startswith(path + "/") for p in commit.files):
                out.append(_entry(repo, commit, path, expand))
        self._json(out)

    def resolve(self, body: bytes, prefix: str | None, repo_id: str, rev: str, path: str) -> None:
        self._fault("resolve")
        repo = self._repo(REPO_TYPES.get((prefix or "").rstrip("/"), "model"), repo_id)
        commit = self._commit_at(repo, rev)
        blob = commit.files.get(path)
        if blob is None:
            raise HttpError(404, f"Entry not found: {path}", "EntryNotFound")
        headers = {"X-Repo-Commit": commit.sha}
        if blob.lfs_sha256 is not None:
            headers.update({"X-Linked-Etag": f'"{blob.lfs_sha256}"', "X-Linked-Size": str(blob.size)})
            if self.state.cdn_host:  # like the Hub: LFS content is served by another host (the CDN)
                port = self.server.server_address[1]
                location = f"http://{self.state.cdn_host}:{port}/_lfs/{blob.lfs_sha256}/{blob.size}"
                self._send(302, b"", {"Location": location, "ETag": f'"{blob.oid}"', **headers})
                return
        self._send_content(blob.content, {"ETag": f'"{blob.etag}"', **headers})

    def lfs_download(self, body: bytes, oid: str, size: str) -> None:
        """The 'CDN' side of an LFS file: content by sha256, with Range support, no auth."""
        content = self.state.lfs.get(oid)
        if content is None or len(content) != int(size):
            raise HttpError(404, f"LFS object {oid} not found")
        self._send_content(content, {"ETag": f'"{oid}"'})

    def _send_content(self, content: bytes, headers: dict[str, str]) -> None:
        """200 with the content, or 206 with the byte range the Range header asks for."""
        headers = {"Accept-Ranges": "bytes", **headers}
        size, status = len(content), 200
        match = re.fullmatch(r"bytes=(\d*)-(\d*)", self.headers.get("Range", ""))
        if match and (match[1] or match[2]):
            if match[1]:
                start, end = int(match[1]), int(match[2]) if match[2] else size - 1
            else:
                start, end = max(0, size - int(match[2])), size - 1
            end = min(end, size - 1)
            if start > end:
                self._send(416, b"", {"Content-Range": f"bytes */{size}", **headers})
                return
            content, status = content[start:end + 1], 206
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        self._send(status, content, headers, content_type="application/octet-stream")


def _card_data(blob: Blob | None) -> dict[str, Any] | None:
    if blob is None:
        return None
    match = re.match(r"^---\s*\n(.*?)\n---\s*$", blob.content.decode("utf-8", "replace"), re.S | re.M)
    try:
        data = yaml.safe_load(match[1]) if match else None
    except yaml.YAMLError:
        return None
    return data if isinstance(data, dict) else None


def _entry(repo: Repo, commit: Commit, path: str, expand: bool) -> dict[str, Any]:
    blob = commit.files.get(path)
    if blob is not None:
        entry: dict[str, Any] = {"type": "file", "oid": blob.oid, "size": blob.size, "path": path}
        if blob.lfs_sha256 is not None:
            entry["lfs"] = {"oid": blob.lfs_sha256, "size": blob.size, "pointerSize": len(lfs_pointer(blob.lfs_sha256, blob.size))}
    else:
        prefix = path + "/"
        tree = sorted((p, b.oid) for p, b in commit.files.items() if p.startswith(prefix))
        entry = {"type": "directory", "oid": hashlib.sha1(json.dumps(tree).encode()).hexdigest(), "size": 0, "path": path}
    if expand:
        last = _last_commit_touching(repo, commit, path)
        entry["lastCommit"] = {"id": last.sha, "title": last.title, "date": last.date}
    return entry


def _last_commit_touching(repo: Repo, commit: Commit, path: str) -> Commit:
    def snapshot(c: Commit) -> list[tuple[str, str]]:
        return sorted((p, b.oid) for p, b in c.files.items() if p == path or p.startswith(path + "/"))

    history = repo.history(commit.sha)
    current = snapshot(commit)
    last = commit
    for older in history[1:]:
        if snapshot(older) != current:
            break
        last = older
    return last


_REPO = r"(?P<repo_id>[^/]+/[^/]+)"
_TYPE = r"(?P<rtype>models|datasets|spaces)"
_PREFIX = r"(?P<prefix>datasets/|spaces/)?"
ROUTES = [
    ("POST", r"/_control/faults", HubHandler.control_faults),
    ("GET", r"/api/whoami-v2", HubHandler.whoami),
    ("POST", r"/api/validate-yaml", HubHandler.validate_yaml),
    ("POST", r"/api/repos/create", HubHandler.create_repo),
    ("GET", rf"/api/{_TYPE}/{_REPO}", HubHandler.repo_info),
    ("GET", rf"/api/{_TYPE}/{_REPO}/revision/(?P<rev>[^/]+)", HubHandler.repo_info),
    ("POST", rf"/api/{_TYPE}/{_REPO}/preupload/(?P<rev>[^/]+)", HubHandler.preupload),
    ("POST", rf"/api/{_TYPE}/{_REPO}/commit/(?P<rev>[^/]+)", HubHandler.commit),
    ("POST", rf"/api/{_TYPE}/{_REPO}/tag/(?P<rev>[^/]+)", HubHandler.create_tag),
    ("DELETE", rf"/api/{_TYPE}/{_REPO}/tag/(?P<rev>[^/]+)", HubHandler.delete_tag),
    ("POST", rf"/api/{_TYPE}/{_REPO}/branch/(?P<rev>.+)", HubHandler.create_branch),
    ("DELETE", rf"/api/{_TYPE}/{_REPO}/branch/(?P<rev>.+)", HubHandler.delete_branch),
    ("GET", rf"/api/{_TYPE}/{_REPO}/refs", HubHandler.refs),
    ("GET", rf"/api/{_TYPE}/{_REPO}/commits/(?P<rev>[^/]+)", HubHandler.commits),
    ("GET", rf"/api/{_TYPE}/{_REPO}/tree/(?P<rev>[^/]+)(?:/(?P<path>.*))?", HubHandler.tree),
    ("POST", rf"/api/{_TYPE}/{_REPO}/paths-info/(?P<rev>[^/]+)", HubHandler.paths_info),
    ("POST", rf"/{_PREFIX}{_REPO}\.git/info/lfs/objects/batch", HubHandler.lfs_batch),
    ("PUT", r"/_lfs/(?P<oid>[0-9a-f]{64})/(?P<size>\d+)", HubHandler.lfs_upload),
    ("POST", r"/_lfs/(?P<oid>[0-9a-f]{64})/(?P<size>\d+)/verify", HubHandler.lfs_verify),
    ("GET", r"/_lfs/(?P<oid>[0-9a-f]{64})/(?P<size>\d+)", HubHandler.lfs_download),
    ("GET", rf"/{_PREFIX}{_REPO}/resolve/(?P<rev>[^/]+)/(?P<path>.+)", HubHandler.resolve),
]


class HubHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, state: HubState) -> None:
        super().__init__(("127.0.0.1", 0), HubHandler)  # loopback only, free port
        self.state = state


@dataclass
class LocalHub:
    """A running server: ``endpoint`` for HF_ENDPOINT, ``state`` to inspect and inject faults."""

    server: HubHTTPServer
    thread: threading.Thread

    @property
    def state(self) -> HubState:
        return self.server.state

    @property
    def endpoint(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


def start_hub(tokens: set[str] | None = None) -> LocalHub:
    """Start the server in a daemon thread on 127.0.0.1 and a free port."""
    server = HubHTTPServer(HubState(tokens))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="local-hub", daemon=True)
    thread.start()
    return LocalHub(server, thread)


def main() -> None:  # pragma: no cover - manual use
    import argparse

    parser = argparse.ArgumentParser(description="Serve an in-memory Hub on 127.0.0.1 until killed.")
    parser.add_argument("--token", action="append", default=None, help="accepted write token (repeatable)")
    args = parser.parse_args()
    hub = start_hub(set(args.token) if args.token else None)
    print(hub.endpoint, flush=True)
    try:
        while hub.thread.is_alive():
            time.sleep(1)
    except KeyboardInterrupt:
        hub.stop()


if __name__ == "__main__":
    main()

"""Push a built dataset to the Hugging Face Hub, one config at a time, and tag the pushed commit.

Recipe for ``push_dataset(OUT/NAME/VERSION, "org/name")``:

1. read the version and configs from ``provenance.json``; find a token (argument, ``HF_TOKEN``,
   or the token stored by ``hf auth login``); check the shards' Features and the card's
   ``configs:`` locally;
2. refuse early, before any upload, when tag ``vX.Y.Z`` already exists (unless ``force``);
3. create the repo (and the branch for ``revision``) when missing;
4. for every config and split: load the local Parquet shards with their ``datasets.Features``
   and ``Dataset.push_to_hub(config_name=..., split=...)`` with the same shard count, so the
   repo mirrors the local layout ``CONFIG/SPLIT-0000i-of-0000N.parquet``;
5. one commit with our dataset card ``README.md`` (replacing the one ``push_to_hub`` wrote),
   ``provenance.json``, ``quality.json`` and ``rejects.parquet``, deleting shards this build does
   not have (a dropped config, an older shard count), so the tagged commit mirrors the build;
6. only now, with every upload done, tag that commit ``vX.Y.Z`` (moving it with ``force``).
   A push opened as a pull request (``create_pr``) creates no tag: the commit is not on a
   branch yet.

Any failure talking to the Hub becomes a one-line :class:`~dsbuild.errors.HubError` that says
what failed and what to do. The Hub endpoint comes from ``HF_ENDPOINT``, which must be set
before ``huggingface_hub`` or ``datasets`` is first imported.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, TypeVar

from dsbuild.errors import HubError

log = logging.getLogger(__name__)

SEMVER = re.compile(r"\d+\.\d+\.\d+")
REPO_ID = re.compile(r"[\w.-]+/[\w.-]+")
EXTRA_FILES = ("provenance.json", "quality.json", "rejects.parquet")
#: data files dsbuild (and push_to_hub) name CONFIG/SPLIT-0000i-of-0000N.parquet; only these and
#: EXTRA_FILES are ever deleted from a repo, so files a user added by hand are left alone
SHARD_FILE = re.compile(r"[^/]+/[\w.-]+-\d{5}-of-\d{5}\.parquet")
LOGIN_HINT = "run `hf auth login` (older releases: `huggingface-cli login`), set HF_TOKEN, or pass --token"
T = TypeVar("T")


@dataclass
class PushResult:
    """What a push did.

    Attributes:
        repo_id: the dataset repository pushed to.
        version: the builder version pushed (``x.y.z``).
        tag: the tag created on the pushed commit (``vX.Y.Z``), or None for a pull request.
        commit_sha: the commit holding the complete pushed dataset (data, card, provenance).
        configs: the configs pushed, in order.
        revision: the branch pushed to, or the pull-request ref (``refs/pr/N``).
        pr_url: the pull request's URL when pushed with ``create_pr``.
        tag_moved: True when ``force`` moved an existing tag to this commit.
        notes: anything the user should know (e.g. why no tag was made).
    """

    repo_id: str
    version: str
    tag: str | None
    commit_sha: str
    configs: list[str]
    revision: str
    pr_url: str | None = None
    tag_moved: bool = False
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _LocalConfig:
    name: str
    splits: dict[str, list[Path]]  # split -> shard files, in order
    features: dict[str, Any]


def push_dataset(
    dataset_dir: str | Path,
    repo_id: str,
    *,
    revision: str | None = None,
    private: bool = False,
    create_pr: bool = False,
    force: bool = False,
    token: str | None = None,
) -> PushResult:
    """Push a dataset built by :func:`dsbuild.executor.build` and tag the commit ``vX.Y.Z``.

    Args:
        dataset_dir: the built ``OUT/NAME/VERSION`` directory.
        repo_id: ``namespace/name`` of the dataset repository (created if missing).
        revision: branch to push to (created from ``main`` if missing); default ``main``.
        private: create the repository private (an existing repository keeps its visibility).
        create_pr: open a pull request against ``main`` with the whole upload instead of committing;
            no tag is created (nor checked), since the commit is not on a branch until the pull
            request is merged.
        force: when tag ``vX.Y.Z`` exists, push anyway and move the tag to the new commit.
        token: Hub token; default ``HF_TOKEN`` or the token stored by ``hf auth login``.

    Returns:
        A :class:`PushResult` naming the commit, tag and configs.

    Raises:
        HubError: no token, the tag exists (without ``force``), the directory is not a built
            dataset, or the Hub failed; the message is one line and says what to do.
    """
    dataset_dir = Path(dataset_dir)
    if not REPO_ID.fullmatch(repo_id):
        raise HubError(f"repo id {repo_id!r} must be namespace/name, e.g. your-user/europarl-ner "
                       f"(letters, digits, '-', '_', '.')")
    name, version, configs = _read_built_dataset(dataset_dir)
    tag = f"v{version}"
    if create_pr and revision not in (None, "main"):
        raise HubError("--create-pr opens a pull request against main; drop --revision, or push to the branch "
                       "without --create-pr")
    token = _resolve_token(token)
    _check_schemas(configs)
    _check_card(dataset_dir, configs)

    from huggingface_hub import HfApi, constants
    from huggingface_hub.errors import RepositoryNotFoundError

    endpoint = constants.ENDPOINT
    wanted = os.environ.get("HF_ENDPOINT", "").rstrip("/")
    if wanted and wanted != endpoint.rstrip("/"):  # set after import: the push would go to the wrong Hub
        raise HubError(f"HF_ENDPOINT is {wanted} but huggingface_hub was imported with {endpoint}; set HF_ENDPOINT "
                       f"before Python starts (or before importing datasets/huggingface_hub)")
    if constants.HF_HUB_OFFLINE:
        raise HubError("HF_HUB_OFFLINE is set, so nothing can be pushed; unset it (or set HF_HUB_OFFLINE=0) and retry")
    api = HfApi(endpoint=endpoint, token=token, library_name="dsbuild")

    # 1. Tag check first: a refused push must not upload anything.
    old_tag_commit: str | None = None
    try:
        refs = api.list_repo_refs(repo_id, repo_type="dataset")
        old_tag_commit = next((t.target_commit for t in refs.tags if t.name == tag), None)
    except RepositoryNotFoundError:
        pass  # a new repository has no tags
    except Exception as err:  # noqa: BLE001 - any transport/server failure becomes one line
        raise _hub_error(f"reading the tags of {repo_id}", err, endpoint) from err
    if old_tag_commit is not None and not create_pr and not force:
        raise HubError(f"{repo_id} already has tag {tag} (commit {old_tag_commit[:12]}): version {version} of {name} "
                       f"was pushed before; bump the builder version, or pass --force to push again and move the tag")

    # 2. Repo and branch.
    branch = revision or "main"
    _call(f"creating dataset repo {repo_id}", endpoint, api.create_repo,
          repo_id, repo_type="dataset", private=private, exist_ok=True)
    if branch != "main":
        _call(f"creating branch {branch} of {repo_id}", endpoint, api.create_branch,
              repo_id, branch=branch, repo_type="dataset", exist_ok=True)

    # 3. Data, one config and split at a time.
    target = None if create_pr else branch
    pr_url: str | None = None
    for config, split, files in ((c, s, f) for c in configs for s, f in c.splits.items()):
        with _quiet_num_proc_notice():
            dataset = _load_split(files, split)
            log.info("pushing %s/%s (%d rows, %d shard(s)) to %s@%s", config.name, split, len(dataset), len(files),
                     repo_id, target or "a new pull request")
            info = _call(f"uploading {config.name}/{split} to {repo_id}", endpoint, dataset.push_to_hub,
                         repo_id, config_name=config.name, split=split, data_dir=config.name, revision=target,
                         create_pr=target is None, private=private, token=token, num_shards=max(1, len(files)),
                         commit_message=f"{name} {version}: upload config {config.name}, split {split}")
        if target is None:  # the first upload opened the pull request; the rest go into it
            target, pr_url = info.pr_revision, info.pr_url
            log.info("opened pull request %s (%s)", pr_url, target)

    # 4. Our card (replacing the one push_to_hub wrote), provenance and the rejects table.
    commit = _call(f"uploading the card and provenance to {repo_id}", endpoint, _commit_card_and_provenance,
                   api, dataset_dir, repo_id, target, name, version, configs)
    sha = commit.oid
    result = PushResult(repo_id=repo_id, version=version, tag=None, commit_sha=sha, configs=[c.name for c in configs],
                        revision=target or branch, pr_url=pr_url)

    # 5. Tag, only now that everything is uploaded.
    if create_pr:
        note = (f"pushed as pull request {pr_url}; no tag {tag} was created: merge the pull request, then run "
                f"push again on main to tag it")
        if old_tag_commit is not None:
            note += f" (with --force: tag {tag} exists, on commit {old_tag_commit[:12]}; the pull request leaves it alone)"
        log.warning(note)
        result.notes.append(note)
        return result
    if old_tag_commit is not None:
        log.warning("--force: moving tag %s of %s from %s to %s", tag, repo_id, old_tag_commit[:12], sha[:12])
        _call(f"deleting the old tag {tag} of {repo_id}", endpoint, api.delete_tag,
              repo_id, tag=tag, repo_type="dataset")
        result.tag_moved = True
    try:
        _call(f"tagging commit {sha[:12]} of {repo_id} as {tag}", endpoint, api.create_tag,
              repo_id, tag=tag, revision=sha, repo_type="dataset", tag_message=f"{name} {version} built by dsbuild")
    except HubError as err:
        if old_tag_commit is None:
            raise
        # the Hub cannot move a tag atomically: say that the old one is gone and how to restore it
        raise HubError(f"{err} Note: the old tag {tag} (commit {old_tag_commit[:12]}) was already deleted; run push "
                       f"--force again to create it on the new commit") from err
    result.tag = tag
    log.info("pushed %s %s to %s@%s, commit %s, tag %s", name, version, repo_id, result.revision, sha[:12], tag)
    return result


def _read_built_dataset(dataset_dir: Path) -> tuple[str, str, list[_LocalConfig]]:
    """Builder name, version and configs (with shard files) from ``provenance.json``."""
    prov_path = dataset_dir / "provenance.json"
    if not prov_path.is_file():
        raise HubError(f"{dataset_dir} is not a built dataset (no provenance.json); pass the OUT/NAME/VERSION "
                       f"directory written by `dsbuild build`")
    try:
        prov = json.loads(prov_path.read_text(encoding="utf-8"))
        name, version = prov["builder"]["name"], prov["builder"]["version"]
        raw_configs = prov["configs"]
    except (ValueError, KeyError, TypeError) as err:
        raise HubError(f"{prov_path} is unreadable or incomplete ({err!r}); rebuild the dataset") from err
    if not SEMVER.fullmatch(str(version)):
        raise HubError(f"{prov_path}: builder version {version!r} is not x.y.z; fix the builder's version")
    if not (dataset_dir / "README.md").is_file():
        raise HubError(f"{dataset_dir} has no README.md card; run `dsbuild card {dataset_dir}` or rebuild")
    configs = []
    for raw in raw_configs:
        try:
            config_name, split_names, features = raw["name"], list(raw["splits"]), dict(raw["features"])
            listed = {split: list(raw.get("files", {}).get(split, [])) for split in split_names}
        except (KeyError, TypeError, AttributeError) as err:
            raise HubError(f"{prov_path}: a config entry lacks name/splits/features/files ({err!r}); "
                           f"rebuild the dataset") from err
        splits: dict[str, list[Path]] = {}
        for split, rel_paths in listed.items():
            files = [dataset_dir / rel for rel in rel_paths]
            missing = [str(f) for f in files if not f.is_file()]
            if not files or missing:
                raise HubError(f"{dataset_dir}: config {config_name} split {split} is missing its Parquet files "
                               f"{missing or '(none listed)'}; rebuild the dataset")
            splits[split] = files
        configs.append(_LocalConfig(config_name, splits, features))
    if not configs:
        raise HubError(f"{prov_path} lists no configs; nothing to push")
    return name, str(version), configs


def _resolve_token(token: str | None) -> str:
    if token:
        return token
    from huggingface_hub import get_token

    found = get_token()
    if not found:
        raise HubError(f"no Hugging Face token found: {LOGIN_HINT}")
    return found


def _check_schemas(configs: list[_LocalConfig]) -> None:
    """Every shard embeds the Features recorded in provenance.json (checked before any upload).

    Reads only Parquet footers (no ``datasets`` import), so a refused push stays fast.
    """
    import pyarrow.parquet as pq

    for config in configs:
        for split, files in config.splits.items():
            for path in files:
                try:
                    metadata = pq.read_schema(path).metadata or {}
                except Exception as err:  # noqa: BLE001 - a corrupt file is reported, not raised deep down
                    raise HubError(f"{path}: not a readable Parquet file ({err}); rebuild the dataset") from err
                try:
                    found = json.loads(metadata[b"huggingface"])["info"]["features"]
                except (KeyError, ValueError, TypeError):
                    raise HubError(f"{path}: no datasets Features embedded in the Parquet file; rebuild the dataset "
                                   f"with dsbuild") from None
                if found != config.features:
                    raise HubError(f"{path}: its features differ from those in provenance.json for "
                                   f"{config.name}/{split}; rebuild the dataset")


def _check_card(dataset_dir: Path, configs: list[_LocalConfig]) -> None:
    """The card's YAML parses and its ``configs:`` names every config pushed (else load_dataset fails).

    Checked before any upload: the Hub would reject bad YAML only at the last commit.
    """
    import yaml

    readme = dataset_dir / "README.md"
    match = re.match(r"---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(\r?\n|$)", readme.read_text(encoding="utf-8"), re.S)
    fix = f"run `dsbuild card {dataset_dir}` to re-render it (`dsbuild validate {dataset_dir}` lists problems)"
    try:
        meta = yaml.safe_load(match[1]) if match else None
    except yaml.YAMLError as err:
        raise HubError(f"{readme}: the front matter is not valid YAML ({_first_line(str(err))}); {fix}") from None
    if not isinstance(meta, dict):
        raise HubError(f"{readme}: no YAML front matter mapping at the top of the card; {fix}")
    listed = {c.get("config_name") for c in meta.get("configs") or [] if isinstance(c, dict)}
    missing = [c.name for c in configs if c.name not in listed]
    if missing:
        raise HubError(f"{readme}: the card's `configs:` does not list {', '.join(missing)}, so load_dataset would not "
                       f"find them on the Hub; {fix}")


def _load_split(files: list[Path], split: str) -> Any:
    """The local shards as one in-memory ``datasets.Dataset``, with the Features embedded in them."""
    import datasets
    import pyarrow as pa
    import pyarrow.parquet as pq
    from datasets.table import InMemoryTable

    table = pa.concat_tables([pq.read_table(f) for f in files])
    features = datasets.Features.from_arrow_schema(table.schema)
    return datasets.Dataset(InMemoryTable(table), info=datasets.DatasetInfo(features=features), split=split)


def _commit_card_and_provenance(api: Any, dataset_dir: Path, repo_id: str, revision: str | None, name: str,
                                version: str, configs: list[_LocalConfig]) -> Any:
    """One commit: our card, provenance, quality and rejects; minus data files this build does not have.

    The deletions make the pushed revision mirror the build: shards of a config or split that is no
    longer built (or of an older shard count) and a stale quality.json would otherwise linger.
    """
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete

    kept = {"README.md", *(f for f in EXTRA_FILES if (dataset_dir / f).is_file())}
    for config in configs:
        for split, files in config.splits.items():
            kept.update(f.relative_to(dataset_dir).as_posix() for f in files)
            # the names push_to_hub gave the shards (the same as ours unless the executor renames them)
            kept.update(f"{config.name}/{split}-{i:05d}-of-{len(files):05d}.parquet" for i in range(len(files)))
    operations: list[Any] = [CommitOperationAdd(path_in_repo=f, path_or_fileobj=str(dataset_dir / f))
                             for f in ("README.md", *EXTRA_FILES) if f in kept]
    remote = api.list_repo_files(repo_id, repo_type="dataset", revision=revision)
    stale = sorted(f for f in remote if f not in kept and (f in EXTRA_FILES or SHARD_FILE.fullmatch(f)))
    for path in stale:
        log.info("removing %s from %s: this build of %s %s does not have it", path, repo_id, name, version)
    operations += [CommitOperationDelete(path_in_repo=f) for f in stale]
    return api.create_commit(repo_id, operations=operations, repo_type="dataset", revision=revision,
                             commit_message=f"{name} {version}: dataset card, provenance and rejects")


class _DropNumProcNotice(logging.Filter):
    """push_to_hub warns 'Setting num_proc from 1 back to 1 ...' for every one-shard split: noise."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Setting num_proc from")


@contextmanager
def _quiet_num_proc_notice() -> Iterator[None]:
    logger, notice_filter = logging.getLogger("datasets.arrow_dataset"), _DropNumProcNotice()
    logger.addFilter(notice_filter)
    try:
        yield
    finally:
        logger.removeFilter(notice_filter)


def _call(what: str, endpoint: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run one Hub operation ``fn(*args, **kwargs)``; any failure becomes a one-line HubError naming ``what``."""
    try:
        return fn(*args, **kwargs)
    except HubError:
        raise
    except Exception as err:  # noqa: BLE001 - transport, HTTP and client errors all become one line
        raise _hub_error(what, err, endpoint) from err


def _hub_error(what: str, err: BaseException, endpoint: str) -> HubError:
    """One line: what failed, what the server said, what to do."""
    cause = _root_http_error(err)
    response = getattr(cause, "response", None)
    status = getattr(response, "status_code", None)
    server = getattr(cause, "server_message", None)
    detail = _first_line(server) if server else _first_line(str(cause)) or type(cause).__name__
    if status is not None:
        detail = f"HTTP {status}: {detail}"
    if status in (401, 403):
        hint = f"check that the token may write to this repo ({LOGIN_HINT})"
    elif status is None and _is_connection_error(cause):
        hint = f"check the network and HF_ENDPOINT (now {endpoint})"
    elif status is not None and status >= 500:
        hint = "the Hub failed; retry later (no tag was created, so pushing again is safe)"
    else:
        hint = "fix the cause and push again (no tag was created)"
    return HubError(f"push failed while {what}: {detail}; {hint}")


def _root_http_error(err: BaseException) -> BaseException:
    """The innermost error carrying an HTTP response, or the innermost cause (bounded walk)."""
    current: BaseException | None = err
    innermost = err
    for _ in range(10):
        if current is None:
            break
        if getattr(current, "response", None) is not None:
            return current
        innermost = current
        current = current.__cause__ or current.__context__
    return innermost


def _is_connection_error(err: BaseException) -> bool:
    names = {cls.__name__ for cls in type(err).__mro__}
    return bool(names & {"ConnectError", "ConnectTimeout", "TimeoutException", "NetworkError", "ConnectionError"})


def _first_line(text: str | None) -> str:
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[0] if lines else ""

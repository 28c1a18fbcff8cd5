"""Push to a local Hub-protocol server, tag, and read back with datasets.load_dataset.

The server runs in this process (tests/hubserver.py); pushes and loads run in a subprocess
(tests/hub_client.py) so HF_ENDPOINT is set before huggingface_hub/datasets are imported.
"""

from __future__ import annotations

import json
import shutil
import socket
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from dsbuild.errors import HubError
from dsbuild.hub import push_dataset
from tests.plugins.hub import TEST_TOKEN, HubClient

CONFIGS = ("en", "es")


def local_rows(dataset_dir: Path, config: str) -> list[dict]:
    """Every column of every row of the local build (ids, text, tokens, tag ids, spans)."""
    rows = []
    for f in sorted((dataset_dir / config).glob("test-*.parquet")):
        rows += pq.read_table(f).to_pylist()
    return rows


def version_tag(dataset_dir: Path) -> str:
    """The tag a push of this build creates: v + the builder version in provenance.json."""
    return "v" + json.loads((dataset_dir / "provenance.json").read_text())["builder"]["version"]


def local_files(dataset_dir: Path) -> set[str]:
    return {p.relative_to(dataset_dir).as_posix() for p in dataset_dir.rglob("*") if p.is_file()}


def local_features(dataset_dir: Path, config: str) -> dict:
    import datasets

    schema = pq.read_schema(next((dataset_dir / config).glob("test-*.parquet")))
    return datasets.Features.from_arrow_schema(schema).to_dict()


def drop_config(dataset_dir: Path, config: str) -> None:
    """Edit a build as if it had no ``config``: provenance, card front matter and shards."""
    import yaml

    prov = json.loads((dataset_dir / "provenance.json").read_text())
    prov["configs"] = [c for c in prov["configs"] if c["name"] != config]
    (dataset_dir / "provenance.json").write_text(json.dumps(prov, indent=2))
    _, front, body = (dataset_dir / "README.md").read_text(encoding="utf-8").split("---\n", 2)
    meta = yaml.safe_load(front)
    for key in ("configs", "dataset_info"):
        meta[key] = [c for c in meta.get(key, []) if c["config_name"] != config]
    (dataset_dir / "README.md").write_text(f"---\n{yaml.safe_dump(meta, sort_keys=False)}---\n{body}", encoding="utf-8")
    shutil.rmtree(dataset_dir / config)


def push(dataset_dir: Path, repo_id: str, **kwargs) -> dict:
    return {"op": "push", "dir": str(dataset_dir), "repo_id": repo_id, **kwargs}


def load(repo_id: str, config: str, revision: str) -> dict:
    return {"op": "load", "repo_id": repo_id, "config": config, "revision": revision, "split": "test"}


def assert_one_line_error(result: dict, *fragments: str) -> str:
    assert result.get("type") == "HubError", result
    message = result["error"]
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    return message


def test_push_tags_and_load_dataset_reads_back_the_same_rows(hub_client: HubClient, hub_dataset: Path) -> None:
    repo_id = "test-user/europarl-ner"
    tag = version_tag(hub_dataset)
    pushed, loaded_es, loaded_en, again = hub_client.run([
        push(hub_dataset, repo_id),
        load(repo_id, "es", tag),
        load(repo_id, "en", tag),
        push(hub_dataset, repo_id),
    ])
    assert "error" not in pushed, pushed
    assert pushed["tag"] == tag and pushed["version"] == tag[1:] and pushed["configs"] == list(CONFIGS)

    repo = hub_client.hub.state.repo(repo_id)
    assert repo.tags == {tag: pushed["commit_sha"]}
    assert repo.branches["main"] == pushed["commit_sha"]
    files = repo.commits[pushed["commit_sha"]].files
    assert set(files) == local_files(hub_dataset) | {".gitattributes"}  # the tagged commit mirrors the build
    # our card, not the one push_to_hub generates; provenance and rejects alongside
    assert files["README.md"].content == (hub_dataset / "README.md").read_bytes()
    assert files["provenance.json"].content == (hub_dataset / "provenance.json").read_bytes()
    assert files["rejects.parquet"].lfs_sha256 is not None
    for config in CONFIGS:  # same layout as the local build, uploaded through LFS
        assert files[f"{config}/test-00000-of-00001.parquet"].lfs_sha256 is not None

    for config, loaded in (("es", loaded_es), ("en", loaded_en)):
        assert "error" not in loaded, loaded
        expected = local_rows(hub_dataset, config)
        assert len(loaded["rows"]) == len(expected) == 799
        assert [r["id"] for r in loaded["rows"]] == [r["id"] for r in expected]
        assert loaded["rows"] == expected  # tokens, tags, spans: all columns equal
        assert loaded["features"] == local_features(hub_dataset, config)  # ClassLabel names survive

    # same version again: refused before any upload, tag untouched
    message = assert_one_line_error(again, f"already has tag {tag}", "--force")
    assert pushed["commit_sha"][:12] in message
    assert repo.tags == {tag: pushed["commit_sha"]}
    assert repo.branches["main"] == pushed["commit_sha"]


def test_force_moves_the_tag_and_the_pushed_commit_mirrors_the_new_build(
        hub_client: HubClient, hub_dataset: Path, tmp_path: Path) -> None:
    repo_id = "test-user/europarl-force"
    tag = version_tag(hub_dataset)
    changed = tmp_path / "changed" / "1.0.0"  # same version, card edited and config en dropped
    shutil.copytree(hub_dataset, changed)
    with (changed / "README.md").open("a", encoding="utf-8") as f:
        f.write("\nRe-pushed with a corrected card.\n")
    drop_config(changed, "en")
    first, refused, forced, tags, loaded, _, tag_lost, _, restored = hub_client.run([
        push(hub_dataset, repo_id),
        push(changed, repo_id),
        push(changed, repo_id, force=True),
        {"op": "tags", "repo_id": repo_id},
        load(repo_id, "es", tag),
        {"op": "fault", "endpoint": "create_tag", "status": 500},
        push(changed, repo_id, force=True),  # old tag deleted, new one fails: the error must say so
        {"op": "fault"},
        push(changed, repo_id, force=True),
    ])
    repo = hub_client.hub.state.repo(repo_id)
    assert first["tag"] == tag
    assert_one_line_error(refused, f"already has tag {tag}")
    assert forced["tag"] == tag and forced["tag_moved"] is True and forced["configs"] == ["es"]
    assert forced["commit_sha"] != first["commit_sha"]
    assert tags == {"tags": {tag: forced["commit_sha"]}}
    files = repo.commits[forced["commit_sha"]].files
    assert set(files) == local_files(changed) | {".gitattributes"}  # en/ shards removed
    assert files["README.md"].content == (changed / "README.md").read_bytes()
    assert "en/test-00000-of-00001.parquet" in repo.commits[first["commit_sha"]].files  # the old commit keeps them
    assert "rows" in loaded, loaded
    assert loaded["rows"] == local_rows(hub_dataset, "es")

    assert_one_line_error(tag_lost, "HTTP 500", "tagging commit", f"old tag {tag}", "was already deleted",
                          "--force again")
    assert restored["tag"] == tag and restored["tag_moved"] is False  # nothing left to move
    assert repo.tags == {tag: restored["commit_sha"]}


def test_multi_shard_build_keeps_its_shard_layout(hub_client: HubClient, hub_dataset: Path, tmp_path: Path) -> None:
    from dsbuild.executor import build
    from dsbuild.registry import builders

    cls = builders.get("europarl-ner")
    sharded = build(cls(cls.Options(project=False)), tmp_path / "sharded", shard_rows=300).path
    assert len(list((sharded / "es").glob("test-*-of-00003.parquet"))) == 3
    repo_id = "test-user/europarl-shards"
    three, loaded, one = hub_client.run([
        push(sharded, repo_id),
        load(repo_id, "es", version_tag(sharded)),
        push(hub_dataset, repo_id, force=True),  # same version, one shard per split: the three go
    ])
    repo = hub_client.hub.state.repo(repo_id)
    assert set(repo.commits[three["commit_sha"]].files) == local_files(sharded) | {".gitattributes"}
    assert loaded["rows"] == local_rows(sharded, "es") == local_rows(hub_dataset, "es")
    assert set(repo.commits[one["commit_sha"]].files) == local_files(hub_dataset) | {".gitattributes"}


def test_create_pr_puts_every_config_in_one_pull_request_and_makes_no_tag(
        hub_client: HubClient, hub_dataset: Path) -> None:
    repo_id = "test-user/europarl-pr"
    tag = version_tag(hub_dataset)
    pr, on_main, second_pr = hub_client.run([
        push(hub_dataset, repo_id, create_pr=True, private=True),
        push(hub_dataset, repo_id),
        push(hub_dataset, repo_id, create_pr=True),  # tag exists: a pull request is still allowed, leaves it alone
    ])
    repo = hub_client.hub.state.repo(repo_id)
    assert repo.private
    assert pr["tag"] is None and pr["revision"] == "refs/pr/1" and pr["pr_url"].endswith("/discussions/1")
    assert any(f"no tag {tag}" in note for note in pr["notes"])
    pr_files = repo.commits[repo.prs[1]].files
    assert repo.prs[1] == pr["commit_sha"]
    assert set(pr_files) == local_files(hub_dataset) | {".gitattributes"}  # every config in the one PR
    assert on_main["tag"] == tag and repo.tags == {tag: on_main["commit_sha"]}
    assert second_pr["tag"] is None and second_pr["revision"] == "refs/pr/2"
    assert any(f"tag {tag} exists" in note for note in second_pr["notes"])
    assert sorted(repo.prs) == [1, 2] and repo.branches["main"] == on_main["commit_sha"]


def test_server_failures_give_one_line_errors_and_leave_no_tag(hub_client: HubClient, hub_dataset: Path) -> None:
    repo_id = "test-user/europarl-fail"
    tag = version_tag(hub_dataset)
    wrong_token, _, failing_lfs, _, before, failing_commit, after, _, failing_tag, _, retried = hub_client.run([
        push(hub_dataset, repo_id, token="not-a-valid-token"),
        {"op": "fault", "endpoint": "lfs_upload", "status": 403},
        push(hub_dataset, repo_id),
        {"op": "fault"},
        {"op": "fault", "endpoint": "commit", "status": 500},
        push(hub_dataset, repo_id),
        {"op": "fault"},
        {"op": "fault", "endpoint": "tag", "status": 503},
        push(hub_dataset, repo_id),  # every upload succeeds, then tagging fails
        {"op": "fault"},
        push(hub_dataset, repo_id),  # no tag was left behind, so pushing again just works
    ])
    assert_one_line_error(wrong_token, "HTTP 401", "creating dataset repo", "hf auth login")
    assert_one_line_error(failing_lfs, "HTTP 403", "uploading en/test", "injected failure on lfs_upload")
    assert_one_line_error(failing_commit, "HTTP 500", "uploading en/test", "injected failure on commit", "no tag")
    assert_one_line_error(failing_tag, "HTTP 503", "tagging commit", "retry later")
    assert after["commit_requests"] == before["commit_requests"] + 1  # the failing commit is not retried in a loop
    assert retried["tag"] == tag
    repo = hub_client.hub.state.repo(repo_id)
    assert repo.tags == {tag: retried["commit_sha"]}


def test_unreachable_endpoint_says_to_check_hf_endpoint(hub_client: HubClient, hub_dataset: Path) -> None:
    with socket.socket() as sock:  # a port that nothing listens on
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    (result,) = hub_client.run([push(hub_dataset, "test-user/nowhere")], endpoint=closed)
    assert_one_line_error(result, "reading the tags", "HF_ENDPOINT", closed)


def test_cli_push_to_a_new_branch(hub_client: HubClient, hub_dataset: Path) -> None:
    """`python -m dsbuild push DIR --repo-id ID --revision BRANCH`: branch created, its commit tagged."""
    repo_id = "test-user/europarl-cli"
    tag = version_tag(hub_dataset)
    done = hub_client.command([sys.executable, "-m", "dsbuild", "push", str(hub_dataset), "--repo-id", repo_id,
                               "--revision", "release", "--token", TEST_TOKEN], token=None)
    assert done.returncode == 0, done.stderr
    repo = hub_client.hub.state.repo(repo_id)
    sha = repo.tags[tag]
    assert repo.branches["release"] == sha
    assert set(repo.commits[sha].files) == local_files(hub_dataset) | {".gitattributes"}
    assert sorted(repo.commits[repo.branches["main"]].files) == [".gitattributes"]  # main untouched
    assert f"to {repo_id}@release, commit {sha}" in done.stdout and f"Tagged {tag}" in done.stdout


# -- in-process checks that need no server --------------------------------------------------------

@pytest.fixture
def no_token(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No HF_TOKEN and an empty token store; returns where a stored token would live."""
    from huggingface_hub import constants

    for var in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_OIDC_RESOURCE"):
        monkeypatch.delenv(var, raising=False)
    token_path = tmp_path / "hf-home" / "token"
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(token_path))
    return token_path


def test_no_token_is_a_one_line_error_before_anything_is_sent(no_token: Path, hub_dataset: Path) -> None:
    with pytest.raises(HubError) as err:
        push_dataset(hub_dataset, "test-user/no-token")
    message = str(err.value)
    assert "\n" not in message
    for fragment in ("no Hugging Face token", "hf auth login", "HF_TOKEN", "--token"):
        assert fragment in message


def test_cli_without_token_prints_one_error_line_and_exits_2(no_token: Path, hub_dataset: Path) -> None:
    from typer.testing import CliRunner

    from dsbuild.cli import make_app

    result = CliRunner().invoke(make_app(), ["push", str(hub_dataset), "--repo-id", "test-user/no-token"])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: no Hugging Face token"), result.output


def test_stored_and_env_tokens_are_found(no_token: Path, offline: None, hub_dataset: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    # past the token check, the next refusal is offline mode: proof the token was found
    no_token.parent.mkdir(parents=True)
    no_token.write_text("stored-token")
    with pytest.raises(HubError, match="HF_HUB_OFFLINE is set"):
        push_dataset(hub_dataset, "test-user/stored")
    no_token.unlink()
    monkeypatch.setenv("HF_TOKEN", "env-token")
    with pytest.raises(HubError, match="HF_HUB_OFFLINE is set"):
        push_dataset(hub_dataset, "test-user/env")


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """HF_HUB_OFFLINE=1 as huggingface_hub sees it (the suite sets it too, in tests/conftest.py)."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)


def test_offline_mode_is_refused_with_a_hint(offline: None, hub_dataset: Path) -> None:
    with pytest.raises(HubError, match="HF_HUB_OFFLINE is set"):
        push_dataset(hub_dataset, "test-user/offline", token="x")


def test_hf_endpoint_set_after_import_is_refused(hub_dataset: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import constants

    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    assert constants.ENDPOINT != "http://127.0.0.1:9"  # imported long before, with another endpoint
    with pytest.raises(HubError, match="HF_ENDPOINT is http://127.0.0.1:9 but huggingface_hub was imported with"):
        push_dataset(hub_dataset, "test-user/x", token="x")


def test_not_a_built_dataset(tmp_path: Path) -> None:
    with pytest.raises(HubError, match="not a built dataset"):
        push_dataset(tmp_path, "test-user/x", token="x")


def test_bad_version_and_missing_shards_are_reported(hub_dataset: Path, tmp_path: Path) -> None:
    copy = tmp_path / "1.0.0"
    shutil.copytree(hub_dataset, copy)
    prov = json.loads((copy / "provenance.json").read_text())
    prov["builder"]["version"] = "v1.0"
    (copy / "provenance.json").write_text(json.dumps(prov))
    with pytest.raises(HubError, match="not x.y.z"):
        push_dataset(copy, "test-user/x", token="x")
    prov["builder"]["version"] = "1.0.0"
    (copy / "provenance.json").write_text(json.dumps(prov))
    (copy / "es" / "test-00000-of-00001.parquet").unlink()
    with pytest.raises(HubError, match="split test is missing its Parquet files"):
        push_dataset(copy, "test-user/x", token="x")


def test_features_that_differ_from_provenance_are_refused(hub_dataset: Path, tmp_path: Path) -> None:
    copy = tmp_path / "1.0.0"
    shutil.copytree(hub_dataset, copy)
    prov = json.loads((copy / "provenance.json").read_text())
    prov["configs"][1]["features"]["ner_tags"]["feature"]["names"][1] = "B-SOMETHING"
    (copy / "provenance.json").write_text(json.dumps(prov))
    with pytest.raises(HubError, match="features differ from those in provenance.json for es/test"):
        push_dataset(copy, "test-user/x", token="x")


@pytest.mark.parametrize("repo_id", ["europarl-ner", "a/b/c", "me/bad name", ""])
def test_repo_id_must_be_namespace_slash_name(hub_dataset: Path, repo_id: str) -> None:
    with pytest.raises(HubError, match="must be namespace/name"):
        push_dataset(hub_dataset, repo_id, token="x")


@pytest.mark.parametrize("card, problem", [
    ("# no front matter\n", "no YAML front matter"),
    ("---\nconfigs: [unclosed\n---\n", "not valid YAML"),
    ("---\nconfigs:\n- config_name: en\n---\n", "does not list es"),
])
def test_a_card_load_dataset_could_not_use_is_refused_before_upload(
        hub_dataset: Path, tmp_path: Path, card: str, problem: str) -> None:
    copy = tmp_path / "1.0.0"
    shutil.copytree(hub_dataset, copy)
    (copy / "README.md").write_text(card, encoding="utf-8")
    with pytest.raises(HubError, match=problem) as err:
        push_dataset(copy, "test-user/x", token="x")
    assert "dsbuild card" in str(err.value)


def test_create_pr_with_a_branch_is_refused(hub_dataset: Path) -> None:
    with pytest.raises(HubError, match="--create-pr opens a pull request against main"):
        push_dataset(hub_dataset, "test-user/x", revision="dev", create_pr=True, token="x")

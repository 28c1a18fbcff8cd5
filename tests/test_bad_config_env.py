"""Bad options, bad config files, environment failures, damaged datasets, and readable help (issue 14).

Every case here ends as one red ``error:`` line (exit 2) naming the option, file:line:column or
path and what to do, or as a listed problem of ``dsbuild validate`` (exit 1); never a traceback
without ``--verbose``. Environment failures (a full disk, a read-only folder) are simulated with
``monkeypatch`` (tests run as root, where ``chmod`` stops nothing; the real disk is never filled).
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import os
import re
import shutil
from pathlib import Path
from typing import Any, Literal

import click
import pyarrow.parquet as pq
import pytest
import typer
from typer.testing import CliRunner

from dsbuild.cli import app
from dsbuild.cli._common import environment_message, hide_internal_paths
from dsbuild.config import OptionLayer, load_config_file, option, parse_overrides, parse_value, resolve_options
from dsbuild.errors import ConfigError

runner = CliRunner()


def run(*args: Any, env: dict[str, str] | None = None) -> Any:
    return runner.invoke(app, [str(a) for a in args], env=env)


def one_error_line(result: Any, code: int = 2) -> str:
    """The single ``error:`` line of a failed command (asserting the one-line contract)."""
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    lines = [ln for ln in result.stderr.replace("\r", "\n").splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("error: ")]
    assert len(errors) == 1 and errors[0] == lines[-1], lines
    return errors[0]


def digests(path: Path) -> dict[str, str]:
    """SHA-256 of every published file except provenance.json (it holds timings)."""
    return {str(f.relative_to(path)): hashlib.sha256(f.read_bytes()).hexdigest()
            for f in sorted(path.rglob("*")) if f.is_file() and f.name != "provenance.json"}


# =========================================================================== 1. --set and config files
@pytest.mark.parametrize("value, fragments", [
    ("[1, 2", ["--set reject_every=[1, 2", "not valid YAML", "expected ',' or ']'", "[en, es]"]),
    ("{a: 1", ["--set reject_every={a: 1", "not valid YAML", "close the mapping"]),
    ('"abc', ['--set reject_every="abc', "not valid YAML", "close the quote"]),
    ("[1, 2]]", ["--set reject_every=[1, 2]]", "not valid YAML"]),
])
def test_unclosed_yaml_in_set_is_an_error_naming_the_option(toy_builders: Any, tmp_path: Path, value: str,
                                                            fragments: list[str]) -> None:
    line = one_error_line(run("build", "toy-ner", "--set", f"reject_every={value}", "--out", tmp_path))
    for fragment in fragments:
        assert fragment in line, line
    assert not (tmp_path / "toy-ner").exists()


def test_set_values_that_yaml_would_swallow_are_kept_as_typed() -> None:
    for text in (",", "|", ">", "#", "# x", "a # b", "-", "?", "@x", "`x", "a: b: c", "&x"):
        assert parse_value(text, key="k") == text, text
    assert parse_value("[en, es]") == ["en", "es"] and parse_value("{a: 1}") == {"a": 1}
    assert parse_value("3") == 3 and parse_value("true") is True and parse_value("null") is None
    assert parse_value("~") is None and parse_value("") == "" and parse_value("'x y'") == "x y"


@dataclasses.dataclass
class _Opts:
    lang: str = option("en", "a language code")
    langs: list[str] = option(["en"], "language codes")
    revision: str = option("", "a revision")
    policy: Literal["reject", "keep-partial"] = option("reject", "policy")
    threshold: float = option(0.5, "a threshold")
    n: int = option(1, "a count")
    path: Path | None = option(None, "a file")


def test_string_options_get_the_text_typed_not_yamls_reading() -> None:
    opts = resolve_options(_Opts, parse_overrides(["lang=no", "langs=no", "revision=1.10", "threshold=1e-3",
                                                   "path=/data/0123", "policy=keep-partial"]))
    assert (opts.lang, opts.langs, opts.revision, opts.threshold) == ("no", ["no"], "1.10", 0.001)
    assert opts.path == Path("/data/0123") and opts.policy == "keep-partial"
    assert resolve_options(_Opts, parse_overrides(["path=null"])).path is None


@pytest.mark.parametrize("pairs, fragments", [
    (["policy=keep_partial"], ["--set policy=keep_partial: option 'policy'", "reject | keep-partial",
                               "did you mean 'keep-partial'"]),
    (["n=x"], ["--set n=x: option 'n': expected an integer, got 'x'"]),
    (["nn=3"], ["--set nn=3: unknown option 'nn'. Did you mean n?"]),
    (["lang=[en, es]"], ["--set lang=[en, es]: option 'lang': expected a string"]),
])
def test_option_errors_name_the_set_they_came_from(pairs: list[str], fragments: list[str]) -> None:
    with pytest.raises(ConfigError) as err:
        resolve_options(_Opts, parse_overrides(pairs))
    for fragment in fragments:
        assert fragment in str(err.value)


@pytest.mark.parametrize("name, content, fragments", [
    ("opts.yaml", "n: 3\nreject_every: [1, 2\nlicense: mit\n",
     ["opts.yaml:3:8: invalid YAML", "expected ',' or ']'", "flow sequence on line 2"]),
    ("opts.yaml", "n: 3\n  reject_every: 2\n", ["opts.yaml:2:15: invalid YAML", "mapping values are not allowed"]),
    ("opts.yaml", 'n: 3\nlicense: "mit\n', ["opts.yaml:3:1: invalid YAML", "quoted scalar on line 2"]),
    ("opts.yaml", "n: 3\nreject_every: 2\nn: 4\n", ["opts.yaml:3:1: 'n' is given twice (first on line 1)"]),
    ("opts.yaml", "- n\n- 3\n", ["opts.yaml: a config file must hold a mapping", "not a list"]),
    ("opts.yaml", b"n: 3\nlicense: caf\xe9\n", ["opts.yaml:2: the config file is not UTF-8 (byte 0xe9)",
                                                "save it as UTF-8"]),
    ("opts.yaml", "n: 3\nreject_every: many\n", ["opts.yaml:2: option 'reject_every': expected an integer"]),
    ("opts.yaml", "n: 3\nrejet_every: 2\n", ["opts.yaml:2: unknown option 'rejet_every'. Did you mean reject_every?"]),
    ("opts.yaml", "license: no\n", ["opts.yaml:1: option 'license': expected a string, got False",
                                    "quote the value"]),
    ("opts.toml", 'n = 3\nlicense = mit\n', ["opts.toml:2:11: invalid TOML: Invalid value", 'key = "value"']),
    ("opts.toml", 'n = 3\n[x\n', ["opts.toml:2:3: invalid TOML", "table declaration"]),
    ("opts.toml", 'n = 3\nn = 4\n', ["opts.toml:2:", "invalid TOML"]),
])
def test_config_file_errors_name_file_line_and_column(toy_builders: Any, tmp_path: Path, monkeypatch: Any,
                                                      name: str, content: str | bytes, fragments: list[str]) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / name).write_bytes(content if isinstance(content, bytes) else content.encode())
    line = one_error_line(run("build", "toy-ner", "--config", name, "--out", tmp_path / "out"))
    for fragment in fragments:
        assert fragment in line, line


def test_config_file_layer_remembers_lines_and_a_directory_is_named(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("# options\nn: 3\n\nreject_every: 2\n")
    layer = load_config_file(tmp_path / "a.yaml")
    assert isinstance(layer, OptionLayer) and dict(layer) == {"n": 3, "reject_every": 2}
    assert layer.where_of("reject_every") == f"{tmp_path / 'a.yaml'}:4"
    (tmp_path / "empty.yaml").write_text("# nothing\n")
    assert load_config_file(tmp_path / "empty.yaml") == {}
    with pytest.raises(ConfigError, match="is a directory, not a config file"):
        load_config_file(tmp_path)


# =========================================================================== 2. environment failures
def _enospc_after(monkeypatch: Any, target: Any, attr: str, calls_before: int, error: OSError) -> dict[str, int]:
    """Make ``target.attr`` raise ``error`` from call ``calls_before + 1`` on; count calls."""
    real = getattr(target, attr)
    state = {"calls": 0}

    def fake(*args: Any, **kwargs: Any) -> Any:
        state["calls"] += 1
        if state["calls"] > calls_before:
            raise error
        return real(*args, **kwargs)

    monkeypatch.setattr(target, attr, fake)
    return state


@pytest.mark.parametrize("error", [
    OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)),  # from Python's own writes
    OSError(errno.ENOSPC, "Error writing bytes to file. Detail: [errno 28] No space left on device"),  # pyarrow
    OSError("Error writing bytes to file. Detail: [errno 28] No space left on device"),  # errno only in the text
], ids=["python", "pyarrow", "text-only"])
def test_full_disk_in_a_shard_is_one_line_and_the_rerun_resumes(toy_sharded: Any, tmp_path: Path, monkeypatch: Any,
                                                                 error: OSError) -> None:
    from dsbuild.execution import shards

    out = tmp_path / "out"
    args = ["build", "toy-sharded", "--out", out, "--shard-size", "10"]  # 3 splits x 5 shards, 2 tables each
    with monkeypatch.context() as m:
        _enospc_after(m, shards, "atomic_write_table", 12, error)  # 6 shards finish, the 7th finds the disk full
        line = one_error_line(run(*args))
    assert line == (f"error: cannot write {out}: No space left on device (errno 28); free space or choose another "
                    f"--out, then run the same command again to resume")
    assert ".partial-" not in line
    counter = _enospc_after(monkeypatch, shards, "atomic_write_table", 10**6, error)  # the disk is fixed
    again = run(*args)
    assert again.exit_code == 0, again.output
    assert "resuming the unfinished build" in again.stderr
    assert counter["calls"] == 2 * (15 - 6)  # only the shards that had not finished
    fresh = run("build", "toy-sharded", "--out", tmp_path / "fresh", "--shard-size", "10")
    assert fresh.exit_code == 0
    assert digests(out / "toy-sharded" / "1.0.0") == digests(tmp_path / "fresh" / "toy-sharded" / "1.0.0")


def test_full_disk_in_process_names_the_out_folder_not_the_staging_path(toy_builders: Any, tmp_path: Path,
                                                                        monkeypatch: Any) -> None:
    from dsbuild.execution import shards

    out = tmp_path / "out"
    staging_file = out / "toy-ner" / ".0.1.0.partial-0123abcd" / "_shards" / "a" / "test" / "00000" / "stats.json"
    with monkeypatch.context() as m:  # the second split's stats.json cannot be written
        _enospc_after(m, shards, "atomic_write_bytes", 2,
                      OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(staging_file)))
        line = one_error_line(run("build", "toy-ner", "--out", out))
    assert line.startswith(f"error: cannot write {out}: No space left on device (errno 28); free space")
    assert ".partial-" not in line and "_shards" not in line
    again = run("build", "toy-ner", "--out", out)
    assert again.exit_code == 0, again.output
    assert "resuming: a/train already built" in again.stderr
    assert (out / "toy-ner" / "0.1.0" / "README.md").is_file()


@pytest.mark.parametrize("error, fragments", [
    (OSError(errno.EROFS, os.strerror(errno.EROFS)), ["Read-only file system (errno 30)", "writable disk"]),
    (PermissionError(errno.EACCES, os.strerror(errno.EACCES)), ["Permission denied (errno 13)",
                                                               "choose another --out or fix the folder's permissions"]),
], ids=["read-only", "permission-denied"])
def test_unwritable_output_folder_is_one_line(toy_builders: Any, tmp_path: Path, monkeypatch: Any, error: OSError,
                                             fragments: list[str]) -> None:
    out = tmp_path / "ro"
    out.mkdir()
    if os.geteuid() != 0 and error.errno == errno.EACCES:
        out.chmod(0o555)  # a real unwritable folder where chmod means something
    else:  # root writes anyway: the first write under --out fails as the filesystem would make it
        real_mkdir = Path.mkdir

        def mkdir(self: Path, *args: Any, **kwargs: Any) -> None:
            if str(self).startswith(str(out)) and self != out:
                raise type(error)(error.errno, error.strerror, str(self))
            real_mkdir(self, *args, **kwargs)

        monkeypatch.setattr(Path, "mkdir", mkdir)
    try:
        line = one_error_line(run("build", "toy-ner", "--out", out))
    finally:
        out.chmod(0o755)
    assert str(out) in line, line
    for fragment in fragments:
        assert fragment in line, line


def test_out_below_a_file_and_verbose_traceback(toy_builders: Any, tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("x")
    line = one_error_line(run("build", "toy-ner", "--out", tmp_path / "afile" / "out"))
    assert str(tmp_path / "afile") in line and "Not a directory (errno 20)" in line and "is a file" in line
    verbose = run("build", "toy-ner", "--out", tmp_path / "afile" / "out", "--verbose")
    assert verbose.exit_code == 2 and "Traceback" in verbose.stderr
    assert verbose.stderr.rstrip().splitlines()[-1].startswith("error: ")


def test_environment_message_and_internal_paths() -> None:
    assert hide_internal_paths("/o/toy/.1.2.3.partial-ab12-s8/_shards/a/x.tmp and /o/toy/.1.2.3.lock") == "/o/toy and /o/toy"
    assert hide_internal_paths("/home/me/.config.old/file") == "/home/me/.config.old/file"  # not ours: kept
    pyarrow_style = OSError(errno.ENOSPC, "Error writing bytes to file. Detail: [errno 28] No space left on device")
    assert environment_message(pyarrow_style, {"dataset_dir": Path("/d")}) == (
        "cannot write /d: No space left on device (errno 28); free space on that disk, then run the same command again")
    missing = FileNotFoundError(2, "Failed to open local file '/in/x.parquet'. Detail: [errno 2] No such file")
    assert environment_message(missing, {"name": "x", "out": "o"}).startswith("/in/x.parquet: No such file or directory")
    assert "ulimit -n" in environment_message(OSError(errno.EMFILE, "Too many open files"), {"out": "o"})
    cache = environment_message(OSError(errno.ENOSPC, "No space left on device", "/cache/models/x.bin"), {"out": "/o"})
    assert cache == ("cannot write /cache/models/x.bin: No space left on device (errno 28); free space on that disk, "
                     "then run the same command again to resume")
    refused = environment_message(ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"), {})
    assert refused.startswith("network failure (ConnectionRefusedError: Connection refused); check the connection")


# =========================================================================== 3. damaged datasets
@pytest.fixture
def toy_dataset(toy_builders: Any, tmp_path: Path) -> Path:
    assert run("build", "toy-ner", "--out", tmp_path / "out").exit_code == 0
    return tmp_path / "out" / "toy-ner" / "0.1.0"


def _truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * keep)])


def _damage_pages(path: Path) -> None:
    """Overwrite the data pages, keep the footer: only reading the rows finds the damage."""
    data = bytearray(path.read_bytes())
    footer = int.from_bytes(data[-8:-4], "little") + 8
    for i in range(4, len(data) - footer):
        data[i] = 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("rel, damage, reason", [
    ("a/train-00000-of-00001.parquet", _truncate, "magic bytes not found"),
    ("a/test-00000-of-00001.parquet", lambda p: p.write_bytes(b""), "size is 0 bytes"),
    ("rejects.parquet", _truncate, "magic bytes not found"),
    ("a/train-00000-of-00001.parquet", lambda p: p.unlink(), "missing"),
], ids=["truncated", "empty", "rejects-truncated", "missing"])
def test_damaged_parquet_in_card_and_validate(toy_dataset: Path, rel: str, damage: Any, reason: str) -> None:
    damage(toy_dataset / rel)
    line = one_error_line(run("card", toy_dataset))
    assert f"error: {toy_dataset / rel}: Parquet file" in line and reason in line, line
    assert "rebuild the dataset with `dsbuild build toy-ner --out OUT --overwrite`" in line
    result = run("validate", toy_dataset)
    assert result.exit_code == 1 and "Traceback" not in result.output
    problems = [ln for ln in result.stderr.splitlines() if ln.startswith("  - ")]
    assert any(ln.startswith(f"  - {rel}: ") and reason in ln and "rebuild the dataset" in ln for ln in problems), problems
    assert not any("card cannot be rendered" in ln or "rows in Parquet but provenance counts" in ln
                   for ln in problems), problems  # no knock-on problems from the same file


def test_validate_reads_the_rows_not_only_the_footer(toy_dataset: Path) -> None:
    rel = "a/train-00000-of-00001.parquet"
    pq.write_table(pq.read_table(toy_dataset / rel), toy_dataset / "tmp.parquet", compression="snappy")
    shutil.move(toy_dataset / "tmp.parquet", toy_dataset / rel)
    meta = pq.read_metadata(toy_dataset / rel)
    _damage_pages(toy_dataset / rel)
    assert pq.read_metadata(toy_dataset / rel).num_rows == meta.num_rows  # the footer still reads
    result = run("validate", toy_dataset)
    assert result.exit_code == 1
    assert f"  - {rel}: Parquet file is truncated or damaged" in result.stderr, result.stderr


@pytest.mark.parametrize("name, content, fragment", [
    ("provenance.json", b"{oops", "provenance.json is not valid JSON (Expecting property name"),
    ("provenance.json", b'{"a": "caf\xe9"}', "provenance.json is not UTF-8 text (byte 0xe9"),
    ("provenance.json", b"[1, 2]", "provenance.json: holds a JSON list, not an object"),
    ("quality.json", b"{oops", "quality.json is not valid JSON"),
])
def test_damaged_json_in_card_is_one_line(toy_dataset: Path, name: str, content: bytes, fragment: str) -> None:
    (toy_dataset / name).write_bytes(content)
    line = one_error_line(run("card", toy_dataset))
    assert fragment in line and "rebuild the dataset" in line, line
    validate = run("validate", toy_dataset)
    assert validate.exit_code == 1 and "Traceback" not in validate.output


# =========================================================================== 4. info and --help in 100 columns
def test_info_fits_100_columns_for_every_builder(toy_builders: Any) -> None:
    from dsbuild.registry import builders

    names = builders.names()
    assert len(names) >= 10 and "toy-ner" in names
    for name in names:
        result = run("info", name, env={"COLUMNS": "100"})
        assert result.exit_code == 0, result.output
        too_long = [ln for ln in result.stdout.splitlines() if len(ln) > 100]
        assert not too_long, (name, too_long)


def test_info_shows_choices_and_shortens_long_defaults() -> None:
    tt = run("info", "translate-train", env={"COLUMNS": "100"}).stdout
    assert re.search(r"^policy\s+keep-partial \| reject\s+'reject'", tt, re.M), tt
    assert "Literal" not in tt and "list[str]" in tt
    maltese = run("info", "maltese", env={"COLUMNS": "100"}).stdout
    line = next(ln for ln in maltese.splitlines() if ln.startswith("pipelines "))
    assert "…" in line and "transliterate_arabic_translate_ar" not in line
    wide = run("info", "maltese", env={"COLUMNS": "300"}).stdout
    assert max(len(ln) for ln in wide.splitlines()) > 100  # a wide terminal is used


def _all_commands() -> list[list[str]]:
    root = typer.main.get_command(app)
    paths: list[list[str]] = [[]]

    def walk(cmd: click.Command, path: list[str]) -> None:
        for name, sub in getattr(cmd, "commands", {}).items():
            paths.append(path + [name])
            walk(sub, path + [name])

    walk(root, [])
    return paths


def help_text(path: list[str], columns: int, monkeypatch: Any, capsys: Any) -> str:
    """``dsbuild PATH --help`` as a terminal of ``columns`` shows it (typer's CliRunner forces 80 columns)."""
    monkeypatch.setenv("COLUMNS", str(columns))
    capsys.readouterr()
    with pytest.raises(SystemExit) as done:
        typer.main.get_command(app).main([*path, "--help"], prog_name="dsbuild")
    assert done.value.code == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("columns", [100, 60])
def test_help_fits_the_terminal_without_bool_placeholders(columns: int, monkeypatch: Any, capsys: Any) -> None:
    commands = _all_commands()
    assert ["build"] in commands and ["validate"] in commands
    for path in commands:
        text = help_text(path, columns, monkeypatch, capsys)
        assert "<bool>" not in text, (path, text)
        assert all(len(ln) <= columns for ln in text.splitlines()), (path, text)
        assert "--help" in text
        # the description is re-flowed: only a paragraph's last line may end short of the width
        description = text.split("\nArguments:")[0].split("\nOptions:")[0].split("\n\n")[1:]
        for para in description:
            lines = para.splitlines()
            assert all(len(ln) >= min(columns, 100) - 25 for ln in lines[:-1]), (path, para)


def test_flags_show_no_placeholder_but_valued_options_do(monkeypatch: Any, capsys: Any) -> None:
    text = help_text(["build"], 100, monkeypatch, capsys)
    assert re.search(r"^\s+--overwrite\s+Replace", text, re.M), text
    assert re.search(r"^\s+-w, --workers N\s+Worker", text, re.M), text
    assert max(len(ln) for ln in text.splitlines()) > 90  # the width of the terminal is used
    validate = help_text(["validate"], 100, monkeypatch, capsys)
    assert "every Parquet file against the features in provenance.json," in validate.replace("\n  ", " ")
    assert "Checks the OUT/NAME/VERSION layout, every Parquet file against the features in provenance.json" \
        in validate  # one line at 100 columns: the source's line break is gone

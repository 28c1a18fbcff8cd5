"""The `dsbuild` command line: every command, --help, config files, and the one-line error contract."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dsbuild.cli import COMMAND_MODULES, app, make_app

runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def test_list_and_info(toy_builders):
    result = run("list")
    assert result.exit_code == 0, result.output
    from dsbuild.registry import builders

    line = next(ln for ln in result.stdout.splitlines() if ln.startswith("europarl-ner"))
    assert line.split()[1] == builders.get("europarl-ner").version and "Europarl" in line
    data = json.loads(run("list", "--json").stdout)
    assert {"name": "toy-ner", "version": "0.1.0", "configs": ["a", "b"],
            "description": "Toy NER builder for tests."} in data
    info = run("info", "europarl-ner")
    assert info.exit_code == 0
    for text in ("europarl-ner ", "target_path", "str", "'es'", "CoNLL file of the target side",
                 "Configs with default options: ", "History:"):
        assert text in info.stdout


def test_build_with_config_file_and_overrides(tmp_path, toy_builders):
    (tmp_path / "opts.yaml").write_text("n: 5\nreject_every: 2\n")
    result = run("build", "toy-ner", "--config", tmp_path / "opts.yaml", "--set", "reject_every=0", "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert "Wrote" in result.stdout and result.stdout.splitlines()[2].split() == ["a", "train", "5", "5", "0"]
    prov = json.loads((tmp_path / "out" / "toy-ner" / "0.1.0" / "provenance.json").read_text())
    assert prov["config"]["n"] == 5 and prov["config"]["reject_every"] == 0  # --set beats the file
    (tmp_path / "opts.toml").write_text('n = 3\nlicense = "mit"\n')
    result = run("build", "toy-ner", "-c", tmp_path / "opts.toml", "--out", tmp_path / "out", "--overwrite")
    assert result.exit_code == 0, result.output
    prov = json.loads((tmp_path / "out" / "toy-ner" / "0.1.0" / "provenance.json").read_text())
    assert prov["config"]["n"] == 3 and prov["info"]["license"] == "mit"


def test_build_default_out_is_relative_out(tmp_path, toy_builders, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert run("build", "toy-ner").exit_code == 0
    assert (tmp_path / "out" / "toy-ner" / "0.1.0" / "README.md").is_file()


@pytest.mark.parametrize("args, message", [
    (["build", "europarl-nre"], "Unknown builder 'europarl-nre'. Did you mean 'europarl-ner'?"),
    (["build", "toy-ner", "--set", "n=many"], "option 'n': expected an integer"),
    (["build", "toy-ner", "--set", "rejet_every=3"], "unknown option 'rejet_every'. Did you mean reject_every?"),
    (["build", "toy-ner", "--set", "novalue"], "expected key=value"),
    (["build", "toy-ner", "--config", "missing.yaml"], "config file not found"),
    (["build", "toy-lossy"], "read 7 inputs but produced 4 rows + 2 rejects"),
    (["build", "europarl-ner", "--set", "target_lang=de"], "no shipped file for language 'de'"),
    (["build", "europarl-ner", "--set", "target_lang=de", "--set", "target_path=/no/such.conll"], "/no/such.conll"),
    (["info", "nope"], "Unknown builder 'nope'"),
    (["card", "."], "no provenance.json"),
])
def test_errors_are_one_red_line_with_exit_code_2(tmp_path, toy_builders, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    result = run(*args)
    assert result.exit_code == 2, result.output
    lines = [ln for ln in result.stderr.replace("\r", "\n").splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("error: ")]  # other lines: progress bars, INFO logs
    assert len(errors) == 1 and message in errors[0] and errors[0] == lines[-1]
    assert "Traceback" not in result.output


def test_existing_version_needs_overwrite(tmp_path, toy_builders):
    assert run("build", "toy-ner", "--out", tmp_path).exit_code == 0
    result = run("build", "toy-ner", "--out", tmp_path)
    assert result.exit_code == 2 and "already exists; pass --overwrite" in result.stderr
    assert run("build", "toy-ner", "--out", tmp_path, "--overwrite").exit_code == 0


def test_verbose_shows_the_traceback(tmp_path, toy_builders):
    result = run("build", "toy-ner", "--set", "n=x", "--verbose")
    assert result.exit_code == 2
    assert "Traceback" in result.stderr and "ConfigError" in result.stderr
    assert result.stderr.rstrip().splitlines()[-1].startswith("error: ")


def test_validate_and_card_commands(tmp_path, europarl_dir):
    copy = tmp_path / "europarl-ner" / europarl_dir.name
    shutil.copytree(europarl_dir, copy)
    ok = run("validate", copy)
    assert ok.exit_code == 0 and ok.stdout.strip().endswith(": OK")
    assert run("card", copy, "--check").exit_code == 0
    readme = copy / "README.md"
    original = readme.read_text()
    readme.write_text(original.replace("license: unknown", "license: gplv9"))
    bad = run("validate", copy)
    assert bad.exit_code == 1 and "license: 'gplv9' is not an allowed value" in bad.stderr
    assert run("card", copy, "--check").exit_code == 1
    fixed = run("card", copy)
    assert fixed.exit_code == 0 and readme.read_text() == original
    assert run("card", copy, "--stdout").stdout == original


def test_help_documents_every_option():
    top = run("--help")
    assert top.exit_code == 0
    for command in ("list", "info", "build", "card", "validate"):
        assert command in top.stdout
        sub = run(command, "--help")
        assert sub.exit_code == 0, sub.output
        assert "--verbose" in sub.stdout and "--help" in sub.stdout
    build_help = run("build", "--help").stdout
    for option in ("--set", "--config", "--out", "--overwrite", "--fresh", "YAML", "OUT/NAME/VERSION"):
        assert option in build_help
    assert run("--version").stdout.startswith("dsbuild ")


def test_command_modules_are_pluggable(monkeypatch, tmp_path):
    """A command module with register(app) is added; a missing optional module is skipped."""
    pkg = tmp_path / "extra_cmds"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "hello.py").write_text(
        "import typer\n\ndef register(app: typer.Typer) -> None:\n"
        "    @app.command('hello')\n    def hello(name: str = typer.Option('x', help='who')) -> None:\n"
        "        '''Say hello.'''\n        typer.echo(f'hello {name}')\n")
    (pkg / "broken.py").write_text("import not_a_real_dependency_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr("dsbuild.cli._UNAVAILABLE", [])
    monkeypatch.setattr("dsbuild.cli.COMMAND_MODULES",
                        [*COMMAND_MODULES, "extra_cmds.hello", "extra_cmds.broken", "not_installed_cmd"])
    extended = make_app()
    result = runner.invoke(extended, ["hello", "--name", "mt"])
    assert result.exit_code == 0 and result.stdout == "hello mt\n"
    assert "extra_cmds.broken is not available (No module named 'not_a_real_dependency_xyz')" in result.stderr
    assert "not_installed_cmd" not in result.stderr  # an absent optional module is not an error
    assert runner.invoke(extended, ["list"]).exit_code == 0


def test_python_m_dsbuild_and_console_script(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-m", "dsbuild", "list"], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "europarl-ner" in out.stdout
    script = shutil.which("dsbuild")
    assert script is not None, "console script `dsbuild` not installed (pip install -e .)"
    out = subprocess.run([script, "--version"], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0 and out.stdout.startswith("dsbuild ")
    out = subprocess.run([script, "build", "europarl-ner", "--set", "novalue"], capture_output=True, text=True, env=env,
                         timeout=120)
    assert out.returncode == 2 and out.stderr.startswith("error: --set 'novalue': expected key=value")


REPO = Path(__file__).resolve().parents[1]


def quickstart_blocks() -> list[str]:
    import re

    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = re.search(r"^## Quickstart\s*$(.*?)(?=^## )", text, re.S | re.M)
    assert section, "README.md needs a '## Quickstart' section"
    return re.findall(r"^```[^\n]*\n(.*?)^```", section.group(1), re.S | re.M)


def test_readme_quickstart_has_exactly_two_commands():
    setup_and_build, setup_and_test = quickstart_blocks()
    for block in (setup_and_build, setup_and_test):
        assert "pip install -e" in block and "torch==2.13.0" in block and block.count("\n") == 1
    assert "python -m dsbuild build europarl-ner --out ./out" in setup_and_build
    assert "pytest" in setup_and_test and "dev" in setup_and_test


@pytest.mark.parametrize("python_rc", [0, 1])
def test_ci_run_executes_the_readme_test_command_and_fails_with_it(tmp_path, python_rc):
    """.ci/run with stub pip/python on PATH: it runs the README's second block and returns its status."""
    stubs = tmp_path / "bin"
    stubs.mkdir()
    log = tmp_path / "calls.log"
    for name, rc in (("pip", 0), ("python", python_rc)):
        (stubs / name).write_text(f'#!/usr/bin/env bash\necho "{name} $*" >> "{log}"\nexit {rc}\n')
        (stubs / name).chmod(0o755)
    python3 = Path(shutil.which("python3") or sys.executable).parent
    env = {**os.environ, "PATH": f"{stubs}:{python3}:/usr/bin:/bin"}
    out = subprocess.run([str(REPO / ".ci" / "run")], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == python_rc, out.stderr
    calls = log.read_text().splitlines()
    assert calls == ["pip install -e .[all,dev] torch==2.13.0", "python -m pytest -q"]


def test_list_shows_question_mark_when_configs_need_options(toy_builders):
    from dsbuild.errors import ConfigError
    from dsbuild.registry import builders
    from tests.plugins.foundation import ToyBuilder

    class NeedsPath(ToyBuilder):
        name = "toy-needs-path"

        def configs(self):
            raise ConfigError("give --set path=FILE")

    builders.register("toy-needs-path", NeedsPath)
    try:
        line = next(ln for ln in run("list").stdout.splitlines() if ln.startswith("toy-needs-path"))
        assert line.split()[1:3] == ["0.1.0", "?"]
        assert "? (needs options)" in run("info", "toy-needs-path").stdout
    finally:
        builders._items.pop("toy-needs-path", None)


def test_root_verbose_flag_applies_to_the_command(toy_builders):
    result = runner.invoke(app, ["-v", "build", "toy-ner", "--set", "n=x"])
    assert result.exit_code == 2 and "Traceback" in result.stderr


def test_build_europarl_from_the_command_line_writes_the_layout(tmp_path):
    import datasets

    from dsbuild.registry import builders

    result = run("build", "europarl-ner", "--set", "project=false", "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    path = tmp_path / "out" / "europarl-ner" / builders.get("europarl-ner").version
    for name in ("README.md", "provenance.json", "rejects.parquet", "en/test-00000-of-00001.parquet",
                 "es/test-00000-of-00001.parquet"):
        assert (path / name).is_file(), name
    assert datasets.load_dataset(str(path), "es", split="test").num_rows == 799
    assert run("validate", path).exit_code == 0

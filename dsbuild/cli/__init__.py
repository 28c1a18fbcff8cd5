"""The ``dsbuild`` command line (typer).

Each command lives in its own module here and exposes ``register(app: typer.Typer)``. To add a
command (for example ``etymology`` for another issue), write ``dsbuild/cli/etymology.py`` with a
``register`` function: every non-underscore module in this package is registered, the core ones
first in the order of :data:`COMMAND_MODULES`, then the others by name. Third-party packages add
commands through the entry-point group ``dsbuild.commands`` (value: a module with ``register``).
A module that fails to import is skipped with a warning, so one broken optional command never
takes the whole CLI down.

Help is plain text (typer's rich markup is off, also for command groups a module adds): it
re-flows each docstring paragraph to the terminal (at most :data:`HELP_WIDTH` columns) instead of
breaking it where the source line ended, and shows no ``<bool>`` placeholder after a flag.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
from importlib.metadata import entry_points
from types import ModuleType
from typing import Annotated

import typer

import dsbuild
from dsbuild.cli._common import VerboseOption, reset_state, setup_logging

log = logging.getLogger(__name__)
#: (module, reason) of command modules that failed to import; reported once logging is set up
_UNAVAILABLE: list[tuple[str, str]] = []

#: the widest ``--help`` text, in columns (narrower terminals get narrower text)
HELP_WIDTH = 100

#: command modules under dsbuild/cli/, in the order they appear in ``--help``
COMMAND_MODULES: list[str] = ["list_builders", "info", "build", "clean", "card", "validate", "push"]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"dsbuild {dsbuild.__version__}")
        raise typer.Exit()


def _root(
    verbose: VerboseOption = False,
    version: Annotated[bool | None, typer.Option("--version", callback=_version, is_eager=True,
                                                  help="Print the dsbuild version and exit.")] = None,
) -> None:
    """Build multilingual NLP datasets and publish them as versioned Hugging Face datasets with cards.

    Run `dsbuild COMMAND --help` for the options of each command.
    """
    reset_state()
    setup_logging(verbose)
    for name, reason in _UNAVAILABLE:
        log.warning("command module %s is not available (%s); its command is disabled", name, reason)


def _load_module(name: str) -> ModuleType | None:
    qualified = name if "." in name else f"{__name__}.{name}"
    try:
        return importlib.import_module(qualified)
    except ImportError as err:
        if err.name == qualified:  # the optional module itself is absent: quiet unless verbose
            log.debug("command module %s is not installed", qualified)
        else:
            _UNAVAILABLE.append((qualified, str(err)))
        return None


def make_app() -> typer.Typer:
    """A fresh Typer app with every available command registered."""
    app = typer.Typer(
        name="dsbuild", help=_root.__doc__, no_args_is_help=True, add_completion=False,
        pretty_exceptions_enable=False, rich_markup_mode=None,
        context_settings={"help_option_names": ["-h", "--help"], "max_content_width": HELP_WIDTH},
    )
    app.callback()(_root)
    names = list(COMMAND_MODULES)
    names += sorted(info.name for info in pkgutil.iter_modules(__path__)  # other command modules here, e.g. etymology
                    if not info.name.startswith("_") and info.name not in names)
    modules = [_load_module(n) for n in names]
    for ep in entry_points(group="dsbuild.commands"):
        try:
            modules.append(ep.load())
        except Exception as err:  # a broken plugin must not break the CLI
            log.warning("could not load command plugin %r (%s): %s", ep.name, ep.value, err)
    for module in modules:
        if module is None:
            continue
        register = getattr(module, "register", None)
        if register is None:
            log.warning("command module %s has no register(app) function; skipped", module.__name__)
            continue
        register(app)
    _plain_help(app)
    return app


def _plain_help(app: typer.Typer) -> None:
    """Plain-text help for ``app`` and every command group added to it (see the module docstring)."""
    app.rich_markup_mode = None
    for group in app.registered_groups:
        if group.typer_instance is not None:
            _plain_help(group.typer_instance)


app = make_app()


def main() -> None:
    """Console-script entry point (``dsbuild``) and ``python -m dsbuild``."""
    app(prog_name="dsbuild")

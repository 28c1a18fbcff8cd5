"""Shared CLI plumbing: logging setup, the one-line error contract, small output helpers."""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer

from dsbuild.errors import DsbuildError

log = logging.getLogger("dsbuild.cli")
F = TypeVar("F", bound=Callable[..., Any])

#: exit code for errors caused by input, configuration or environment (DsbuildError)
EXIT_USER_ERROR = 2
#: exit code for "ran fine, but found problems" (validate, card --check)
EXIT_PROBLEMS = 1

VerboseOption = Annotated[
    bool, typer.Option("--verbose", "-v", help="Log debug messages and show full tracebacks on errors.")
]

_state = {"verbose": False}
_HANDLER_TAG = "_dsbuild_cli_handler"


def setup_logging(verbose: bool = False) -> None:
    """INFO (DEBUG with ``verbose``) from dsbuild and builders to stderr, in a concise format.

    Third-party libraries stay at WARNING unless ``verbose``. Re-running replaces only the handler
    installed here, so other handlers (pytest's, an embedding application's) are left alone.
    """
    _state["verbose"] = _state["verbose"] or verbose
    level = logging.DEBUG if _state["verbose"] else logging.INFO
    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(h, _HANDLER_TAG, False):
            root.removeHandler(h)
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("%(levelname).1s %(name)s: %(message)s" if _state["verbose"]
                                           else "%(levelname)s: %(message)s"))
    setattr(handler, _HANDLER_TAG, True)
    root.addHandler(handler)
    for name in ("dsbuild", "builders"):
        logging.getLogger(name).setLevel(level)
    if _state["verbose"] and root.level > logging.INFO:
        root.setLevel(logging.INFO)


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at emit time (test runners and notebooks swap it)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:  # StreamHandler.__init__ assigns it; ignore
        pass


def teardown_logging() -> None:
    """Remove what :func:`setup_logging` installed (commands run in-process, e.g. from tests, leave no trace)."""
    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(h, _HANDLER_TAG, False):
            root.removeHandler(h)
    for name in ("dsbuild", "builders"):
        logging.getLogger(name).setLevel(logging.NOTSET)


def reset_state() -> None:
    """Forget ``--verbose`` from a previous invocation (one process may run many, e.g. in tests)."""
    _state["verbose"] = False


def fail(message: str, code: int = EXIT_USER_ERROR) -> typer.Exit:
    """Print ``error: message`` in red on stderr and return the Exit to raise."""
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(code)


def handle_errors(fn: F) -> F:
    """Run a command: set up logging; turn DsbuildError into one red line on stderr and exit code 2.

    With ``--verbose`` the traceback is logged too. Other exceptions are bugs and keep their traceback.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        setup_logging(bool(kwargs.get("verbose")))
        try:
            return fn(*args, **kwargs)
        except DsbuildError as err:
            if _state["verbose"]:
                log.exception("%s failed", fn.__name__)
            message = " ".join(str(err).split("\n")[:1]) or type(err).__name__
            raise fail(message) from None
        except (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError) as err:
            # a path the user gave (or a builder derived from one) is wrong: not a bug
            if _state["verbose"]:
                log.exception("%s failed", fn.__name__)
            where = f"{err.filename}: " if err.filename else ""
            raise fail(f"{where}{err.strerror or err}; check the path (options: `dsbuild info NAME`)") from None
        finally:
            teardown_logging()

    return wrapper  # type: ignore[return-value]


def echo_table(rows: list[list[str]], headers: list[str]) -> None:
    """Print an aligned plain-text table on stdout."""
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows)]
    line = "  ".join(f"{{:<{w}}}" for w in widths)
    typer.echo(line.format(*headers).rstrip())
    typer.echo(line.format(*("-" * w for w in widths)).rstrip())
    for r in rows:
        typer.echo(line.format(*map(str, r)).rstrip())

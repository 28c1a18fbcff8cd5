"""Shared CLI plumbing: logging setup, the one-line error contract, small output helpers.

The one-line error contract (:func:`handle_errors`): a :class:`~dsbuild.errors.DsbuildError`
(bad input or options) and an ``OSError`` (the environment: a full disk, a read-only folder, a
missing path, also from pyarrow or from a worker process) end as one red ``error: ...`` line that
names the path and what to do, with exit code 2; ``--verbose`` adds the traceback. Internal
staging paths (``OUT/NAME/.VERSION.partial-HASH/...``) are never shown as something to act on:
the folder the user chose is named instead.
"""

from __future__ import annotations

import errno
import functools
import logging
import os
import re
import shutil
import sys
import textwrap
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
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
    """Run a command: set up logging; turn user and environment errors into one red line, exit code 2.

    :class:`DsbuildError` prints its message's first line; ``OSError`` (and pyarrow's I/O errors,
    which are ``OSError``; and a worker's ``OSError`` reported inside a shard error) prints
    :func:`environment_message`. With ``--verbose`` the traceback is logged too. Other exceptions
    are bugs and keep their traceback.
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
            wrapped = _os_error_in_message(message)
            if wrapped is not None:  # an OSError raised in a worker, reported as a shard failure
                message = environment_message(wrapped, kwargs)
            raise fail(hide_internal_paths(message)) from None
        except OSError as err:
            # the environment (disk, permissions, a path the user gave): not a bug
            if _state["verbose"]:
                log.exception("%s failed", fn.__name__)
            raise fail(environment_message(err, kwargs)) from None
        finally:
            teardown_logging()

    return wrapper  # type: ignore[return-value]


# --------------------------------------------------------------------------- environment errors
#: an internal folder or file under OUT/NAME: a staging folder (and anything in it), the lock, the old version
_INTERNAL = re.compile(r"[/\\]\.\d+\.\d+\.\d+[^/\\\s'\"]*?\.(?:partial-[^/\\\s'\"]*|lock|old)(?:[/\\][^\s'\"]*)?")
_ERRNO_IN_TEXT = re.compile(r"\[errno (\d+)\]", re.IGNORECASE)
_QUOTED_PATH = re.compile(r"'((?:[A-Za-z]:)?[/\\][^']+)'")
#: an OSError's text inside a DsbuildError message (how a worker process reports it)
_OS_ERROR_IN_MESSAGE = re.compile(
    r"\b(?:OSError|IOError|ArrowIOError|PermissionError|FileNotFoundError|IsADirectoryError|NotADirectoryError|"
    r"FileExistsError|BlockingIOError|InterruptedError|ConnectionError|TimeoutError):\s*(?P<text>.*?\[errno \d+\].*?)"
    r"(?:\s+\(finished shards are kept.*)?$", re.IGNORECASE)

#: libraries whose OSErrors are network failures, not disk ones
_NETWORK_MODULES = {"requests", "urllib3", "httpx", "httpcore", "huggingface_hub", "socket", "ssl"}

#: errnos that mean "cannot write here"
_WRITE_ERRNOS = {errno.ENOSPC, errno.EROFS, errno.EFBIG, getattr(errno, "EDQUOT", errno.ENOSPC)}


def hide_internal_paths(text: str) -> str:
    """``text`` with internal paths cut back to their folder: ``OUT/NAME/.1.0.0.partial-ab/x/y`` -> ``OUT/NAME``."""
    return _INTERNAL.sub("", text)


def _os_error_in_message(message: str) -> OSError | None:
    """The ``OSError`` described in a :class:`DsbuildError` message (``... OSError: [Errno 28] ...``), if any."""
    m = _OS_ERROR_IN_MESSAGE.search(message)
    if not m:
        return None
    text = m.group("text")
    code = int(_ERRNO_IN_TEXT.search(text).group(1))  # type: ignore[union-attr]
    path = _QUOTED_PATH.search(text)
    return OSError(code, text, path.group(1)) if path else OSError(code, text)


def environment_message(err: OSError, command_args: Mapping[str, Any] | None = None) -> str:
    """One line for an environment failure: the path (never an internal one), the reason, what to do.

    ``command_args`` are the command's arguments: its ``out`` (``--out``) or ``dataset_dir`` is
    the folder named when the error has no path, and decides the advice.
    """
    args = command_args or {}
    text = str(err.strerror or err)
    if isinstance(err, (ConnectionError, TimeoutError)) or type(err).__module__.split(".")[0] in _NETWORK_MODULES:
        first = text.splitlines()[0] if text else type(err).__name__
        return (f"network failure ({type(err).__name__}: {first}); check the connection (and HF_ENDPOINT), "
                f"then run the same command again")
    code = err.errno if isinstance(err.errno, int) and err.errno > 0 else None
    if code is None:
        m = _ERRNO_IN_TEXT.search(text)  # pyarrow: "... Detail: [errno 28] No space left on device"
        code = int(m.group(1)) if m else None
    out = args.get("out")
    folder = out if out not in (None, "") else args.get("dataset_dir")
    path: str | None = str(err.filename) if err.filename not in (None, "") else None
    if path is None:
        quoted = _QUOTED_PATH.search(text)
        path = quoted.group(1) if quoted else None
    if folder is not None and (path is None or (code in _WRITE_ERRNOS and _inside(path, folder))):
        path = str(folder)  # a full disk is the output folder's problem, not one (internal) file's
    if path is not None:
        path = hide_internal_paths(os.path.abspath(path) if folder is not None and path == str(folder) else path)
    reason = os.strerror(code) if code else (text.splitlines()[0] if text else type(err).__name__)
    where = f"{path}: " if path else ""
    tag = f" (errno {code})" if code else ""
    to_resume = "then run the same command again to resume" if out is not None else "then run the same command again"
    if code in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC), errno.EFBIG):
        in_out = out is not None and (path is None or _inside(path, out))
        advice = ("free space or choose another --out, " if in_out else "free space on that disk, ") + to_resume
    elif code == errno.EROFS:
        advice = ("choose a --out on a writable disk (or remount this one read-write), " + to_resume if out is not None
                  else "copy the folder to a writable disk and run the command there")
    elif code in (errno.EACCES, errno.EPERM):
        advice = ("you may not write there: choose another --out or fix the folder's permissions"
                  if out is not None and path is not None and _inside(path, out)
                  else "check the file's permissions (ls -l), or run as a user who may read and write it")
    elif code == errno.ENOENT:
        advice = "check the path" + (" (options: `dsbuild info NAME`)" if "name" in args else "")
    elif code == errno.ENOTDIR:
        blocker = _file_in_path(path)
        advice = (f"{blocker} is a file, not a folder: " if blocker else "a part of the path is a file, not a folder: ") \
            + ("choose another --out" if out is not None and blocker and _inside(path or "", out) else "check the path")
    elif code == errno.EISDIR:
        advice = "this is a folder, a file is expected here: check the path"
    elif code == errno.EEXIST:
        advice = "something is already there: remove it or choose another path"
    elif code in (errno.EMFILE, errno.ENFILE):
        advice = f"raise the open-file limit (ulimit -n 4096) or use fewer --workers, {to_resume}"
    elif code == errno.ENAMETOOLONG:
        advice = "choose a shorter path"
    elif code == errno.ENOMEM:
        advice = f"use fewer --workers or a smaller --shard-size, {to_resume}"
    elif code == errno.EIO:
        advice = f"the disk reported a read/write failure: check it, {to_resume}"
    else:
        advice = f"check the path and the disk, {to_resume} (-v shows the traceback)"
    verb = "cannot write " if code in _WRITE_ERRNOS else ""
    return f"{verb}{where}{reason}{tag}; {advice}"


def _file_in_path(path: str | None) -> str | None:
    """The first part of ``path`` that exists and is a file (why a folder cannot be made there), if any."""
    if not path:
        return None
    for parent in [Path(path), *Path(path).parents]:
        if parent.exists():
            return str(parent) if parent.is_file() else None
    return None


def _inside(path: str, folder: Any) -> bool:
    """Whether ``path`` is ``folder`` or inside it (both made absolute)."""
    p, f = os.path.abspath(path), os.path.abspath(str(folder))
    return p == f or p.startswith(f.rstrip(os.sep) + os.sep)


# --------------------------------------------------------------------------- output helpers
def terminal_width(fallback: int = 100) -> int:
    """The terminal's width in columns (``COLUMNS`` wins; ``fallback`` when not a terminal); at least 40."""
    return max(40, shutil.get_terminal_size((fallback, 24)).columns)


def shorten(text: str, width: int) -> str:
    """``text`` cut to ``width`` characters, ending with ``…`` when cut."""
    return text if len(text) <= width else text[:max(width - 1, 0)] + "…"


def wrap_text(text: str, width: int, indent: str = "") -> list[str]:
    """``text`` wrapped to ``width`` columns (continuation lines start with ``indent``), paragraphs kept."""
    out: list[str] = []
    for para in str(text).split("\n"):
        out += textwrap.wrap(para, width, subsequent_indent=indent, break_on_hyphens=False) or [""]
    return out


def echo_table(rows: Sequence[Sequence[Any]], headers: Sequence[str], *, width: int | None = None,
               max_widths: Mapping[int, int] | None = None) -> None:
    """Print an aligned plain-text table on stdout that fits ``width`` columns (default: the terminal).

    Column ``i`` is wrapped at ``max_widths[i]`` characters; the last column is wrapped to the room
    left (when at least 20 columns are left); wrapped cells continue on the next lines.
    """
    width = terminal_width() if width is None else width
    cells = [[str(c) for c in r] for r in rows]
    natural = [max(len(x) for x in col) for col in zip(headers, *cells)]
    caps = max_widths or {}
    widths = [min(w, max(caps.get(i, w), len(headers[i]))) for i, w in enumerate(natural)]
    used = sum(widths[:-1]) + 2 * (len(widths) - 1)
    if used + widths[-1] > width and width - used >= 20:
        widths[-1] = max(width - used, len(headers[-1]))
    line = "  ".join(f"{{:<{w}}}" for w in widths)
    typer.echo(line.format(*headers).rstrip())
    typer.echo(line.format(*("-" * w for w in widths)).rstrip())
    for r in cells:
        parts = [wrap_text(c, w) if len(c) > w else [c] for c, w in zip(r, widths)]
        for k in range(max(len(p) for p in parts)):
            typer.echo(line.format(*(p[k] if k < len(p) else "" for p in parts)).rstrip())

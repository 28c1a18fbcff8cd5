"""Errors that dsbuild raises for users.

Every error a user can cause (bad input, bad config, unknown names) is a :class:`DsbuildError`.
Its message names *where* the problem is (file and line, or example id) and *what to do*, so the
CLI can print it as one line without a stack trace.
"""

from __future__ import annotations

from pathlib import Path


class DsbuildError(Exception):
    """Base class for errors caused by input, configuration or environment, not by a bug."""


class InputError(DsbuildError):
    """Malformed or inconsistent input data.

    Args:
        message: what is wrong.
        source: file path or dataset name the problem is in.
        line: 1-based line number in ``source``, when known.
        example_id: id of the example, when there is no line.
        hint: what the user should do about it.
    """

    def __init__(
        self,
        message: str,
        *,
        source: str | Path | None = None,
        line: int | None = None,
        example_id: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.message = message
        self.source = str(source) if source is not None else None
        self.line = line
        self.example_id = example_id
        self.hint = hint
        super().__init__(self._format())

    def _format(self) -> str:
        where = ""
        if self.source is not None:
            where = self.source + (f":{self.line}" if self.line is not None else "")
        if self.example_id is not None:
            where = f"{where} (example {self.example_id})" if where else f"example {self.example_id}"
        text = f"{where}: {self.message}" if where else self.message
        if self.hint:
            text += ("" if text.endswith((".", "!", "?")) else ".") + f" Fix: {self.hint}"
        return text


class ConfigError(DsbuildError):
    """A builder option, config file or command-line override is invalid."""


class UnknownNameError(DsbuildError, KeyError):
    """A name is not in a registry; the message lists close matches."""

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0]) if self.args else ""


class HubError(DsbuildError):
    """Pushing to or reading from the Hugging Face Hub failed."""

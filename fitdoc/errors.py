"""Errors a user can cause, and the exit codes the CLI maps them to."""

from __future__ import annotations

from collections.abc import Sequence
from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    VERDICT_FAILED = 1
    BAD_INPUT = 2
    DIVERGED = 3
    INTERNAL = 4
    INTERRUPTED = 130


class FitdocError(Exception):
    """A user's mistake (bad input or usage): one line, exit code 2.

    `path` names the file and `field` the key or column at fault, so the CLI
    can print `error: FILE: FIELD: message` without a traceback. `more` holds
    further `(field, message)` problems found in the same file (a config with
    three mistakes): `lines()` gives each its own line. `str()` is the same
    text, so an error raised through the Python API names its file too.
    """

    exit_code = ExitCode.BAD_INPUT

    def __init__(
        self,
        message: str,
        *,
        path: object | None = None,
        field: str | None = None,
        more: Sequence[tuple[str | None, str]] = (),
    ):
        super().__init__(message)
        self.message = message
        self.path = None if path is None else str(path)
        self.field = field
        self.more = tuple(more)

    def one_line(self) -> str:
        """The first (often the only) problem: `FILE: FIELD: message`."""
        return _join(self.path, self.field, self.message)

    def lines(self) -> list[str]:
        """Every problem, one line each, each naming the file and its field."""
        return [self.one_line(), *(_join(self.path, field, message) for field, message in self.more)]

    def __str__(self) -> str:
        return "\n".join(self.lines())


def _join(path: str | None, field: str | None, message: str) -> str:
    text = ": ".join([*(p for p in (path, field) if p), message])
    return " ".join(text.split())


class ConfigError(FitdocError):
    """The YAML config is unreadable or does not validate."""


class DataError(FitdocError):
    """A data file (CSV/Parquet) or a synthetic data spec is unusable."""


class HistoryError(FitdocError):
    """A history file cannot be read into curves."""


class MissingDependencyError(FitdocError):
    """An optional extra (tensorflow, pyarrow) is needed but not installed."""


def did_you_mean(word: str, options: list[str]) -> str:
    """ "; did you mean 'x'?" for the closest option, else "; expected one of: a, b" (empty: "")."""
    import difflib

    close = difflib.get_close_matches(word, options, n=1, cutoff=0.5)
    if close:
        return f"; did you mean '{close[0]}'?"
    return f"; expected one of: {', '.join(options)}" if options else ""

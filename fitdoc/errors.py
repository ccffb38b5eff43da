"""Errors a user can cause, and the exit codes the CLI maps them to."""

from __future__ import annotations

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
    can print `error: FILE: FIELD: message` without a traceback.
    """

    exit_code = ExitCode.BAD_INPUT

    def __init__(self, message: str, *, path: object | None = None, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.path = None if path is None else str(path)
        self.field = field

    def one_line(self) -> str:
        parts = [p for p in (self.path, self.field) if p]
        text = ": ".join([*parts, self.message])
        return " ".join(text.split())


class ConfigError(FitdocError):
    """The YAML config is unreadable or does not validate."""


class DataError(FitdocError):
    """A data file (CSV/Parquet) or a synthetic data spec is unusable."""


class HistoryError(FitdocError):
    """A history file cannot be read into curves."""


class MissingDependencyError(FitdocError):
    """An optional extra (tensorflow, pyarrow) is needed but not installed."""

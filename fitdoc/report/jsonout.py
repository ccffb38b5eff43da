"""Machine-readable output: the documented, versioned JSON of docs/json-schema.md."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from fitdoc.errors import FitdocError
from fitdoc.formatting import jsonable
from fitdoc.verdict import SCHEMA_VERSION, Diagnosis


def diagnoses_to_json(diagnoses: Sequence[Diagnosis], errors: Iterable[FitdocError] = ()) -> str:
    """`{"schema_version", "kind": "diagnosis", "results": [...], "errors": [...]}`.

    One result per readable path (`Diagnosis.to_dict()`), one error per path that
    could not be read, so a CI step sees every path it asked about.
    """
    document = {
        "schema_version": SCHEMA_VERSION,
        "kind": "diagnosis",
        "results": [d.to_dict() for d in diagnoses],
        "errors": [error_to_dict(e) for e in errors],
    }
    return dumps(document)


def error_to_dict(error: FitdocError) -> dict[str, Any]:
    return {
        "path": error.path,
        "field": error.field,
        "message": error.message,
        "exit_code": int(error.exit_code),
    }


def dumps(document: Any) -> str:
    """Stable text: fixed key order, two-space indent, no NaN (invalid JSON), trailing newline."""
    return json.dumps(jsonable(document), indent=2, ensure_ascii=False, allow_nan=False) + "\n"

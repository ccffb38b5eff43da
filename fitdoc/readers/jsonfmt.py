"""JSON histories -> named columns (placeholder, filled in below)."""

from __future__ import annotations

from typing import Any

from fitdoc.errors import HistoryError
from fitdoc.readers.tabular import Table


def table_from_json(obj: Any, path: object, fmt: str | None) -> Table:
    raise HistoryError("JSON histories are not supported yet", path=path)

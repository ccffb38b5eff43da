"""Bytes -> text -> CSV segments, robust to what real history files contain.

Handles BOMs, UTF-16, non-UTF-8 bytes (read as Latin-1), CRLF and `\\r\\r\\n`
line endings, empty rows, `,` `;` tab and `|` delimiters, and header lines
repeated inside the file (appended runs), which start a new segment.
"""

from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass
from pathlib import Path

from fitdoc.errors import HistoryError

_DELIMITERS = (",", ";", "\t", "|")
_MISSING = frozenset({"", "na", "nan", "n/a", "none", "null", "-", "--", "?"})
_MAX_BYTES = 512 * 1024 * 1024


@dataclass(frozen=True)
class Segment:
    """One header and the rows under it, cells as floats (NaN when missing or text)."""

    header: tuple[str, ...]
    columns: tuple[list[float], ...]
    text_columns: frozenset[int]
    n_rows: int


def read_bytes(path: Path) -> bytes:
    try:
        if path.is_dir():
            raise HistoryError("is a directory, not a history file", path=path)
        data = path.read_bytes()
    except FileNotFoundError:
        raise HistoryError("no such file", path=path) from None
    except OSError as exc:
        raise HistoryError(f"cannot read file ({exc.strerror or exc})", path=path) from None
    if len(data) > _MAX_BYTES:
        raise HistoryError(f"file too large ({len(data)} bytes) for a history", path=path)
    return data


def decode(data: bytes, path: object) -> str:
    """Decode a history file's bytes; refuse empty and binary files."""
    if not data.strip():
        raise HistoryError("empty file: no history in it", path=path)
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            text = data.decode("utf-16")
        except UnicodeDecodeError:
            raise HistoryError("not a text file (bad UTF-16)", path=path) from None
    elif data.startswith(b"\xef\xbb\xbf"):
        text = data[3:].decode("utf-8", errors="replace")
    else:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            # Histories written on Windows are often cp1252/Latin-1; Latin-1 never fails.
            text = data.decode("latin-1")
    if "\x00" in text or _control_share(text) > 0.05:
        raise HistoryError("binary file: not a text history (CSV or JSON expected)", path=path)
    return text.lstrip("\ufeff")


_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f]")


def _control_share(text: str) -> float:
    sample = text[:4096]
    return len(_CONTROL.findall(sample)) / max(len(sample), 1)


def split_lines(text: str) -> list[str]:
    """Non-empty lines; `\\r\\r\\n`, CRLF and lone CR all end a line."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return [ln for ln in lines if ln.strip()]


def sniff_delimiter(header_line: str) -> str | None:
    counts = [(header_line.count(d), d) for d in _DELIMITERS]
    best = max(counts)
    if best[0] > 0:
        return best[1]
    return None


def parse_number(cell: str) -> float | None:
    """The cell as a float (inf and NaN kept), NaN when missing, None when text."""
    s = cell.strip().strip('"').strip()
    try:
        return float(s)
    except ValueError:
        pass
    low = s.lower()
    if low in _MISSING:
        return math.nan
    if "," in s and "." not in s:
        # Decimal comma (European locales, usually with `;` delimiters).
        try:
            return float(s.replace(",", "."))
        except ValueError:
            return None
    if low.startswith("tensor(") and low.endswith(")"):
        # PyTorch users sometimes log `tensor(0.1234)` strings.
        return parse_number(s[7:-1].split(",")[0])
    return None


def parse_csv(text: str, path: object) -> list[Segment]:
    """Split CSV text into segments at repeated (or new) header lines."""
    lines = split_lines(text)
    if not lines:
        raise HistoryError("empty file: no history in it", path=path)
    delimiter = sniff_delimiter(lines[0])
    if delimiter is None:
        rows = [ln.split() for ln in lines] if len(lines[0].split()) > 1 else [[ln] for ln in lines]
    else:
        try:
            rows = list(csv.reader(lines, delimiter=delimiter, skipinitialspace=True))
        except csv.Error as exc:
            raise HistoryError(f"malformed CSV ({exc})", path=path) from None
    segments: list[Segment] = []
    header: list[str] | None = None
    body: list[list[float | None]] = []
    for row in rows:
        if header is not None:
            try:
                # Fast path: an all-numeric row (the common case by far).
                body.append([float(c) for c in row])
                continue
            except ValueError:
                pass
        parsed = [parse_number(c) for c in row]
        numeric = sum(1 for v in parsed if v is not None and not math.isnan(v))
        texts = sum(1 for v, c in zip(parsed, row, strict=True) if v is None and c.strip())
        is_header = numeric == 0 and texts >= 2 and texts >= len(row) // 2
        if header is None or is_header or [c.strip() for c in row] == header:
            if header is not None and body:
                segments.append(_segment(header, body))
            header = [c.strip() for c in row]
            body = []
            continue
        if all(not c.strip() for c in row):
            continue
        body.append(parsed)
    if header is not None and body:
        segments.append(_segment(header, body))
    if not segments:
        raise HistoryError("no data rows: the file holds only a header", path=path)
    return segments


def _segment(header: list[str], body: list[list[float | None]]) -> Segment:
    width = len(header)
    names = _unique(header)
    nan = math.nan
    if all(len(r) == width for r in body) and not any(None in r for r in body):
        columns = [list(col) for col in zip(*body, strict=True)]
        return Segment(tuple(names), tuple(columns), frozenset(), len(body))  # type: ignore[arg-type]
    columns_: list[list[float]] = [[] for _ in range(width)]
    text_cols: set[int] = set()
    for parsed in body:
        for j in range(width):
            v = parsed[j] if j < len(parsed) else nan
            if v is None:
                text_cols.add(j)
                v = nan
            columns_[j].append(v)
    # A column is text when it has text cells and no number at all.
    text_only = frozenset(j for j in text_cols if all(math.isnan(v) for v in columns_[j]))
    return Segment(tuple(names), tuple(columns_), text_only, len(body))


def _unique(header: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out: list[str] = []
    for i, name in enumerate(header):
        name = name or ("" if i == 0 else f"column_{i}")
        if name in seen:
            seen[name] += 1
            name = f"{name}.{seen[name]}"
        else:
            seen[name] = 0
        out.append(name)
    return out

"""How often fitdoc agrees with a practitioner's reading of real training histories.

The histories and their readings are in `benchmarks/real_logs/` (see its
PROTOCOL.md: every reading was committed before fitdoc ran on any file).
This runs fitdoc's Python API on every file of the manifest and prints, per
file, the reading next to fitdoc's verdict, then:

- agreement on the files read `clear` (`inconclusive` counts as a miss);
- precision when fitdoc commits to a verdict on a clear file;
- the share of `inconclusive` answers;
- a confusion table (reading x verdict) on the clear files;
- the files fitdoc refuses (a FitdocError: exit 2 on the CLI) and the ones
  that crash (any other exception: exit 4 on the CLI);
- agreement on clear files per reading class, per gathering, and per kind of
  run the later gatherings looked for (`GATHERINGS.tsv`; files not listed
  there are the first gathering).

The series a practitioner judged are the manifest's `train_col`/`val_col`;
when fitdoc's automatic pick is a different column, the file is diagnosed
again with those columns and that verdict is scored (the table marks it).

    PYTHONPATH=$PWD python benchmarks/real_logs_agreement.py [--only-disagreements] [--json OUT]
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import traceback
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE / "real_logs"
MANIFEST = ROOT / "MANIFEST.tsv"
GATHERINGS = ROOT / "GATHERINGS.tsv"
FILES = ROOT / "files"
CLASSES = ("overfit", "underfit", "balanced")
VERDICTS = (*CLASSES, "inconclusive")


@dataclass
class Row:
    name: str
    reading: str
    clarity: str
    verdict: str  # a verdict, "error" (FitdocError, exit 2) or "crash" (exit 4)
    cause: str | None = None
    confidence: float | None = None
    auto_cols: str = ""
    used_cols: str = ""
    overridden: bool = False
    message: str = ""
    gathering: str = "1"
    kind: str = ""


def read_gatherings(path: Path = GATHERINGS) -> dict[str, tuple[str, str]]:
    """name -> (gathering, kind) for the files of later gatherings; the rest are gathering 1."""
    if not path.exists():
        return {}
    with path.open(newline="", encoding="utf-8") as fh:
        rows = csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
        return {r["name"]: (r["gathering"], r["kind"]) for r in rows}


def read_manifest(path: Path = MANIFEST) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE))


def _auto_columns(path: Path) -> tuple[str | None, str | None]:
    from fitdoc.history.load import read_history

    curves = read_history(path)
    return curves.train_name, curves.val_name


def diagnose_row(entry: dict[str, str]) -> Row:
    from fitdoc.api import diagnose
    from fitdoc.errors import FitdocError

    path = FILES / entry["name"]
    row = Row(entry["name"], entry["reading"], entry["clarity"], verdict="crash")
    want_train = entry["train_col"] or None
    want_val = entry["val_col"] or None
    try:
        try:
            auto_train, auto_val = _auto_columns(path)
            row.auto_cols = f"{auto_train}/{auto_val}"
            diagnosis = diagnose(path)
            differs = (want_val is not None and want_val != auto_val) or (
                want_train is not None and want_train != auto_train
            )
        except FitdocError as exc:
            # No automatic pick at all (say, accuracies only): the manifest's columns are the last try.
            if want_val is None:
                raise
            row.auto_cols = "refused"
            row.message = f"automatic pick refused: {exc.message}"
            diagnosis, differs = None, True
        if differs:
            try:
                diagnosis = diagnose(path, train_col=want_train, val_col=want_val)
                row.overridden = True
            except FitdocError as exc:
                if diagnosis is None:
                    raise
                row.message = f"manifest columns refused: {exc.one_line()}"
        row.verdict = diagnosis.verdict.value
        row.cause = None if diagnosis.cause is None else diagnosis.cause.value
        row.confidence = round(float(diagnosis.confidence), 3)
        row.used_cols = f"{want_train}/{want_val}" if row.overridden else row.auto_cols
    except FitdocError as exc:
        row.verdict = "error"
        row.message = exc.one_line()
    except Exception as exc:  # a crash is what this column reports
        row.verdict = "crash"
        last = traceback.extract_tb(exc.__traceback__)[-1]
        row.message = f"{type(exc).__name__}: {exc} ({Path(last.filename).name}:{last.lineno})"
    return row


def _pct(num: int, den: int) -> str:
    return f"{num}/{den} = {num / den:.0%}" if den else f"{num}/0"


@dataclass
class Totals:
    files: int
    clear: int
    agree_clear: int
    committed_clear: int
    right_when_committed: int
    inconclusive_clear: int
    inconclusive_all: int
    guessed: int
    agree_guessed: int
    unclear_read: int
    unclear_read_inconclusive: int
    overridden: int
    errors: list[tuple[str, str]]
    crashes: list[tuple[str, str]]


def summarize(rows: list[Row]) -> Totals:
    clear = [r for r in rows if r.clarity == "clear"]
    guessed = [r for r in rows if r.clarity == "unclear" and r.reading in CLASSES]
    committed = [r for r in clear if r.verdict in CLASSES]
    return Totals(
        files=len(rows),
        clear=len(clear),
        agree_clear=sum(r.verdict == r.reading for r in clear),
        committed_clear=len(committed),
        right_when_committed=sum(r.verdict == r.reading for r in committed),
        inconclusive_clear=sum(r.verdict == "inconclusive" for r in clear),
        inconclusive_all=sum(r.verdict == "inconclusive" for r in rows),
        guessed=len(guessed),
        agree_guessed=sum(r.verdict == r.reading for r in guessed),
        unclear_read=sum(r.reading == "unclear" for r in rows),
        unclear_read_inconclusive=sum(r.reading == "unclear" and r.verdict == "inconclusive" for r in rows),
        overridden=sum(r.overridden for r in rows),
        errors=[(r.name, r.message) for r in rows if r.verdict == "error"],
        crashes=[(r.name, r.message) for r in rows if r.verdict == "crash"],
    )


def print_breakdown(rows: list[Row], out=sys.stdout) -> None:
    """Agreement on clear files by reading class, by gathering, and by the kind of run gathered."""
    clear = [r for r in rows if r.clarity == "clear"]

    def line(label: str, group: list[Row]) -> str:
        n_inc = sum(r.verdict == "inconclusive" for r in group)
        agree = sum(r.verdict == r.reading for r in group)
        return f"  {label:<38} {_pct(agree, len(group)):<14} inconclusive {n_inc}"

    print("\nAgreement on clear files by reading, gathering and kind:", file=out)
    for reading in CLASSES:
        print(line(f"reading {reading}", [r for r in clear if r.reading == reading]), file=out)
    for g in sorted({r.gathering for r in rows}):
        group = [r for r in clear if r.gathering == g]
        print(line(f"gathering {g}", group), file=out)
        for reading in CLASSES:
            sub = [r for r in group if r.reading == reading]
            if sub and g != "1":
                print(line(f"  gathering {g}, reading {reading}", sub), file=out)
        for kind in sorted({r.kind for r in group if r.kind}):
            print(line(f"  gathering {g}, kind {kind}", [r for r in group if r.kind == kind]), file=out)


def print_report(rows: list[Row], only_disagreements: bool = False, out=sys.stdout) -> Totals:
    w = max(len(r.name) for r in rows)
    print(f"{'file':<{w}}  {'reading':<9} {'clarity':<7}  {'fitdoc':<12} {'conf':>5}  columns", file=out)
    for r in rows:
        if only_disagreements and r.verdict == r.reading:
            continue
        mark = "=" if r.verdict == r.reading else ("x" if r.clarity == "clear" else "~")
        verdict = r.verdict + (f":{r.cause}" if r.cause and r.verdict == "underfit" else "")
        conf = "" if r.confidence is None else f"{r.confidence:.2f}"
        cols = r.used_cols + (" (manifest cols)" if r.overridden else "")
        extra = f"  [{r.message}]" if r.message else ""
        print(
            f"{r.name:<{w}}  {r.reading:<9} {r.clarity:<7}{mark} {verdict:<12} {conf:>5}  {cols}{extra}",
            file=out,
        )
    print("  (= agrees; x disagrees on a clear file; ~ differs from a reading that is not clear)", file=out)

    t = summarize(rows)
    clear = [r for r in rows if r.clarity == "clear"]
    print("\nConfusion on clear files (rows: reading, columns: fitdoc):", file=out)
    cols = (*VERDICTS, "error", "crash")
    print(f"  {'':<9} " + " ".join(f"{c:>12}" for c in cols), file=out)
    for reading in CLASSES:
        counts = Counter(r.verdict for r in clear if r.reading == reading)
        print(f"  {reading:<9} " + " ".join(f"{counts.get(c, 0):>12}" for c in cols), file=out)

    lines = [
        f"files: {t.files} ({t.clear} read clear, {t.unclear_read} read unclear)",
        f"agreement on clear files:          {_pct(t.agree_clear, t.clear)}",
        f"precision when fitdoc commits:     {_pct(t.right_when_committed, t.committed_clear)}"
        " (clear files, verdict other than inconclusive)",
        f"inconclusive on clear files:       {_pct(t.inconclusive_clear, t.clear)}",
        f"inconclusive on all files:         {_pct(t.inconclusive_all, t.files)}",
        f"agreement on best guesses:         {_pct(t.agree_guessed, t.guessed)}"
        " (read overfit/underfit/balanced, not clear)",
        f"read unclear, fitdoc inconclusive: {_pct(t.unclear_read_inconclusive, t.unclear_read)}",
        f"diagnosed with the manifest's columns: {t.overridden}",
        f"refused (FitdocError, exit 2): {len(t.errors)}",
        *(f"  {name}: {msg}" for name, msg in t.errors),
        f"crashed (exit 4): {len(t.crashes)}",
        *(f"  {name}: {msg}" for name, msg in t.crashes),
    ]
    print("\nTotals", file=out)
    for line in lines:
        print("  " + line, file=out)
    print_breakdown(rows, out=out)
    return t


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--only-disagreements", action="store_true", help="list only rows where fitdoc differs"
    )
    parser.add_argument("--json", type=Path, help="also write every row and the totals to this JSON file")
    args = parser.parse_args(argv)
    gatherings = read_gatherings()
    rows = [diagnose_row(entry) for entry in read_manifest()]
    for r in rows:
        r.gathering, r.kind = gatherings.get(r.name, ("1", ""))
    summary = print_report(rows, only_disagreements=args.only_disagreements)
    if args.json is not None:
        args.json.write_text(
            json.dumps({"rows": [asdict(r) for r in rows], "totals": asdict(summary)}, indent=2) + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

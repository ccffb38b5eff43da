"""The real training histories of benchmarks/real_logs: every file is read by
`fitdoc diagnose --format json` without a crash (exit 0 or 2, never 4 or a
traceback), and the manifest and the files match one to one.

One CLI call diagnoses every file, so this stays fast; the agreement with the
practitioner's readings is measured by benchmarks/real_logs_agreement.py, not
asserted here.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
REAL = REPO / "benchmarks" / "real_logs"
FILES = REAL / "files"
COLUMNS = [
    "name",
    "format",
    "repo",
    "path",
    "commit",
    "task",
    "train_col",
    "val_col",
    "reading",
    "clarity",
    "reading_note",
]
FORMATS = {
    "keras_csvlogger",
    "pandas_history",
    "history_json",
    "lightning_metrics",
    "hf_trainer_state",
    "other",
}


def _manifest() -> list[dict[str, str]]:
    with (REAL / "MANIFEST.tsv").open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
        assert reader.fieldnames == COLUMNS
        return list(reader)


def _files() -> list[str]:
    return sorted(p.relative_to(FILES).as_posix() for p in FILES.rglob("*") if p.is_file())


def _run_fitdoc(paths: list[Path]) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    return subprocess.run(
        [sys.executable, "-m", "fitdoc", "diagnose", *map(str, paths), "--format", "json"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=300,
    )


def test_manifest_and_files_match_one_to_one():
    rows = _manifest()
    names = [r["name"] for r in rows]
    assert len(names) == len(set(names)), "duplicate names in MANIFEST.tsv"
    assert sorted(names) == _files()
    assert len(rows) >= 100


def test_manifest_rows_are_well_formed():
    sources = set()
    for r in _manifest():
        assert r["format"] in FORMATS, r["name"]
        assert r["name"].startswith(r["format"] + "/"), r["name"]
        assert r["task"] in {"regression", "classification", "unknown"}, r["name"]
        assert r["reading"] in {"overfit", "underfit", "balanced", "unclear"}, r["name"]
        assert r["clarity"] in {"clear", "unclear"}, r["name"]
        assert not (r["reading"] == "unclear" and r["clarity"] == "clear"), r["name"]
        assert r["val_col"], r["name"]
        assert r["reading_note"].strip(), r["name"]
        assert len(r["commit"]) == 40 and "/" in r["repo"], r["name"]
        sources.add((r["repo"], r["path"]))
        assert (FILES / r["name"]).stat().st_size <= 500_000, r["name"]
    assert len(sources) == len(_manifest()), "the same source file is in the manifest twice"
    assert sum(p.stat().st_size for p in FILES.rglob("*") if p.is_file()) < 8_000_000


def test_every_real_log_is_diagnosed_without_a_crash():
    rows = _manifest()
    paths = [FILES / r["name"] for r in rows]
    proc = _run_fitdoc(paths)
    if proc.returncode not in (0, 2):
        # Name the culprits: a crash aborts the whole batch, so retry file by file.
        bad = []
        for path in paths:
            one = _run_fitdoc([path])
            if one.returncode not in (0, 2) or "Traceback" in one.stderr:
                bad.append(f"{path.relative_to(FILES)}: exit {one.returncode}: {one.stderr.strip()[-300:]}")
        pytest.fail(f"fitdoc diagnose exited {proc.returncode}; failing files:\n" + "\n".join(bad))
    assert "Traceback" not in proc.stderr
    document = json.loads(proc.stdout)
    results, errors = document["results"], document["errors"]
    # Every path is accounted for: one result (a verdict) or one error line (exit 2) per file.
    assert len(results) + len(errors) == len(paths)
    assert all(e["exit_code"] == 2 for e in errors)
    assert {r["verdict"] for r in results} <= {"overfit", "underfit", "balanced", "inconclusive"}
    reported = {Path(r["source"]).name for r in results} | {Path(e["path"]).name for e in errors}
    assert reported == {p.name for p in paths}

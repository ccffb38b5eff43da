"""How well the rule engine labels the shared labelled corpus (shared/corpus/labeled).

An outside check: the combiner is fitted on the corpus factory's runs
(benchmarks/calibrate.py), never on these.

Runs `diagnose_curves` over every labelled run, with and without the run's
config, beside a plain gap-ratio rule (final val/train MAE > 1.1 means
overfit, else balanced), and prints per-class precision, recall and F1, the
macro-F1 over the three labels, the cause accuracy on underfit runs, the same
scores per dataset and per seed (the thresholds were not fit per split), the
time per history, and a compact markdown table of it all for the README.

One known artifact is counted, not hidden: the labeller could not train the
final cut (epoch 200, the runs' end) to twice its epochs, so "not converged"
is never a label there, while the engine may rightly see val still falling.
The table reports how many balanced runs at the final cut the engine calls
"underfit (not converged)".

Runs labelled `ambiguous` (their best change helped by 5-10 %: neither clearly
balanced nor clearly not) are left out of scoring, as the corpus README says.
An `inconclusive` verdict on a labelled run counts as a miss for its class.

    python benchmarks/diagnosis_quality.py [--corpus PATH]
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CORPUS = REPO.parent / "shared" / "corpus" / "labeled"
LABELS = ("overfit", "underfit", "balanced")


@dataclass(frozen=True)
class Case:
    name: str
    label: str
    cause: str
    curves: Any
    config: Any


def read_curves(path: Path) -> Any:
    """The team's reader when it is there; else a plain CSVLogger read."""
    try:
        from fitdoc.history.load import read_history
    except ImportError:
        return _read_csvlogger(path)
    return read_history(path)


def _read_csvlogger(path: Path) -> Any:
    import numpy as np

    from fitdoc.history.curves import Curves

    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))

    def col(name: str) -> np.ndarray | None:
        if not rows or name not in rows[0]:
            return None
        return np.array([float(r[name]) if r[name] not in ("", None) else np.nan for r in rows])

    # `test_mae` (true generalization) is deliberately never read.
    return Curves(
        epochs=col("epoch"),
        train=col("mae"),
        val=col("val_mae"),
        metric="mae",
        train_name="mae",
        val_name="val_mae",
        train_loss=col("loss"),
        val_loss=col("val_loss"),
        source=str(path),
        format="keras_csvlogger",
    )


def load_cases(corpus: Path) -> list[Case]:
    from fitdoc.config import load_config

    cases = []
    with (corpus / "labels.tsv").open(newline="") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            if row["label"] not in LABELS:
                continue
            run = corpus / "runs" / row["name"]
            config = load_config(run / "config.yaml", model_only=True)
            cases.append(
                Case(row["name"], row["label"], row["cause"], read_curves(run / "history.csv"), config)
            )
    return cases


def engine(with_config: bool, thresholds: Any = None) -> Callable[[Case], tuple[str, str]]:
    from fitdoc.diagnosis.decide import diagnose_curves

    def predict(case: Case) -> tuple[str, str]:
        d = diagnose_curves(case.curves, case.config if with_config else None, thresholds)
        return d.verdict.value, "" if d.cause is None else d.cause.value

    return predict


def gap_ratio_baseline(case: Case) -> tuple[str, str]:
    train, val = case.curves.train, case.curves.val
    return ("overfit" if val[-1] / train[-1] > 1.1 else "balanced"), ""


def scores(truth: Sequence[str], pred: Sequence[str]) -> dict[str, tuple[float, float, float, int]]:
    out = {}
    for label in LABELS:
        tp = sum(t == p == label for t, p in zip(truth, pred, strict=True))
        n_pred = sum(p == label for p in pred)
        n_true = sum(t == label for t in truth)
        precision = tp / n_pred if n_pred else 0.0
        recall = tp / n_true if n_true else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        out[label] = (precision, recall, f1, n_true)
    return out


def macro_f1(table: dict[str, tuple[float, float, float, int]]) -> float:
    return sum(v[2] for v in table.values()) / len(table)


def report(title: str, cases: Sequence[Case], preds: Sequence[tuple[str, str]]) -> list[str]:
    truth = [c.label for c in cases]
    verdicts = [p[0] for p in preds]
    table = scores(truth, verdicts)
    lines = [f"{title}  (n={len(cases)}, macro-F1 {macro_f1(table):.3f})"]
    lines.append(f"  {'class':<10}{'precision':>10}{'recall':>8}{'F1':>7}{'n':>6}")
    for label, (p, r, f, n) in table.items():
        lines.append(f"  {label:<10}{p:>10.2f}{r:>8.2f}{f:>7.2f}{n:>6}")
    inconclusive = verdicts.count("inconclusive")
    underfit = [
        (c, p) for c, p in zip(cases, preds, strict=True) if c.label == "underfit" and p[0] == "underfit"
    ]
    if underfit:
        right = sum(c.cause == p[1] for c, p in underfit)
        lines.append(
            f"  cause right on {right}/{len(underfit)} underfit runs labelled underfit; "
            f"{inconclusive} inconclusive"
        )
    return lines


def confusion(cases: Sequence[Case], preds: Sequence[tuple[str, str]]) -> list[str]:
    truth_keys = sorted({f"{c.label}:{c.cause}".rstrip(":") for c in cases})
    pred_keys = sorted({f"{p[0]}:{p[1]}".rstrip(":") for p in preds})
    width = max(len(k) for k in pred_keys) + 2
    lines = ["  truth \\ verdict".ljust(28) + "".join(k.rjust(width) for k in pred_keys)]
    for t in truth_keys:
        row = [
            sum(
                f"{c.label}:{c.cause}".rstrip(":") == t and f"{p[0]}:{p[1]}".rstrip(":") == k
                for c, p in zip(cases, preds, strict=True)
            )
            for k in pred_keys
        ]
        lines.append(f"  {t:<26}" + "".join(str(v).rjust(width) for v in row))
    return lines


SPLITS: dict[str, Callable[[Case], bool]] = {
    "friedman1 runs": lambda c: c.name.startswith("friedman1"),
    "wave runs": lambda c: c.name.startswith("wave"),
    "seed 1 (-s1-)": lambda c: "-s1-" in c.name,
    "seed 2 (-s2-)": lambda c: "-s2-" in c.name,
    "cut at epoch 20": lambda c: c.name.endswith("-e20"),
    "cut at epoch 60": lambda c: c.name.endswith("-e60"),
    "full 200 epochs": lambda c: c.name.endswith("-e200"),
}


def markdown_table(
    cases: Sequence[Case],
    all_preds: dict[str, list[tuple[str, str]]],
    split_f1: dict[str, tuple[float, float]],
) -> list[str]:
    """The README table: per-class P/R and macro-F1 per method, then the split checks."""
    truth = [c.label for c in cases]
    counts = {label: truth.count(label) for label in LABELS}
    head = " | ".join(f"{label} P / R (n={counts[label]})" for label in LABELS)
    lines = [f"| method | {head} | macro-F1 |", "| --- |" + " --- |" * (len(LABELS) + 1)]
    for title, preds in all_preds.items():
        table = scores(truth, [p[0] for p in preds])
        cells = " | ".join(f"{table[label][0]:.2f} / {table[label][1]:.2f}" for label in LABELS)
        lines.append(f"| {title} | {cells} | {macro_f1(table):.3f} |")
    lines += [
        "",
        "| split | n (overfit / underfit / balanced) | macro-F1 with configs | curves only |",
        "| --- | --- | --- | --- |",
    ]
    for split, (f_cfg, f_raw) in split_f1.items():
        sub = [c.label for c in cases if SPLITS[split](c)]
        n = " / ".join(str(sub.count(label)) for label in LABELS)
        lines.append(f"| {split} | {len(sub)} ({n}) | {f_cfg:.3f} | {f_raw:.3f} |")
    lines.append("")
    lines.append("A class with no runs in a split scores F1 0 there.")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    args = parser.parse_args(argv)
    if not (args.corpus / "labels.tsv").is_file():
        print(f"no labelled corpus at {args.corpus}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    cases = load_cases(args.corpus)
    read_s = time.perf_counter() - started

    out: list[str] = []
    methods = {
        "engine, with configs": engine(True),
        "engine, curves only": engine(False),
        "baseline: final val/train MAE > 1.1 -> overfit": gap_ratio_baseline,
    }
    all_preds = {}
    for title, predict in methods.items():
        t0 = time.perf_counter()
        preds = [predict(c) for c in cases]
        elapsed = time.perf_counter() - t0
        all_preds[title] = preds
        out += report(title, cases, preds)
        if title.startswith("engine"):
            out.append(
                f"  {1000 * elapsed / len(cases):.3f} ms per history (features, rules, verdict, suggestion)"
            )
        out.append("")
    out.append("confusion, engine with configs:")
    out += confusion(cases, all_preds["engine, with configs"])
    out.append("")
    out.append("splits (same thresholds; macro-F1 with configs / curves only):")
    splits = SPLITS
    split_f1 = {}
    for split, keep in splits.items():
        idx = [i for i, c in enumerate(cases) if keep(c)]
        sub = [cases[i] for i in idx]
        f_cfg = macro_f1(
            scores([c.label for c in sub], [all_preds["engine, with configs"][i][0] for i in idx])
        )
        f_raw = macro_f1(
            scores([c.label for c in sub], [all_preds["engine, curves only"][i][0] for i in idx])
        )
        split_f1[split] = (f_cfg, f_raw)
        out.append(f"  {split:<18} n={len(sub):<4} {f_cfg:.3f} / {f_raw:.3f}")
    out.append("")
    out.append(f"read {len(cases)} labelled runs in {read_s:.2f} s (ambiguous runs excluded)")
    out.append("")
    out.append("README table (markdown):")
    out.append("")
    out += markdown_table(cases, all_preds, split_f1)
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

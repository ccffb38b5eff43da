"""The regression guard: a refit of the combiner is written only if it loses nothing beyond noise.

It compares a refit (today's code and corpus, fitted by `calibrate.py`'s own
procedure) with the committed model (`fitdoc/diagnosis/rules/combiner.json`)
on:

- every family, left out: the refit's leave-one-family-out macro-F1 (with
  configs and from curves alone) against the held-out numbers recorded when
  the committed model was written (`benchmarks/guard_baseline.json`), on the
  same runs: the baseline records the paths it was measured on, and a grown
  corpus is scored on those (trained on all of it); the new paths' runs are
  printed beside, as new measures that nothing recorded can refuse;
- the advice, held out the same way: share of the best one-step gain
  captured and share of suggestions >= 5 % harmful;
- the shared labelled corpus (`../shared/corpus/labeled`), each model as
  fitted: macro-F1 with configs and from curves alone;
- the real logs (`benchmarks/real_logs/`), which no fit ever sees: agreement
  on the clear ones and share right where a verdict is committed.

Each difference is set against its noise: one bootstrap standard deviation
(resampling the corpus' paths, the shared corpus' runs) or, for the real
logs, the binomial one. A refit that lowers any measure by more than its
noise (`--tolerance` of them) is refused: exit 1, nothing written. Otherwise
`--write` writes the refit's weights and the new held-out record.

    python benchmarks/guard.py [--write] [--tolerance 1.0]
    python benchmarks/calibrate.py --write   # the same guard, on calibrate's own fit
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.calibrate import (  # noqa: E402
    SHARED_CORPUS,
    SHARED_FAMILY,
    Prediction,
    Sample,
    advice_outcome,
    decide_with,
    leave_one_family_out,
    load_samples,
    load_shared_samples,
    refit_combiner,
    scores,
)
from benchmarks.corpus.labels import Member  # noqa: E402
from benchmarks.corpus.store import DATA_DIR  # noqa: E402

BASELINE = REPO / "benchmarks" / "guard_baseline.json"
DRAWS = 200


@dataclass
class Measure:
    name: str
    committed: float
    refit: float
    noise: float
    higher_is_better: bool = True

    @property
    def loss(self) -> float:
        """How much worse the refit is (positive: worse)."""
        d = self.committed - self.refit
        return d if self.higher_is_better else -d

    def refused(self, tolerance: float) -> bool:
        return math.isfinite(self.committed) and self.loss > tolerance * self.noise + 1e-9


def _group(p: Prediction) -> str:
    # The shared corpus is one "path": resample its runs instead.
    return p.sample.run.name if p.sample.run.family == SHARED_FAMILY else p.sample.run.path_key


def bootstrap_sd(
    items: Sequence[Any], key: Callable[[Any], str], metric: Callable[[list[Any]], float]
) -> float:
    groups: dict[str, list[Any]] = {}
    for item in items:
        groups.setdefault(key(item), []).append(item)
    names = sorted(groups)
    if len(names) < 2:
        return 0.0
    rng = np.random.default_rng(0)
    values = []
    for _ in range(DRAWS):
        pick = rng.choice(len(names), size=len(names))
        values.append(metric([x for i in pick for x in groups[names[i]]]))
    finite = [v for v in values if math.isfinite(v)]
    return float(np.std(finite)) if finite else 0.0


def f1_of(preds: Sequence[Prediction]) -> float:
    return float(scores(preds)["macro_f1"])


def held_out_measures(
    preds: list[Prediction], members: dict[str, list[Member]]
) -> dict[str, tuple[float, float]]:
    """(value, noise) of every held-out measure: per family and overall F1, the advice."""
    out: dict[str, tuple[float, float]] = {}
    for with_config, tag in ((True, "config"), (False, "curves")):
        mine = [p for p in preds if p.with_config is with_config]
        out[f"all families, F1 {tag}"] = (f1_of(mine), bootstrap_sd(mine, _group, f1_of))
        for family in sorted({p.sample.run.family for p in mine}):
            fam = [p for p in mine if p.sample.run.family == family]
            out[f"{family} left out, F1 {tag}"] = (f1_of(fam), bootstrap_sd(fam, _group, f1_of))
    rows = []
    for p in preds:
        if p.with_config and p.verdict != "inconclusive" and p.sample.run.path_key in members:
            gain = advice_outcome(p, members)
            if gain is not None:
                best = max(p.sample.run.label.gains.values())
                rows.append(
                    (
                        p.sample.run.path_key,
                        max(-1.0, gain / best) if best >= 0.10 else math.nan,
                        gain <= -0.05,
                    )
                )

    def captured(rs: list[Any]) -> float:
        values = [c for _, c, _ in rs if math.isfinite(c)]
        return float(np.mean(values)) if values else math.nan

    def harmful(rs: list[Any]) -> float:
        return float(np.mean([h for _, _, h in rs])) if rs else math.nan

    out["advice captured"] = (captured(rows), bootstrap_sd(rows, lambda r: r[0], captured))
    out["advice harmful"] = (harmful(rows), bootstrap_sd(rows, lambda r: r[0], harmful))
    return out


def shared_measures(combiner: Any, shared: list[Sample]) -> dict[str, tuple[float, float]]:
    out = {}
    for with_config, tag in ((True, "config"), (False, "curves")):
        preds = [decide_with(combiner, s, with_config) for s in shared]
        out[f"shared corpus, F1 {tag}"] = (
            f1_of(preds),
            bootstrap_sd(preds, lambda p: p.sample.run.name, f1_of),
        )
    return out


@contextmanager
def using_combiner(combiner: Any) -> Iterator[None]:
    """Every diagnose call inside uses this combiner (the real-logs benchmark goes through the API)."""
    import fitdoc.diagnosis.decide as decide

    saved = decide.default_combiner
    decide.default_combiner = lambda: combiner  # type: ignore[assignment]
    try:
        yield
    finally:
        decide.default_combiner = saved  # type: ignore[assignment]


def real_log_measures(combiner: Any) -> dict[str, tuple[float, float]]:
    from benchmarks.real_logs_agreement import diagnose_row, read_manifest, summarize

    with using_combiner(combiner):
        totals = summarize([diagnose_row(entry) for entry in read_manifest()])

    def share(k: int, n: int) -> tuple[float, float]:
        p = k / n if n else math.nan
        return p, math.sqrt(p * (1 - p) / n) if n else 0.0

    return {
        "real logs, agreement on clear": share(totals.agree_clear, totals.clear),
        "real logs, right when committed": share(totals.right_when_committed, totals.committed_clear),
        "real logs, crashes": (float(len(totals.crashes)), 0.0),
    }


def compare(
    samples: list[Sample], preds: list[Prediction], members: dict[str, list[Member]], refit: Any
) -> list[Measure]:
    baseline = json.loads(BASELINE.read_text()) if BASELINE.is_file() else {}
    recorded = baseline.get("held_out", {})
    committed = committed_combiner()
    measures = []
    seen, grown = split_by_baseline(preds, baseline)
    for name, (value, noise) in held_out_measures(seen, members).items():
        measures.append(Measure(name, recorded.get(name, math.nan), value, noise, name != "advice harmful"))
    if grown:
        for name, (value, noise) in held_out_measures(grown, members).items():
            if name.startswith(("all families", "advice")):
                measures.append(
                    Measure(f"{name} (new paths)", math.nan, value, noise, name != "advice harmful")
                )
    shared = [s for s in samples if s.run.family == SHARED_FAMILY]
    if shared:
        new = shared_measures(refit, shared)
        old = shared_measures(committed, shared) if committed else as_recorded(baseline, new)
        measures += [Measure(k, old[k][0], new[k][0], new[k][1]) for k in new]
    new = real_log_measures(refit)
    old = real_log_measures(committed) if committed else as_recorded(baseline, new)
    for k in new:
        measures.append(
            Measure(k, old[k][0], new[k][0], max(old[k][1], new[k][1]), k != "real logs, crashes")
        )
    return measures


def split_by_baseline(
    preds: list[Prediction], baseline: dict[str, Any]
) -> tuple[list[Prediction], list[Prediction]]:
    """(predictions on the paths the baseline was measured on, on paths added since). A
    baseline that recorded no paths was measured on everything there is."""
    keys = set(baseline.get("paths", ()))
    if not keys:
        return preds, []
    return [p for p in preds if p.sample.run.path_key in keys], [
        p for p in preds if p.sample.run.path_key not in keys
    ]


def committed_combiner() -> Any:
    """The committed combiner, or None when it was fitted on other evidence terms than
    today's code builds (then its measures as fitted, recorded in the baseline, stand in)."""
    from fitdoc.diagnosis.rules.combiner import default_combiner

    try:
        return default_combiner()
    except ValueError:
        print("the committed combiner is for other evidence: its recorded measures stand in")
        return None


def as_recorded(baseline: dict[str, Any], names: dict[str, Any]) -> dict[str, tuple[float, float]]:
    """The committed model's shared-corpus and real-log measures as recorded when it was written."""
    fitted = baseline.get("as_fitted", {})
    return {k: tuple(fitted.get(k, (math.nan, math.nan))) for k in names}  # type: ignore[misc]


def print_table(measures: Sequence[Measure], tolerance: float) -> bool:
    """The table of differences; True when the refit may be written."""
    print(f"{'measure':<40}{'committed':>10}{'refit':>9}{'diff':>9}{'noise':>8}  verdict")
    ok = True
    for m in measures:
        refused = m.refused(tolerance)
        ok &= not refused
        diff = m.refit - m.committed
        status = "WORSE" if refused else ("new" if not math.isfinite(m.committed) else "ok")
        print(f"{m.name:<40}{m.committed:>10.3f}{m.refit:>9.3f}{diff:>+9.3f}{m.noise:>8.3f}  {status}")
    return ok


def check_and_write(
    samples: list[Sample],
    preds: list[Prediction],
    members: dict[str, list[Member]],
    *,
    write: bool,
    tolerance: float = 1.0,
) -> int:
    """Compare, print, and (with `write`, when nothing got worse) write the refit. Exit code."""
    from fitdoc.diagnosis.rules.combiner import WEIGHTS_FILE

    refit = refit_combiner(samples, preds)
    measures = compare(samples, preds, members, refit)
    print()
    print(f"Regression guard (a measure lower by more than {tolerance:g} x its noise refuses the refit)")
    ok = print_table(measures, tolerance)
    if not ok:
        print("refused: the refit is worse than the committed model beyond noise; nothing written")
        return 1
    if write:
        WEIGHTS_FILE.write_text(json.dumps(refit.to_dict(), indent=1) + "\n")
        held_out = {m.name: round(m.refit, 4) for m in measures if m.name in held_out_names(measures)}
        as_fitted = {
            m.name: [round(m.refit, 4), round(m.noise, 4)] for m in measures if m.name not in held_out
        }
        paths = sorted({s.run.path_key for s in samples})
        record = {"model": refit.fitted_on, "held_out": held_out, "as_fitted": as_fitted, "paths": paths}
        BASELINE.write_text(json.dumps(record, indent=1) + "\n")
        print(f"wrote {WEIGHTS_FILE.relative_to(REPO)} and {BASELINE.relative_to(REPO)}")
    else:
        print("the refit passes the guard (not written: --write)")
    return 0


def held_out_names(measures: Sequence[Measure]) -> set[str]:
    return {
        m.name
        for m in measures
        if ("left out" in m.name or m.name.startswith(("all families", "advice")))
        and "(new paths)" not in m.name
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR)
    parser.add_argument("--write", action="store_true", help="write the refit when it passes")
    parser.add_argument("--tolerance", type=float, default=1.0, help="noise units a measure may drop")
    args = parser.parse_args(argv)
    samples, members = load_samples(args.data_dir)
    samples += load_shared_samples(SHARED_CORPUS)
    preds = leave_one_family_out(samples)
    return check_and_write(samples, preds, members, write=args.write, tolerance=args.tolerance)


if __name__ == "__main__":
    raise SystemExit(main())

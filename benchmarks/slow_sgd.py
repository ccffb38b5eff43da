"""How the product reads slow runs: paths trained with plain SGD at a small learning rate.

`python benchmarks/corpus_factory.py --slow-sgd --seeds 2 --shard ...` trains them
into `benchmarks/corpus/slow_sgd/`, outside the corpus the combiner and the gain model
are fitted on: the grid rule labels a run that barely learned `balanced` (no
regularization step rescues it), while fitdoc calls it `underfit` on purpose (FD206),
so fitting on them would teach the combiner to call slow runs balanced, the miss the
real logs show. This prints the committed product's verdicts (with configs) against
their labels, with and without the barely-learning runs.

    python benchmarks/slow_sgd.py
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.calibrate import decide_with, load_samples  # noqa: E402

SLOW_SGD = REPO / "benchmarks" / "corpus" / "slow_sgd"


def main() -> int:
    from fitdoc.diagnosis.rules.combiner import default_combiner

    samples, _ = load_samples(SLOW_SGD)
    combiner = default_combiner()
    table: Counter[tuple[str, str, bool]] = Counter()
    for s in samples:
        barely = any(f.rule_id == "FD206" for f in s.findings_config)
        table[(s.run.label.label, decide_with(combiner, s, True).verdict, barely)] += 1
    print(f"{len(samples)} labelled runs of plain SGD (learning rate 1e-4..1e-2) from {SLOW_SGD.name}/")
    print(f"{'label':<10}{'barely learned (FD206)':>24}{'runs':>6}  fitdoc's verdicts (with config)")
    for label in ("overfit", "underfit", "balanced"):
        for barely in (True, False):
            said = {v: n for (lab, v, b), n in table.items() if lab == label and b is barely}
            if said:
                total = sum(said.values())
                parts = ", ".join(f"{v} {n}" for v, n in sorted(said.items(), key=lambda kv: -kv[1]))
                print(f"{label:<10}{'yes' if barely else 'no':>24}{total:>6}  {parts}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

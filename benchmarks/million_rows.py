"""A Lightning-style per-step log of 1,000,200 rows: `fitdoc diagnose` against
`pandas.read_csv` + a groupby on epoch, time and peak memory (issue 14).

The file: `epoch,step,train_loss,val_loss,val_mae`, a train loss every step
(200 epochs x 5,000 steps) and one validation row at the end of each epoch,
the sparse layout Lightning's CSVLogger writes (about 21 MB).

Each measurement is a fresh Python process (`resource.getrusage` peak RSS of
that process, so imports count as they do for a user); runs alternate and the
median is printed. pandas' time is `read_csv` + `groupby("epoch").mean()`
after `import pandas` (the issue's yardstick); its import is shown beside it.
fitdoc's time is the whole `diagnose` command in-process, imports included.

Goals: fitdoc at most 1.0x pandas' time, under 200 MB peak.

    python benchmarks/million_rows.py [--rows-per-epoch 5000] [--epochs 200] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]

_WRAP = """
import json, resource, sys, time
t0 = time.perf_counter()
{body}
t1 = time.perf_counter()
usage = resource.getrusage(resource.RUSAGE_SELF)
out = {{"seconds": t1 - t0, "cpu_seconds": usage.ru_utime + usage.ru_stime, "peak_mb": usage.ru_maxrss / 1024}}
out.update(extra)
print("MEASURE " + json.dumps(out), file=sys.stderr)
"""

FITDOC = """
extra = {{}}
from fitdoc.cli import main
sys.argv = ["fitdoc", "diagnose", {path!r}, "--format", "json"]
try:
    main()
except SystemExit as exc:
    extra["exit"] = exc.code
"""

PANDAS = """
import pandas as pd
t_import = time.perf_counter()
df = pd.read_csv({path!r})
per_epoch = df.groupby("epoch").mean()
t_done = time.perf_counter()
extra = {{"read_groupby_seconds": t_done - t_import, "import_seconds": t_import - t0, "epochs": len(per_epoch)}}
"""


def build(path: Path, epochs: int, steps_per_epoch: int, seed: int = 0) -> int:
    """Write the per-step log; returns its number of data rows."""
    rng = np.random.default_rng(seed)
    rows = 0
    with path.open("w") as f:
        f.write("epoch,step,train_loss,val_loss,val_mae\n")
        step = 0
        for epoch in range(epochs):
            base = 0.05 + 1.0 / (1 + epoch)
            loss = base * (1 + 0.2 * rng.standard_normal(steps_per_epoch)) ** 2
            steps = np.arange(step, step + steps_per_epoch)
            ep = np.full(steps_per_epoch, epoch)
            block = np.char.add(
                np.char.add(np.char.add(ep.astype(str), ","), np.char.add(steps.astype(str), ",")),
                np.char.add(np.char.mod("%.6f", loss), ",,\n"),
            )
            f.write("".join(block.tolist()))
            step += steps_per_epoch
            val = base * 1.1 + 0.0004 * max(0, epoch - 120)
            f.write(f"{epoch},{step - 1},,{val:.6f},{val * 0.8:.6f}\n")
            rows += steps_per_epoch + 1
    return rows


def measure(body: str) -> dict[str, float]:
    code = _WRAP.format(body=body)
    env = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=900, env=env)
    line = next((ln for ln in proc.stderr.splitlines() if ln.startswith("MEASURE ")), None)
    if line is None:
        raise RuntimeError(f"measurement failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    out = json.loads(line[len("MEASURE ") :])
    out["stdout"] = proc.stdout  # type: ignore[assignment]
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--rows-per-epoch", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="write the file here and keep it")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        path = args.keep or Path(tmp) / "metrics.csv"
        rows = build(path, args.epochs, args.rows_per_epoch)
        small = Path(tmp) / "small.csv"
        build(small, 200, 1)  # 400 rows: fitdoc's own start-up, what every diagnose pays
        size_mb = path.stat().st_size / 1e6
        print(f"file: {rows:,} rows, {size_mb:.1f} MB ({path})")
        runs: dict[str, list[dict[str, float]]] = {"fitdoc": [], "small": [], "pandas": []}
        for _ in range(args.repeats):
            runs["fitdoc"].append(measure(FITDOC.format(path=str(path))))
            runs["pandas"].append(measure(PANDAS.format(path=str(path))))
            runs["small"].append(measure(FITDOC.format(path=str(small))))

    def med(name: str, key: str) -> float:
        return statistics.median(r[key] for r in runs[name])

    result = json.loads(str(runs["fitdoc"][-1]["stdout"]))["results"][0]
    exit_code = runs["fitdoc"][-1].get("exit")
    print(f"fitdoc read it as {result['epochs']} epochs, verdict {result['verdict']} (exit {exit_code})")
    p_read = med("pandas", "read_groupby_seconds")
    rows_out = [
        ("pandas read_csv + groupby (after import)", p_read, None, med("pandas", "peak_mb")),
        (
            "pandas script, import pandas included",
            med("pandas", "seconds"),
            med("pandas", "cpu_seconds"),
            None,
        ),
        (
            f"fitdoc diagnose, {rows:,} rows",
            med("fitdoc", "seconds"),
            med("fitdoc", "cpu_seconds"),
            med("fitdoc", "peak_mb"),
        ),
        (
            "fitdoc diagnose, 400 rows (its start-up)",
            med("small", "seconds"),
            med("small", "cpu_seconds"),
            med("small", "peak_mb"),
        ),
    ]
    print()
    print(f"{'':44} {'wall s':>7} {'cpu s':>7} {'peak MB':>8} {'wall x pandas read':>19}")
    for label, wall, cpu, peak in rows_out:
        cpu_s = "" if cpu is None else f"{cpu:7.2f}"
        peak_s = "" if peak is None else f"{peak:8.0f}"
        print(f"{label:44} {wall:7.2f} {cpu_s:>7} {peak_s:>8} {wall / p_read:19.2f}")
    f_time, f_mem = med("fitdoc", "seconds"), med("fitdoc", "peak_mb")
    p_whole = med("pandas", "seconds")
    reading = f_time - med("small", "seconds")
    print()
    print(f"fitdoc / pandas script (both with their imports): {f_time / p_whole:.2f}x")
    print(
        f"fitdoc's reading of the file (the large run minus its start-up): {reading:.2f} s = {reading / p_whole:.2f}x the pandas script"
    )
    print(
        f"goal: time <= 1.0x pandas read_csv + groupby: {'met' if f_time <= p_read else 'NOT met'} "
        f"({f_time / p_read:.2f}x); peak < 200 MB: {'met' if f_mem < 200 else 'NOT met'} ({f_mem:.0f} MB); "
        f"median of {args.repeats} alternating runs"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""How fast `fitdoc diagnose` is: cold start, and a directory of many histories.

Usage:
    python benchmarks/diagnose_speed.py [--reps 15] [--count 10000] [--epochs 1000]
        [--formats json text] [--keep DIR]

Generates, in a temporary directory, one 1000-epoch Keras-CSVLogger-style
history (`epoch,loss,mae,val_loss,val_mae`) and `--count` small histories
(50-300 epochs, a mix of overfit, underfit, balanced, noisy and diverging
shapes; half as flat `*.csv` files, half as run directories holding a
`history.csv`). Then, every command in a fresh process from that directory:

- cold start: `python -m fitdoc diagnose FILE --format json`, the `fitdoc`
  console script beside `sys.executable` (when installed) doing the same,
  `fitdoc --help`, and the baseline `python -c "import pandas"`, run in
  alternation `--reps` times after one untimed warm-up each; the figure is
  the median wall time and its ratio to the pandas import;
- throughput: one `fitdoc diagnose DIR --format FMT > /dev/null` over the
  `--count` histories per format in `--formats` (default json, then the
  rich text default), wall time and milliseconds per history.

Prints a Markdown table, the command line that produced it, and the load
average before and after (the machine may be shared: medians, not means).
"""

from __future__ import annotations

import argparse
import math
import os
import random
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

SHAPES = ("overfit", "underfit", "balanced", "noisy", "diverging", "still_falling")
HEADER = "epoch,loss,mae,val_loss,val_mae"


def _curve(shape: str, n: int, rng: random.Random) -> list[tuple[float, float]]:
    """(train loss, val loss) per epoch for one of SHAPES, on an arbitrary target scale."""
    scale = 10 ** rng.uniform(-2, 2)
    rate = rng.uniform(3.0, 8.0)
    floor = rng.uniform(0.02, 0.2)
    noise = {"noisy": 0.15, "diverging": 0.03}.get(shape, rng.uniform(0.005, 0.04))
    rows = []
    for e in range(n):
        t = e / max(n - 1, 1)
        train = math.exp(-rate * t) + floor
        if shape == "overfit":
            val = train * 1.1 + rng.uniform(0.3, 1.0) * max(t - 0.3, 0.0) ** 2
        elif shape == "underfit":
            train = 0.8 + 0.2 * math.exp(-rate * t)
            val = train * rng.uniform(1.0, 1.05)
        elif shape == "diverging":
            val = train * 1.1 * (1.0 + (math.exp(8 * (t - 0.7)) if t > 0.7 else 0.0))
            train = val / 1.1
        elif shape == "still_falling":
            train = 1.0 - 0.7 * t + floor
            val = train * 1.05
        else:
            val = train * rng.uniform(1.02, 1.15)
        train *= scale * (1.0 + rng.gauss(0.0, noise))
        val *= scale * (1.0 + rng.gauss(0.0, noise * 1.5))
        rows.append((abs(train), abs(val)))
    return rows


def history_csv(shape: str, n: int, rng: random.Random) -> str:
    """A Keras CSVLogger-style file: loss as MSE, mae about its square root."""
    lines = [HEADER]
    for e, (train, val) in enumerate(_curve(shape, n, rng)):
        lines.append(f"{e},{train:.6g},{math.sqrt(train):.6g},{val:.6g},{math.sqrt(val):.6g}")
    return "\n".join(lines) + "\n"


def make_corpus(root: Path, count: int, epochs: int, seed: int = 0) -> tuple[Path, Path]:
    """The long single history and the directory of `count` small ones."""
    rng = random.Random(seed)
    single = root / "long_history.csv"
    single.write_text(history_csv("overfit", epochs, rng))
    many = root / "many"
    many.mkdir()
    for i in range(count):
        shape = SHAPES[(i // 2) % len(SHAPES)]  # both layouts get every shape
        text = history_csv(shape, rng.randint(50, 300), rng)
        if i % 2:
            run = many / "runs" / f"run_{i:05d}"
            run.mkdir(parents=True)
            (run / "history.csv").write_text(text)
        else:
            folder = many / "flat" / f"part_{i // 1000:02d}"
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{shape}_{i:05d}.csv").write_text(text)
    return single, many


def _time_once(argv: Sequence[str], cwd: Path, env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    seconds = time.perf_counter() - started
    # Exit 0 (a verdict) or 1 (--fail-on hit) are both a completed diagnosis; anything else is broken.
    if done.returncode not in (0, 1):
        raise SystemExit(f"{shlex.join(argv)} failed ({done.returncode}): {done.stderr.decode()[-500:]}")
    return seconds


def cold_starts(
    commands: dict[str, list[str]], reps: int, cwd: Path, env: dict[str, str]
) -> dict[str, list[float]]:
    """Wall seconds per command, alternating so drifting load hits each alike."""
    for argv in commands.values():
        _time_once(argv, cwd, env)  # warm the page cache and .pyc files, untimed
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(reps):
        for name, argv in commands.items():
            times[name].append(_time_once(argv, cwd, env))
    return times


def _load() -> str:
    try:
        return " / ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=15, help="alternating cold-start repetitions")
    parser.add_argument("--count", type=int, default=10_000, help="histories in the directory run")
    parser.add_argument("--epochs", type=int, default=1000, help="epochs of the single long history")
    parser.add_argument(
        "--formats", nargs="+", default=["json", "text"], help="output formats of the directory run"
    )
    parser.add_argument("--keep", type=Path, help="generate into this (new) directory and keep it")
    args = parser.parse_args()

    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", NO_COLOR="1")
    load_before = _load()
    with tempfile.TemporaryDirectory(prefix="fitdoc-speed-") as tmp:
        root = args.keep or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        single, many = make_corpus(root, args.count, args.epochs)
        generate_s = time.perf_counter() - started

        py = sys.executable
        diagnose = ["diagnose", str(single), "--format", "json"]
        commands = {
            "python -c 'import pandas'": [py, "-c", "import pandas"],
            f"python -m fitdoc diagnose {single.name} --format json": [py, "-m", "fitdoc", *diagnose],
        }
        script = Path(py).with_name("fitdoc")
        if script.is_file():
            commands[f"fitdoc diagnose {single.name} --format json"] = [str(script), *diagnose]
            commands["fitdoc --help"] = [str(script), "--help"]
        times = cold_starts(commands, args.reps, root, env)

        many_s = {
            fmt: _time_once([py, "-m", "fitdoc", "diagnose", str(many), "--format", fmt], root, env)
            for fmt in args.formats
        }
    load_after = _load()

    base = statistics.median(times["python -c 'import pandas'"])
    print(f"Command: `{shlex.join(['python', *sys.argv])}`  ")
    print(
        f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs; load average (1/5/15 min) "
        f"before {load_before}, after {load_after}; corpus generated in {generate_s:.1f} s.\n"
    )
    print(f"| cold start ({args.reps} alternating runs) | median s | min s | vs `import pandas` |")
    print("|---|---:|---:|---:|")
    for name, values in times.items():
        med = statistics.median(values)
        print(f"| `{name}` | {med:.3f} | {min(values):.3f} | {med / base:.2f}x |")
    print()
    print("| throughput (one run) | histories | wall s | ms per history |")
    print("|---|---:|---:|---:|")
    for fmt, seconds in many_s.items():
        print(
            f"| `fitdoc diagnose DIR --format {fmt} > /dev/null` | {args.count} | {seconds:.1f} | "
            f"{1000 * seconds / args.count:.2f} |"
        )


if __name__ == "__main__":
    main()

"""What each command loads: `diagnose`, `plot`, `compare`, `rules`, `watch` and `--help` never load TensorFlow.

The one place import lightness is tested (CLI commands, library modules, the
Python API, plotting).

The design notes: only the training modules import TensorFlow, so the light commands
start fast and work without it; matplotlib only when a plot is asked for; and
no pandas on the way (its import alone is the yardstick of the cold-start
goal in `benchmarks/diagnose_speed.py`). Each case runs the real command,
`python -X importtime -m fitdoc ...`, in a fresh process and reads the list
of modules it imported from the interpreter itself. No timings here.
"""

from __future__ import annotations

import os
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import pytest

import fitdoc

FIXTURES = Path(__file__).parent / "fixtures"
RUN_DIR = FIXTURES / "verdicts" / "founding-noreg"  # history.csv + config.yaml
OTHER_RUN = FIXTURES / "verdicts" / "noisy"
CSV = FIXTURES / "histories" / "keras_mae_alias.csv"
KERAS_JSON = FIXTURES / "histories" / "keras_dict.json"
HF_JSON = FIXTURES / "histories" / "hf_trainer_state.json"

DEEP = ("tensorflow", "keras", "tf_keras", "jax", "torch")
# `fitdoc tune --backend ray` imports Ray inside its runner; nothing else ever does.
CLUSTER = ("ray",)
TRAINING = (
    "fitdoc.training.model",
    "fitdoc.training.run",
    "fitdoc.keras",
    "fitdoc.training.engine",
    "fitdoc.tune",
)
# Modules fitdoc is allowed to import TensorFlow from at module level (docs/architecture.md); the rest may not.
TF_HOMES = {"fitdoc.training.model", "fitdoc.training.run", "fitdoc.keras", "fitdoc.training.engine"}


def imported_by(*args: str, cwd: Path) -> tuple[set[str], subprocess.CompletedProcess[str]]:
    """Every module a cold `python -m fitdoc ARGS` imports, from `-X importtime`'s report."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", NO_COLOR="1")
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "fitdoc", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env=env,
    )
    modules = {
        line.rsplit("|", 1)[1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")
    }
    modules.discard("imported package")  # the report's header line
    return modules, proc


def top_levels(modules: set[str]) -> set[str]:
    return {m.split(".")[0] for m in modules}


LIGHT_CASES = {
    "diagnose-run-dir-json": (["diagnose", str(RUN_DIR), "--format", "json"], "fitdoc.report.jsonout"),
    "diagnose-run-dir-text": (["diagnose", str(RUN_DIR), "--format", "text"], "fitdoc.report.text"),
    "diagnose-csv-markdown": (["diagnose", str(CSV), "--format", "markdown"], "fitdoc.report.markdown"),
    "diagnose-json-github": (["diagnose", str(KERAS_JSON), "--format", "github"], "fitdoc.report.github"),
    "diagnose-hf-text": (["diagnose", str(HF_JSON)], "fitdoc.diagnosis.decide"),
    "diagnose-several-fail-on": (
        ["diagnose", str(RUN_DIR), str(OTHER_RUN), str(CSV), "--fail-on", "overfit"],
        "fitdoc.diagnosis.decide",
    ),
    "compare-text": (["compare", str(RUN_DIR), str(OTHER_RUN)], "fitdoc.report.compare"),
    "compare-json": (["compare", str(RUN_DIR), str(OTHER_RUN), "--format", "json"], "fitdoc.report.compare"),
    "rules-text": (["rules"], "fitdoc.diagnosis.rules.registry"),
    "rules-json": (["rules", "--format", "json"], "fitdoc.diagnosis.rules.registry"),
    "help": (["--help"], "fitdoc.cli"),
    "diagnose-help": (["diagnose", "--help"], "fitdoc.cli"),
    "plot-help": (["plot", "--help"], "fitdoc.cli"),
    "compare-help": (["compare", "--help"], "fitdoc.cli"),
    "tune-help": (["tune", "--help"], "fitdoc.cli"),
    "watch-help": (["watch", "--help"], "fitdoc.cli"),
    # A watch that ends at once (nothing new within --idle 0) still reads and diagnoses the file.
    "watch-csv-idle": (["watch", str(CSV), "--idle", "0"], "fitdoc.watch"),
    "watch-run-dir-json": (["watch", str(RUN_DIR), "--idle", "0", "--format", "json"], "fitdoc.watch"),
    "version": (["--version"], "fitdoc.cli"),
}


@pytest.mark.parametrize("case", sorted(LIGHT_CASES))
def test_light_commands_load_no_deep_learning_no_matplotlib_no_pandas(case: str, tmp_path: Path) -> None:
    args, must_load = LIGHT_CASES[case]
    modules, proc = imported_by(*args, cwd=tmp_path)
    # 0 or 1 (a --fail-on verdict): the command really ran, so an empty import list means something.
    assert proc.returncode in (0, 1), proc.stderr[-2000:]
    assert must_load in modules, f"{must_load} not imported: did the command run at all?"
    heavy = top_levels(modules) & {*DEEP, *CLUSTER, "matplotlib", "pandas"}
    assert not heavy, f"`fitdoc {' '.join(args)}` imported {sorted(heavy)}"
    assert not modules & set(TRAINING), (
        f"`fitdoc {' '.join(args)}` imported {sorted(modules & set(TRAINING))}"
    )


@pytest.mark.parametrize(
    "args",
    [["plot", str(RUN_DIR), "-o", "curves.png"], ["diagnose", str(RUN_DIR), "--plot", "curves.svg"]],
    ids=["plot", "diagnose-plot"],
)
def test_plotting_loads_matplotlib_but_never_tensorflow(args: list[str], tmp_path: Path) -> None:
    modules, proc = imported_by(*args, cwd=tmp_path)
    assert proc.returncode in (0, 1), proc.stderr[-2000:]
    assert (tmp_path / args[-1]).is_file()
    assert "matplotlib" in modules  # the one case it is allowed, and the reader sees it
    assert "matplotlib.pyplot" not in modules  # the object API only: no GUI backend, no global state
    heavy = top_levels(modules) & {*DEEP, "pandas"}
    assert not heavy, f"`fitdoc {' '.join(args)}` imported {sorted(heavy)}"
    assert not modules & set(TRAINING)


def test_every_library_module_but_the_training_ones_imports_without_tensorflow() -> None:
    names = sorted(
        m.name
        for m in pkgutil.walk_packages(fitdoc.__path__, "fitdoc.")
        if m.name not in TF_HOMES and m.name != "fitdoc.__main__"  # __main__ runs the CLI
    )
    assert {"fitdoc.history.load", "fitdoc.diagnosis.decide", "fitdoc.cli", "fitdoc.report.plot"} <= set(
        names
    )
    # One process, checked after each import, so a failure names the module that pulled it in.
    code = (
        "import importlib, sys\n"
        f"for name in {names!r}:\n"
        "    importlib.import_module(name)\n"
        f"    heavy = [m for m in {(*DEEP, *CLUSTER, 'matplotlib')!r} if m in sys.modules]\n"
        "    if heavy:\n"
        "        sys.exit(f'{name} imported {heavy}')\n"
    )
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]


@pytest.mark.parametrize("module", ["fitdoc", "fitdoc.history.load", "fitdoc.diagnosis.decide", "fitdoc.cli"])
def test_the_diagnosis_path_imports_without_pandas_or_pydantic_models(module: str) -> None:
    # fitdoc.config (pydantic models + YAML) is loaded only for a run that has a config.
    code = (
        f"import sys, {module}\n"
        "print(sorted(m for m in ('pandas', 'fitdoc.config', 'yaml', *sys.argv[1:]) if m in sys.modules))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, *DEEP, "matplotlib"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "[]"


def test_a_csv_without_config_never_loads_the_config_schema(tmp_path: Path) -> None:
    modules, proc = imported_by("diagnose", str(CSV), "--format", "json", cwd=tmp_path)
    assert proc.returncode in (0, 1), proc.stderr[-2000:]
    assert "fitdoc.diagnosis.decide" in modules
    assert not {"fitdoc.config", "yaml", "pandas"} & modules


def test_the_python_api_diagnoses_without_tensorflow_or_matplotlib() -> None:
    code = (
        "import sys, fitdoc\n"
        "fitdoc.diagnose({'loss': [1.0, 0.5], 'val_loss': [1.0, 0.6]})\n"
        "print(sorted(m for m in sys.argv[1:] if m in sys.modules))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, *DEEP, "matplotlib"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "[]"


def test_tests_never_importorskip_fitdocs_own_modules() -> None:
    """A broken fitdoc module must fail its tests, not skip them (issue 12)."""
    tests = Path(__file__).parent
    offenders = [
        f"{path.name}:{number}"
        for path in sorted(tests.rglob("*.py"))
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if re.search(r"importorskip\(\s*[\"']fitdoc", line)
    ]
    assert offenders == []

"""Issue 13, what a new user trips on: each stumble, checked the way the user met it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from fitdoc.cli import app, next_run_name

runner = CliRunner()
VERDICTS = Path(__file__).parent / "fixtures" / "verdicts"
NOREG = VERDICTS / "founding-noreg"
OVERREG = VERDICTS / "founding-l2-0.001"
BALANCED = VERDICTS / "founding-l2-0.0001"


def run_fitdoc(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fitdoc", *args], capture_output=True, text=True, timeout=120, cwd=cwd
    )


# ---------------------------------------------------------------- 4. --emit-config


def test_emitted_config_is_named_after_its_change(tmp_path: Path) -> None:
    out = tmp_path / "next.yaml"
    proc = run_fitdoc("diagnose", str(NOREG), "--emit-config", str(out))
    assert proc.returncode == 0, proc.stderr
    emitted = yaml.safe_load(out.read_text())
    assert emitted["model"]["l2"] == pytest.approx(1e-4)
    assert emitted["name"] == "founding-noreg-l2-0.0001"
    assert "founding-noreg-l2-0.0001" in proc.stderr


def test_emitting_twice_replaces_the_suffix_instead_of_stacking(tmp_path: Path) -> None:
    config = tmp_path / "mine.yaml"
    config.write_text("name: founding-l2-1e-3\ndata:\n  synthetic: founding\nmodel:\n  l2: 0.001\n")
    out = tmp_path / "next.yaml"
    result = runner.invoke(
        app, ["diagnose", str(OVERREG / "history.csv"), "--config", str(config), "--emit-config", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert yaml.safe_load(out.read_text())["name"] == "founding-l2-0.0001"


@pytest.mark.parametrize(
    ("name", "key", "value", "expected"),
    [
        ("run", "model.dropout", 0.2, "run-dropout-0.2"),
        ("run-l2-1e-05", "model.l2", 0.0, "run-l2-0"),
        ("run", "training.epochs", 2000, "run-epochs-2000"),
        ("run", "model.hidden_layers", 6, "run-hidden-layers-6"),
        ("run", "training.early_stopping", {"patience": 50}, "run-early-stopping-patience-50"),
        ("x" * 100, "model.l2", 1e-4, "x" * 90 + "-l2-0.0001"),
    ],
)
def test_next_run_name(name: str, key: str, value: object, expected: str) -> None:
    assert next_run_name(name, key, value) == expected


def test_balanced_run_writes_nothing_says_so_and_exits_0(tmp_path: Path) -> None:
    out = tmp_path / "next.yaml"
    proc = run_fitdoc("diagnose", str(BALANCED), "--emit-config", str(out), "--format", "json")
    assert proc.returncode == 0, proc.stderr
    assert not out.exists()
    assert (
        proc.stderr.strip() == f"{out}: nothing written: the run is balanced, so there is no change to apply"
    )


# ---------------------------------------------------------------- 6. messages


def test_every_config_problem_gets_its_own_line(tmp_path: Path) -> None:
    config = tmp_path / "three.yaml"
    config.write_text(
        "data:\n  synthetic: founding\nmodel:\n  l2: -1\n  unitz: 3\ntraining:\n  epochs: many\n"
    )
    proc = run_fitdoc("train", str(config))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert [line.split(": ")[1:3] for line in lines] == [
        [str(config), "model.l2"],
        [str(config), "model.unitz"],
        [str(config), "training.epochs"],
    ]
    assert all(line.startswith("error: ") for line in lines)
    assert "did you mean 'units'" in lines[1] and "'many'" in lines[2]
    assert "more problem" not in proc.stderr


def test_a_tab_in_yaml_is_named_as_such(tmp_path: Path) -> None:
    config = tmp_path / "tab.yaml"
    config.write_text("data:\n\tsynthetic: founding\n")
    proc = run_fitdoc("train", str(config))
    assert proc.returncode == 2
    assert proc.stderr == (
        f"error: {config}: invalid YAML: a tab at line 2, column 1; YAML forbids tabs for indentation "
        "and between tokens: use spaces\n"
    )


@pytest.mark.parametrize("text", ["model:\n  l2: 0.001\n", ""])
def test_a_config_without_data_says_synthetic_or_path(tmp_path: Path, text: str) -> None:
    config = tmp_path / "nodata.yaml"
    config.write_text(text)
    proc = run_fitdoc("train", str(config))
    assert proc.returncode == 2
    assert len(proc.stderr.splitlines()) == 1
    assert f"error: {config}: data: " in proc.stderr
    assert "give data.synthetic or data.path" in proc.stderr and "founding" in proc.stderr


def test_errors_raised_through_the_api_name_their_file(tmp_path: Path) -> None:
    import fitdoc
    from fitdoc.errors import HistoryError

    missing = tmp_path / "nowhere" / "history.csv"
    with pytest.raises(HistoryError) as caught:
        fitdoc.diagnose(missing)
    assert str(caught.value).startswith(f"{missing}: ")
    bad = tmp_path / "abc.json"
    bad.write_text("{not json")
    with pytest.raises(HistoryError) as caught:
        fitdoc.diagnose(bad)
    assert str(bad) in str(caught.value)


# ---------------------------------------------------------------- 5. bad input accepted silently


def write_csv(path: Path, rows: int, *, city: bool = False) -> Path:
    lines = ["a,b,y" + (",city" if city else "")]
    for i in range(rows):
        lines.append(f"{i},{(i * 7) % 5},{i * 0.5}" + (",paris" if city else ""))
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_tiny_csv_is_refused_naming_the_count(tmp_path: Path) -> None:
    write_csv(tmp_path / "three.csv", 3)
    config = tmp_path / "c.yaml"
    config.write_text(f"data:\n  path: three.csv\n  target: y\noutput:\n  dir: {tmp_path / 'runs'}\n")
    proc = run_fitdoc("train", str(config))
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr == (
        f"error: {tmp_path / 'three.csv'}: data.path: 3 rows give 2 training and 1 validation rows; "
        "fitdoc needs at least 10 training and 5 validation rows (at least 21 rows at validation_split=0.2)\n"
    )
    assert not (tmp_path / "runs").exists()  # refused before any run directory


def test_too_few_synthetic_rows_name_n_samples() -> None:
    from fitdoc.config import DataConfig
    from fitdoc.errors import DataError
    from fitdoc.training.data import load_data

    with pytest.raises(
        DataError, match=r"^data\.n_samples: 12 rows give 9 training and 3 validation"
    ) as caught:
        load_data(DataConfig(synthetic="wave", n_samples=12), seed=0, validation_split=0.25)
    assert "at least 17 rows at validation_split=0.25" in str(caught.value)
    with pytest.raises(DataError, match="16 rows give 12 training and 4 validation"):
        load_data(DataConfig(synthetic="wave", n_samples=16), seed=0, validation_split=0.25)
    load_data(DataConfig(synthetic="wave", n_samples=17), seed=0, validation_split=0.25)  # just enough


@pytest.mark.training
def test_left_out_columns_are_printed_and_no_test_mae_without_a_test_split(tmp_path: Path) -> None:
    write_csv(tmp_path / "d.csv", 60, city=True)
    config = tmp_path / "c.yaml"
    config.write_text(
        "data:\n  path: d.csv\n  target: y\nmodel:\n  hidden_layers: 1\n  units: 4\n"
        f"training:\n  epochs: 2\noutput:\n  dir: {tmp_path / 'runs'}\n"
    )
    # In process (typer's runner): TensorFlow is imported once per test session, not once per test.
    result = runner.invoke(app, ["train", str(config), "--quiet"])
    assert result.exit_code == 0, result.output
    assert f"note: {tmp_path / 'd.csv'}: non-numeric columns not used as features: city" in result.stderr
    run_dir = Path(result.stdout.strip().splitlines()[-1])
    header = (run_dir / "history.csv").read_text().splitlines()[0].split(",")
    assert "test_mae" not in header and "val_mae" in header


# ---------------------------------------------------------------- 7. help text

COMMANDS = ["", "train", "diagnose", "plot", "compare", "tune", "rules", "schema", "watch"]


@pytest.mark.parametrize("command", COMMANDS)
def test_help_reads_like_a_well_kept_cli(command: str) -> None:
    result = runner.invoke(app, [*command.split(), "--help"], env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    text = result.stdout
    # No Python types as metavars (`<bool>`, `<list[str]>`, `<path>`), no `{CONFIG}`.
    assert not re.search(r"<[a-zA-Z_\[\]|, ]+>", text), text
    assert "{" not in text and "list[" not in text
    usage = next(line.strip() for line in text.splitlines() if line.strip().startswith("Usage:"))
    expected = {
        "": "Usage: fitdoc [OPTIONS] COMMAND [ARGS]...",
        "train": "Usage: fitdoc train [OPTIONS] CONFIG",
        "tune": "Usage: fitdoc tune [OPTIONS] CONFIG",
        "diagnose": "Usage: fitdoc diagnose [OPTIONS] PATH...",
        "plot": "Usage: fitdoc plot [OPTIONS] PATH...",
        "compare": "Usage: fitdoc compare [OPTIONS] PATH...",
        "rules": "Usage: fitdoc rules [OPTIONS]",
        "schema": "Usage: fitdoc schema [OPTIONS]",
        "watch": "Usage: fitdoc watch [OPTIONS] PATH",
    }
    assert usage == expected[command]


def test_flags_show_no_value_and_options_name_theirs() -> None:
    text = runner.invoke(app, ["train", "--help"], env={"COLUMNS": "120"}).stdout
    quiet = next(line for line in text.splitlines() if "--quiet" in line)
    assert re.sub(r"[│\s]+", " ", quiet).strip() == "--quiet -q No progress output (for CI logs)."
    assert re.search(r"--set\s+KEY=VALUE", text)
    assert re.search(r"--format\s+\[text\|json\|markdown\|github\]", text)
    diagnose = runner.invoke(app, ["diagnose", "--help"], env={"COLUMNS": "120"}).stdout
    for option, metavar in [("--emit-config", "FILE"), ("--train-col", "COLUMN"), ("--fail-on", "VERDICTS")]:
        assert re.search(rf"{option}\s+{metavar}\s", diagnose), option


# ---------------------------------------------------------------- 8. progress


class Clock:
    """Seconds that pass only when the test says so."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def row(epoch: int) -> dict[str, float]:
    return {"epoch": epoch, "loss": 0.5, "mae": 0.25, "val_loss": 0.6, "val_mae": 0.3}


def test_no_eta_until_a_few_epochs_and_none_from_the_compile_epoch() -> None:
    import io

    from rich.console import Console

    from fitdoc.training.run import ProgressDisplay

    clock, out = Clock(), io.StringIO()
    console = Console(file=out, width=200)
    with ProgressDisplay(console, total=1000, enabled=True, every=1, clock=clock) as display:
        for epoch in range(5):
            clock.now += 9.75 if epoch == 0 else 0.01  # the first epoch traces and compiles
            display.epoch_done(row(epoch))
    lines = out.getvalue().splitlines()
    assert lines[0] == "epoch 1/1000  loss 0.5  mae 0.25  val_loss 0.6  val_mae 0.3  9.8s elapsed"
    assert "ETA" not in lines[1]
    # From the third epoch on: 0.01 s an epoch for the 997 left, not the first epoch's 9.75 s.
    assert lines[2].endswith("9.8s elapsed, ETA 10s")
    assert lines[4].endswith(", ETA 10s")


def test_the_bar_leaves_a_one_line_summary_on_a_terminal() -> None:
    import io

    from rich.console import Console

    from fitdoc.training.run import ProgressDisplay

    clock, out = Clock(), io.StringIO()
    console = Console(file=out, width=120, force_terminal=True, color_system=None)
    with ProgressDisplay(console, total=20, enabled=True, clock=clock) as display:
        for epoch in range(20):
            clock.now += 0.5
            display.epoch_done(row(epoch))
    text = out.getvalue()
    assert text.rstrip().endswith("epoch 20/20  loss 0.5  mae 0.25  val_loss 0.6  val_mae 0.3  (10.0s)")
    assert display.eta(20) == 0.0


@pytest.mark.training
def test_train_plot_says_where_the_picture_went(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(
        "data:\n  synthetic: wave\n  n_samples: 200\nmodel:\n  hidden_layers: 1\n  units: 4\n"
        f"training:\n  epochs: 3\noutput:\n  dir: {tmp_path / 'runs'}\n"
    )
    result = runner.invoke(app, ["train", str(config), "--quiet", "--plot"])  # in process, as above
    assert result.exit_code == 0, result.output
    run_dir = Path(result.stdout.strip().splitlines()[-1])
    assert (run_dir / "curves.png").stat().st_size > 1000
    assert f"wrote {run_dir / 'curves.png'}" in result.stderr.splitlines()


# ---------------------------------------------------------------- 9. small things


def test_inconclusive_shows_no_confidence_in_text_or_markdown() -> None:
    too_short = VERDICTS / "too-short"
    text = runner.invoke(app, ["diagnose", str(too_short)], env={"COLUMNS": "120"}).stdout
    assert "inconclusive  no verdict on this evidence" in text
    assert "confidence" not in text
    markdown = runner.invoke(app, ["diagnose", str(too_short), "--format", "markdown"]).stdout
    assert "| ⚪ inconclusive | - |" in markdown
    assert "confidence 1.00" not in markdown
    # A verdict that claims something keeps its number.
    assert "confidence 0." in runner.invoke(app, ["diagnose", str(NOREG)]).stdout


def test_text_gives_the_early_stopping_reason_markdown_gives() -> None:
    import io

    from rich.console import Console

    from fitdoc.report.markdown import diagnoses_to_markdown
    from fitdoc.report.text import render_diagnosis
    from fitdoc.verdict import Cause, Change, Diagnosis, Suggestion, Verdict

    reason = "stop at the validation minimum (epoch 101): training.early_stopping: none -> patience 30"
    diagnosis = Diagnosis(
        source="run/history.csv",
        verdict=Verdict.OVERFIT,
        cause=Cause.GAP,
        confidence=0.8,
        findings=(),
        suggestion=Suggestion(
            Change("model.l2", 0.0, 1e-4, "add L2: model.l2 0 -> 0.0001"),
            (Change("training.early_stopping", None, {"patience": 30}, reason),),
        ),
        metric="mae",
        epochs=300,
        summary="overfit (gap)",
    )
    out = io.StringIO()
    render_diagnosis(diagnosis, Console(file=out, width=200))
    assert f"or: {reason}" in out.getvalue()
    assert reason in diagnoses_to_markdown([diagnosis])


def test_a_run_retraced_by_a_later_one_stays_visible_in_the_plot() -> None:
    import numpy as np

    from fitdoc.history.curves import Curves
    from fitdoc.history.rundir import Run as RunView
    from fitdoc.report.plot import HALO_WIDTH, build_figure, covered_runs

    def curves(epochs: int, source: str) -> Curves:
        e = np.arange(epochs, dtype=float)
        return Curves(
            epochs=e, train=0.02 + np.exp(-e / 20), val=0.1 + np.exp(-e / 25), metric="mae", source=source
        )

    short, long_, other = (
        RunView("trial 1", curves(50, "t1.csv")),
        RunView("trial 2", curves(100, "t2.csv")),  # the same seed, twice the epochs
        RunView(
            "trial 3", Curves(np.arange(100.0), np.full(100, 0.5), np.full(100, 0.6), "mae", source="t3")
        ),
    )
    assert covered_runs([short, long_, other]) == {0: (1, 49.0)}
    assert covered_runs([long_, short]) == {}  # the shorter one is drawn on top: nothing hidden
    figure = build_figure([short, long_, other])
    widths = {}
    for line in figure.axes[0].get_lines():
        if line.get_linestyle() == "-" and len(line.get_xdata()) > 1:
            widths[len(line.get_xdata()), float(line.get_ydata()[-1])] = line.get_linewidth()
    drawn = sorted(widths.items())
    short_width = next(w for (n, _), w in drawn if n == 50)
    long_width = next(w for (n, y), w in drawn if n == 100 and y != 0.6)
    assert short_width == pytest.approx(long_width * HALO_WIDTH)
    text = "\n".join(t.get_text() for t in figure.findobj(lambda a: hasattr(a, "get_text")))
    assert "trial 1 runs exactly under trial 2 to epoch 49 (drawn wide beneath it)" in text


README = Path(__file__).resolve().parents[1] / "README.md"


def readme_block(after: str, language: str) -> str:
    """The first fenced block of `language` after the heading or line `after`."""
    text = README.read_text(encoding="utf-8")
    start = text.index(f"```{language}\n", text.index(after)) + len(language) + 4
    return text[start : text.index("```", start)]


def test_the_readme_api_example_prints_what_its_comments_say() -> None:
    import contextlib
    import io

    code = readme_block("## Python API and the Keras callback", "python")
    expected = [
        line.split("  # ", 1)[1] if "  # " in line else None
        for line in code.splitlines()
        if line.startswith("print(")
    ]
    assert any(expected)
    out = io.StringIO()
    cwd = os.getcwd()
    try:
        os.chdir(README.parent)  # the example's path is relative to the repository root
        with contextlib.redirect_stdout(out):
            exec(compile(code, "README.md", "exec"), {})
    finally:
        os.chdir(cwd)
    printed = out.getvalue().splitlines()
    assert len(printed) == len(expected)
    for got, want in zip(printed, expected, strict=True):
        if want is not None:
            assert got == want


def test_the_readme_callback_sample_has_the_form_and_thresholds_the_callback_prints() -> None:
    import io

    import numpy as np

    keras = pytest.importorskip("keras")
    from fitdoc.keras import FitdocCallback

    sample = [line for line in readme_block("stderr when the verdict changes", "").splitlines() if line]
    # A real callback on a real (untrained) model, fed an overfitting history epoch by epoch.
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    out = io.StringIO()
    doctor = FitdocCallback(stop_on="overfit", stream=out)
    model.stop_training = False  # as fit() sets it before the first epoch
    doctor.set_model(model)
    doctor.set_params({"epochs": 1000})
    doctor.on_train_begin()
    for epoch in range(1000):
        train = 0.01 + 0.5 * np.exp(-epoch / 3)
        val = 0.05 + 0.5 * np.exp(-epoch / 3) + 0.0005 * epoch
        doctor.on_epoch_begin(epoch)
        doctor.on_epoch_end(epoch, {"loss": train**2, "mae": train, "val_loss": val**2, "val_mae": val})
        if model.stop_training:
            break
    doctor.on_train_end()
    printed = out.getvalue().splitlines()

    def form(line: str) -> str:
        return re.sub(r"\d+(\.\d+)?", "N", line)

    def thresholds(line: str) -> list[str]:
        return re.findall(r"(?:>|<|>=|<=) (\d+(?:\.\d+)?%?)", line)

    assert [form(line) for line in sample] == [form(line) for line in printed], printed
    assert [thresholds(line) for line in sample] == [thresholds(line) for line in printed]

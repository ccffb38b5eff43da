"""Issue 21, what a new user trips on (round 2): each stumble, checked the way the user met it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import yaml
from typer.testing import CliRunner

from fitdoc.cli import app

if TYPE_CHECKING:
    from matplotlib.figure import Figure

runner = CliRunner()
VERDICTS = Path(__file__).parent / "fixtures" / "verdicts"
NOREG = VERDICTS / "founding-noreg"


def run_fitdoc(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fitdoc", *args], capture_output=True, text=True, timeout=120, cwd=cwd
    )


# ---------------------------------------------------------------- 3. --emit-config without a config


def test_emit_config_without_a_known_config_refuses_in_one_line(tmp_path: Path) -> None:
    history = tmp_path / "bare.csv"
    shutil.copy(NOREG / "history.csv", history)  # a CSVLogger file: no config.yaml beside it
    out = tmp_path / "next.yaml"
    proc = run_fitdoc("diagnose", str(history), "--emit-config", str(out))
    assert proc.returncode == 2
    assert proc.stderr == (
        f"error: {history}: --emit-config: no config is known for this history; pass --config CONFIG.yaml\n"
    )
    assert proc.stdout == ""  # refused before anything else
    assert not out.exists()


def test_a_config_without_data_is_emitted_as_what_is_known_and_train_says_so(tmp_path: Path) -> None:
    history = tmp_path / "bare.csv"
    shutil.copy(NOREG / "history.csv", history)
    mine = tmp_path / "mine.yaml"
    mine.write_text("model:\n  l2: 0\n")  # what diagnose --config needs: no data section
    out = tmp_path / "next.yaml"
    proc = run_fitdoc("diagnose", str(history), "--config", str(mine), "--emit-config", str(out))
    assert proc.returncode == 0, proc.stderr
    text = out.read_text()
    assert text.startswith("# fitdoc: INCOMPLETE, not trainable as it stands: no data section is known")
    emitted = yaml.safe_load(text)
    # Only what is known: the user's keys and the change; no fitdoc defaults posing as theirs.
    assert emitted == {"name": "run-l2-0.0001", "model": {"l2": pytest.approx(1e-4)}}
    assert "incomplete: no data section is known" in proc.stderr
    train = run_fitdoc("train", str(out), cwd=tmp_path)
    assert train.returncode == 2
    assert train.stderr.startswith(f"error: {out}: data: missing; give data.synthetic or data.path")
    assert len(train.stderr.splitlines()) == 1
    assert "Input should" not in train.stderr


def test_a_run_directory_config_is_still_emitted_whole(tmp_path: Path) -> None:
    out = tmp_path / "next.yaml"
    result = runner.invoke(app, ["diagnose", str(NOREG), "--emit-config", str(out)])
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert not text.startswith("#")
    assert yaml.safe_load(text)["data"]["synthetic"] == "founding"


@pytest.mark.parametrize(
    ("text", "field", "words"),
    [
        ("data: null\n", "data", "missing; give data.synthetic or data.path"),
        ("data:\n", "data", "missing; give data.synthetic or data.path"),
        ("data: founding\n", "data", "expected a section of keys (synthetic, path"),
        ("data:\n  path: d.csv\n  target: 5\n", "data.target", "expected text or a list (got 5)"),
        ("data:\n  synthetic: founding\nmodel: [1]\n", "model", "expected a section of keys"),
        ("data:\n  synthetic: foundin\n", "data.synthetic", "did you mean 'founding'?"),
        ("data:\n  synthetic: founding\nname: 5\n", "name", "expected text (got 5)"),
        ("data:\n  synthetic: founding\nname: " + "x" * 101 + "\n", "name", "at most 100 characters"),
    ],
)
def test_pydantic_wording_never_reaches_a_user(tmp_path: Path, text: str, field: str, words: str) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(text)
    result = runner.invoke(app, ["train", str(config)])
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"error: {config}: {field}: ")
    assert words in lines[0]
    for pydantic_words in ("Input should", "instance of", "valid dictionary", "String should"):
        assert pydantic_words not in lines[0]


# ---------------------------------------------------------------- 5. tune without TensorFlow

BLOCK_TENSORFLOW = (
    "import sys\n"
    "class Block:\n"
    "    def find_spec(self, name, path=None, target=None):\n"
    "        if name.split('.')[0] in ('tensorflow', 'keras'):\n"
    "            raise ImportError(name)\n"
    "sys.meta_path.insert(0, Block())\n"
    "from fitdoc.cli import main\n"
)


@pytest.mark.parametrize("where", [["--dir", "tune"], []])
def test_tune_without_tensorflow_checks_first_and_creates_nothing(tmp_path: Path, where: list[str]) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(
        "data:\n  synthetic: wave\n  n_samples: 100\ntraining:\n  epochs: 2\noutput:\n  dir: runs\n"
    )
    code = BLOCK_TENSORFLOW + f"main(['tune', {str(config)!r}, *{where!r}])\n"
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=120
    )
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        "error: TensorFlow is not installed; install the training extra: pip install 'fitdoc[train]'"
    ]
    assert proc.stdout == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.yaml"]  # no tune or runs directory


# ---------------------------------------------------------------- 7. compare


def founding_run_dirs(root: Path) -> list[Path]:
    """The four founding fixtures as `fitdoc train` names run directories: config name and time."""
    dirs = []
    for i, name in enumerate(("noreg", "l2-0.001", "l2-0.0001", "dropout-0.2")):
        run_dir = root / f"founding-{name}-20261201-1959{10 + i}"
        shutil.copytree(VERDICTS / f"founding-{name}", run_dir)
        dirs.append(run_dir)
    return dirs


def test_compare_fits_80_columns_without_timestamps_and_keeps_verdicts_whole(tmp_path: Path) -> None:
    from rich.cells import cell_len

    dirs = [str(d) for d in founding_run_dirs(tmp_path)]
    narrow = runner.invoke(app, ["compare", *dirs], env={"COLUMNS": "80"})
    assert narrow.exit_code == 0, narrow.output
    lines = narrow.stdout.splitlines()
    assert max(cell_len(line) for line in lines) <= 80, narrow.stdout
    assert lines[0] == "4 runs · metric: mae · every run is named founding-<run>"
    assert "20261201" not in narrow.stdout  # the stamps are dropped: the names stay apart without them
    rows = [line.lstrip("★ ").split()[0] for line in lines if " 0.0" in line]
    assert rows == ["noreg", "l2-0.001", "l2-0.0001", "dropout-0.2"]
    wide = runner.invoke(app, ["compare", *dirs], env={"COLUMNS": "200"})
    verdicts = [line.rstrip() for line in wide.stdout.splitlines() if " 0.0" in line]
    assert verdicts[0].endswith(" overfit (gap)") and verdicts[1].endswith(" underfit (over-regularized)")
    assert not any(line.strip() in ("gap", "over-regularized") for line in wide.stdout.splitlines())


def test_two_runs_of_one_config_keep_their_timestamps() -> None:
    from fitdoc.report.compare import plain_run_names

    names = ["a-20261201-195910", "a-20261201-195922", "b-20261201-195933", "c-20261201-195933-2"]
    assert plain_run_names(names) == ["a-20261201-195910", "a-20261201-195922", "b", "c"]


def test_compare_says_what_the_shortened_names_leave_out(tmp_path: Path) -> None:
    for name in ("noreg", "l2"):
        shutil.copy(VERDICTS / f"founding-{'noreg' if name == 'noreg' else 'l2-0.001'}" / "history.csv",
                    tmp_path / f"{name}.csv")  # fmt: skip
    result = runner.invoke(app, ["compare", str(tmp_path / "noreg.csv"), str(tmp_path / "l2.csv")])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == "2 runs · metric: mae · every run is named <run>.csv"


# ---------------------------------------------------------------- 7. tune.csv


def test_tune_csv_uses_compares_figures_and_names_every_tuned_knob() -> None:
    import csv
    import io
    import json

    from fitdoc.config import load_config
    from fitdoc.diagnosis.decide import diagnose_curves
    from fitdoc.history.load import read_history
    from fitdoc.tune.plan import Move
    from fitdoc.tune.state import trials_to_csv
    from fitdoc.tune.trials import settings_of, trial_from_run

    config = load_config(NOREG / "config.yaml")
    curves = read_history(NOREG)
    move = Move(settings_of(config), None, "baseline", "the starting config")
    trial = trial_from_run(0, move, curves, diagnose_curves(curves, config), run_dir=NOREG)
    (row,) = csv.DictReader(io.StringIO(trials_to_csv([trial])))
    assert {"l1", "hidden_layers", "units", "l2", "dropout"} <= set(row)
    assert row["l1"] == "0.0" and row["hidden_layers"] == "5"
    assert "train_mae" not in row and "val_mae" not in row  # no figure without its definition
    shown = json.loads(runner.invoke(app, ["compare", str(NOREG), "--format", "json"]).stdout)["runs"][0]
    assert float(row["final_train_mae"]) == pytest.approx(shown["final_train"], rel=1e-5)
    assert float(row["final_val_mae"]) == pytest.approx(shown["final_val"], rel=1e-5)
    assert float(row["best_val_mae"]) == pytest.approx(shown["best_val"], rel=1e-5)
    assert int(row["best_epoch"]) == shown["best_epoch"]


# ---------------------------------------------------------------- 7. messages and help


def test_a_missing_extra_names_the_path_it_could_not_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    logs = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "events.out.tfevents.1.host").write_bytes(b"\x00" * 16)
        logs.append(tmp_path / name)
    monkeypatch.setitem(sys.modules, "tensorboard.backend.event_processing.event_file_loader", None)
    result = runner.invoke(app, ["diagnose", *map(str, logs)])
    assert result.exit_code == 2
    (line,) = result.stderr.splitlines()  # said once, for the first path it stopped at
    assert line.startswith(f"error: {logs[0]}: ") and "fitdoc[tensorboard]" in line


def test_format_in_help_lists_every_format_it_accepts() -> None:
    from fitdoc.history.load import _FORMAT_ALIASES, FORMATS

    text = " ".join(runner.invoke(app, ["diagnose", "--help"], env={"COLUMNS": "200"}).stdout.split())
    listed = text.split("Force the history format (", 1)[1].split(")", 1)[0].replace(" ", "").split(",")
    for name in FORMATS:
        names = {name} | {alias for alias, target in _FORMAT_ALIASES.items() if target == name}
        assert names & set(listed), (name, listed)
    assert "csv" in listed


def test_train_help_names_every_exit_code_training_can_end_with() -> None:
    text = " ".join(runner.invoke(app, ["train", "--help"], env={"COLUMNS": "120"}).stdout.split())
    text = text.replace("│", "").replace("  ", " ")
    for words in ("0 ok", "1 a verdict", "2 bad input", "3 training diverged", "130 interrupted"):
        assert words in text, words


@pytest.mark.parametrize("command", ["diagnose", "compare", "plot"])
def test_dev_null_is_not_called_a_directory(command: str) -> None:
    proc = run_fitdoc(command, "/dev/null")
    assert proc.returncode == 2
    assert proc.stderr == (
        "error: /dev/null: not a regular file or a directory; expected a history file or a folder\n"
    )


# ---------------------------------------------------------------- 7. the founding plot


def founding_figure(name: str) -> Figure:
    import dataclasses

    from fitdoc.diagnosis.decide import diagnose_curves
    from fitdoc.history.load import discover
    from fitdoc.history.rundir import load_run
    from fitdoc.report.plot import build_figure

    run = load_run(discover([VERDICTS / name])[0])
    diagnosis = diagnose_curves(run.curves, run.config)
    return build_figure([dataclasses.replace(run, diagnosis=diagnosis)])


def test_founding_plot_loss_panel_is_log_like_mae_with_no_zero_line_and_the_change_said_once() -> None:
    figure = founding_figure("founding-noreg")
    metric_ax, loss_ax = figure.axes[:2]
    assert metric_ax.get_yscale() == "log" and loss_ax.get_yscale() == "log"
    legend = [t.get_text() for t in loss_ax.get_legend().get_texts()]
    assert legend == ["train loss", "validation loss"]  # no "regularization part" at 0
    words = "\n".join(t.get_text() for t in figure.texts)
    assert "Suggested change: add L2: model.l2 0 -> 0.0001" in words
    assert words.count("0 -> 0.0001") == 1, words


def test_a_regularized_run_keeps_its_regularization_line() -> None:
    figure = founding_figure("founding-l2-0.001")
    legend = [t.get_text() for t in figure.axes[1].get_legend().get_texts()]
    assert legend == ["train loss", "validation loss", "regularization part"]


# ---------------------------------------------------------------- 7. README


README = Path(__file__).resolve().parents[1] / "README.md"
PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def test_readme_install_lines_work_from_a_clone() -> None:
    import re

    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    text = README.read_text(encoding="utf-8")
    extras = set(tomllib.loads(PYPROJECT.read_text())["project"]["optional-dependencies"])
    assert "pip install 'fitdoc[" not in text and 'pip install "fitdoc[' not in text  # not on an index
    named = re.findall(r'pip install -e "\.\[([a-z,]+)\]"', text)
    assert {"train", "test", "tensorboard", "mlflow", "ray"} <= {
        e for group in named for e in group.split(",")
    }
    assert all(set(group.split(",")) <= extras for group in named), named
    row = next(line for line in text.splitlines() if line.startswith("| MLflow file store"))
    assert "`MLFLOW_ALLOW_FILE_STORE=true`" in row and "MLflow 3" in row

"""Security: nothing in an input file is constructed, unpickled, evaluated, or written outside `output.dir`.

Issue 8: safe YAML only, no pickle anywhere in loading, run names sanitized,
and nothing from an input file is ever evaluated. The source scan fails when
someone adds an unsafe loader; the behavioural tests feed hostile files to the
real loaders and the CLI and check that no code ran.
"""

from __future__ import annotations

import ast
import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from fitdoc.cli import app
from fitdoc.config import load_config
from fitdoc.errors import ConfigError, FitdocError
from fitdoc.history.rundir import create_run_dir, safe_name

PACKAGE = Path(__file__).resolve().parents[1] / "fitdoc"

# ------------------------------------------------------------------ the source: no unsafe loaders

BANNED_MODULES = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "joblib", "marshal", "shelve"}
# Builtins that run text as code (called by bare name; `re.compile` is fine).
BANNED_BUILTINS = {"eval", "exec", "compile", "__import__"}
BANNED_METHODS = {
    "read_pickle",  # pandas
    "unsafe_load",
    "full_load",
    "unsafe_load_all",
    "full_load_all",
    "enable_unsafe_deserialization",  # keras
}
BANNED_NAMES = {"Loader", "UnsafeLoader", "FullLoader"}  # yaml.Loader and friends construct objects


def _violations(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        where = f"{path.name}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Import):
            found += [
                f"{where} imports {a.name}" for a in node.names if a.name.split(".")[0] in BANNED_MODULES
            ]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in BANNED_MODULES:
            found.append(f"{where} imports from {node.module}")
        elif isinstance(node, ast.Call):
            func = node.func
            name = (
                func.id
                if isinstance(func, ast.Name)
                else func.attr
                if isinstance(func, ast.Attribute)
                else ""
            )
            if (isinstance(func, ast.Name) and name in BANNED_BUILTINS) or name in BANNED_METHODS:
                found.append(f"{where} calls {name}()")
            owner = (
                func.value.id if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) else ""
            )
            if owner == "yaml" and name in ("load", "load_all"):
                found.append(f"{where} calls yaml.load() (use yaml.safe_load)")
            if owner in ("np", "numpy") and name == "load":
                found.append(f"{where} calls numpy.load() (can unpickle)")
            if name in ("eval", "query") and isinstance(func, ast.Attribute):
                found.append(f"{where} calls .{name}() (pandas evaluates strings)")
            for keyword in node.keywords:
                if keyword.arg in ("allow_pickle",) or (
                    keyword.arg == "safe_mode"
                    and isinstance(keyword.value, ast.Constant)
                    and not keyword.value.value
                ):
                    found.append(f"{where} passes {keyword.arg}={ast.unparse(keyword.value)}")
        elif isinstance(node, ast.Attribute) and node.attr in BANNED_NAMES:
            found.append(f"{where} uses {ast.unparse(node)}")
    return found


def test_source_has_no_unsafe_loader_or_eval() -> None:
    files = sorted(PACKAGE.rglob("*.py"))
    assert len(files) > 10
    violations = [v for f in files for v in _violations(f)]
    assert not violations, "\n".join(violations)


def test_the_scan_catches_what_it_bans(tmp_path: Path) -> None:
    """The scan itself can fail: each banned pattern in a sample file is reported."""
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import pickle\nimport yaml\nimport numpy as np\n"
        "yaml.load(t, Loader=yaml.Loader)\nnp.load(p, allow_pickle=True)\neval(s)\ndf.query(s)\n"
    )
    found = " ".join(_violations(sample))
    for expected in (
        "pickle",
        "yaml.load",
        "yaml.Loader",
        "numpy.load",
        "allow_pickle",
        "eval()",
        ".query()",
    ):
        assert expected in found, (expected, found)


# ------------------------------------------------------------------ YAML: safe loading only

PYTHON_TAGS = [
    "!!python/object/apply:os.system ['touch {marker}']",
    "!!python/object/apply:subprocess.check_call [['touch', '{marker}']]",
    "!!python/object/new:os.system ['touch {marker}']",
    "!!python/name:os.system",
    "!!python/module:os",
]


@pytest.mark.parametrize("tag", PYTHON_TAGS)
@pytest.mark.parametrize("where", ["top", "value"])
def test_yaml_python_tags_are_refused(tmp_path: Path, tag: str, where: str) -> None:
    marker = tmp_path / "pwned"
    value = tag.format(marker=marker)
    text = f"{value}\n" if where == "top" else f"data:\n  synthetic: founding\nname: {value}\n"
    path = tmp_path / "evil.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(path) in info.value.one_line()
    assert not marker.exists()


@pytest.mark.parametrize(
    "args",
    [
        ["train", "{cfg}"],
        ["diagnose", "{history}", "--config", "{cfg}"],
        ["diagnose", "{history}", "--thresholds", "{cfg}"],
        ["rules", "--thresholds", "{cfg}"],
    ],
    ids=["train", "diagnose-config", "diagnose-thresholds", "rules-thresholds"],
)
def test_cli_refuses_python_tags_everywhere_yaml_is_read(tmp_path: Path, args: list[str]) -> None:
    """Every YAML the CLI reads (configs, threshold overrides): exit 2, one line, nothing run."""
    marker = tmp_path / "pwned"
    cfg = tmp_path / "evil.yaml"
    cfg.write_text(f"data:\n  synthetic: !!python/object/apply:os.system ['touch {marker}']\n")
    history = tmp_path / "history.csv"
    history.write_text(
        "epoch,mae,val_mae\n" + "".join(f"{e},{1 / (e + 1)},{1 / (e + 1)}\n" for e in range(20))
    )
    argv = [a.format(cfg=cfg, history=history) for a in args]
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 2, (result.exit_code, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and str(cfg) in lines[0], lines
    assert not marker.exists()


def _billion_laughs(levels: int) -> str:
    lines = ["l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for i in range(1, levels):
        lines.append(f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    "tail", ["name: *l8", "model: {l2: *l8}", "data: {synthetic: founding, features: *l8}"]
)
def test_yaml_alias_bomb_is_a_short_error(tmp_path: Path, tail: str) -> None:
    """9^9 strings by aliases: refused in well under a second, with a short message."""
    path = tmp_path / "bomb.yaml"
    path.write_text(_billion_laughs(9) + "data: {synthetic: founding}\n" * ("data" not in tail) + tail + "\n")
    started = time.perf_counter()
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert time.perf_counter() - started < 5
    assert len(info.value.one_line()) < 500


# ------------------------------------------------------------------ nothing from an input is evaluated

CODE = "__import__('os').system('touch {marker}')"


def test_history_cells_and_headers_are_never_evaluated(tmp_path: Path) -> None:
    from fitdoc.history.load import read_history

    marker = tmp_path / "pwned"
    code = CODE.format(marker=marker)
    as_json = json.dumps(code)
    files = {
        "cells.csv": "epoch,loss,val_loss\n" + "".join(f"{e},{code},=1+{e}\n" for e in range(12)),
        "header.csv": f"epoch,{code},val_loss\n" + "".join(f"{e},1,2\n" for e in range(12)),
        "values.json": json.dumps({"loss": [code, 1], "val_loss": [1, 2]}),
        "keys.json": f'{{{as_json}: [1, 2], "val_loss": [1, 2]}}',
        "trainer_state.json": json.dumps({"log_history": [{"eval_loss": code, "epoch": 1}]}),
    }
    for name, text in files.items():
        path = tmp_path / name
        path.write_text(text)
        for column in (None, code):
            try:
                read_history(path, val_col=column)
            except FitdocError as exc:
                assert "\n" not in exc.one_line()
    assert not marker.exists()


def test_config_strings_are_never_evaluated(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    code = CODE.format(marker=marker)
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"name": code[:100], "data": {"path": "d.csv", "target": code}}))
    config = load_config(path)
    assert config.data.target == code
    with pytest.raises(ConfigError):
        load_config(path, [f"training.epochs={code}"])
    assert not marker.exists()


# ------------------------------------------------------------------ run names stay inside output.dir

HOSTILE_NAMES = [
    "../../escape",
    "/etc/passwd",
    "..",
    ".",
    "",
    "a/../../b",
    "..\\..\\windows",
    "name\x00with-nul",
    "~root",
    "-rf",
    ".hidden",
    "ünïcödé/∕slash",
    "x" * 300,
]


@settings(max_examples=200, deadline=None)
@given(name=st.one_of(st.sampled_from(HOSTILE_NAMES), st.text(max_size=120)))
def test_safe_name_is_one_plain_path_component(name: str) -> None:
    cleaned = safe_name(name)
    assert cleaned and len(cleaned) <= 60
    assert cleaned not in (".", "..")
    assert not cleaned.startswith(("-", "."))
    assert "/" not in cleaned and "\\" not in cleaned and "\x00" not in cleaned
    assert Path(cleaned).name == cleaned


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_run_dir_is_created_inside_output_dir(tmp_path: Path, name: str) -> None:
    output = tmp_path / "nest" / "runs"
    output.mkdir(parents=True)
    run_dir = create_run_dir(output, name, now=0.0)
    assert run_dir.parent == output
    assert run_dir.resolve().parent == output.resolve()
    assert sorted(p.name for p in tmp_path.rglob("*")) == sorted(["nest", "runs", run_dir.name])


@pytest.mark.training
def test_train_with_hostile_name_writes_only_inside_output_dir(tmp_path: Path) -> None:
    """The real CLI: `name: ../../escape` trains into `output.dir`, and nowhere else."""
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    config = work / "c.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "name": "../../escape",
                "data": {"synthetic": "founding", "n_samples": 200},
                "model": {"hidden_layers": 1, "units": 4},
                "training": {"epochs": 2, "batch_size": 100},
                "output": {"dir": "runs"},
            }
        )
    )
    before = set(tmp_path.rglob("*"))
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run(
        [sys.executable, "-m", "fitdoc", "train", str(config), "--quiet"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    run_dir = Path(done.stdout.splitlines()[-1])
    if not run_dir.is_absolute():
        run_dir = work / run_dir
    assert run_dir.resolve().parent == (work / "runs").resolve()
    assert "escape" in run_dir.name
    created = set(tmp_path.rglob("*")) - before
    outside = [p for p in created if not p.resolve().is_relative_to((work / "runs").resolve())]
    assert outside == [], outside


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path: Path) -> None:
    """config.yaml and run.json are written by rename: a failed write leaves the old file whole."""
    from fitdoc.history.rundir import atomic_write_text

    path = tmp_path / "run.json"
    atomic_write_text(path, '{"status": "running"}\n')
    with pytest.raises(UnicodeEncodeError):
        atomic_write_text(path, '{"status": "\udc00"}\n')  # a lone surrogate cannot be encoded
    assert path.read_text() == '{"status": "running"}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"], "temp file left behind"


@pytest.mark.parametrize("umask", [0o022, 0o027, 0o077])
def test_written_files_respect_the_umask(tmp_path: Path, umask: int) -> None:
    """config.yaml, run.json, history.csv, tune.json/tune.csv, next/best.yaml: the
    mode any tool gives a new file (0666 less the umask), not mkstemp's 0600."""
    from fitdoc.config import validate_config
    from fitdoc.history.rundir import HISTORY_COLUMNS, HistoryWriter, write_config, write_run_json
    from fitdoc.tune.plan import Trial
    from fitdoc.tune.state import save_state

    config = validate_config({"data": {"synthetic": "founding"}})
    old = os.umask(umask)
    try:
        write_config(config, tmp_path / "next.yaml")
        write_run_json(tmp_path, {"status": "completed"})
        with HistoryWriter(tmp_path / "history.csv", HISTORY_COLUMNS):
            pass
        save_state(tmp_path, config, [Trial(0, {}, "balanced")], 3, 1, status="completed", stop_reason="")
    finally:
        os.umask(old)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in tmp_path.iterdir()}
    assert set(modes) == {"next.yaml", "run.json", "history.csv", "tune.json", "tune.csv"}
    assert modes == dict.fromkeys(modes, 0o666 & ~umask)

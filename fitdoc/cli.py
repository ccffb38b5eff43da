"""The `fitdoc` command line: parse, call, render, choose the exit code.

Everything heavy (pandas, TensorFlow, matplotlib) is imported inside the
command that needs it, so `fitdoc --help` and `fitdoc diagnose` start fast and
work without TensorFlow installed.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterable, Sequence
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from fitdoc import __version__
from fitdoc.errors import ExitCode, FitdocError, MissingDependencyError
from fitdoc.verdict import Verdict

if TYPE_CHECKING:
    from rich.console import Console

    from fitdoc.config import AnyConfig
    from fitdoc.history.rundir import ReadOptions, Run
    from fitdoc.verdict import Diagnosis


class _HelpTidying:
    """`--help` as a well-kept CLI writes it: `--quiet, -q` with no `<bool>`, choices as
    `[text|json]`, arguments as `CONFIG` and `PATH...` (not `{CONFIG}`, `<list[Path]>`).

    Typer 0.29 prints each parameter's Python type as its metavar; here flags get none,
    choices the usual brackets, and arguments only their name. Options that take a
    value name it themselves (`metavar="FILE"`), and a test keeps it so. Typer's
    internals are touched only where present, so an older typer keeps its own help.
    """

    def get_params(self, ctx: Any) -> list[Any]:
        params: list[Any] = super().get_params(ctx)  # type: ignore[misc]
        for param in params:
            _tidy_param(param, ctx)
        return params

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        pieces: list[str] = super().collect_usage_pieces(ctx)  # type: ignore[misc]
        arguments = [p for p in self.get_params(ctx) if p.param_type_name == "argument"]
        for argument in arguments:
            if not hasattr(argument, "_usage_display_name"):  # an older typer writes usage as click does
                continue
            raw = argument._usage_display_name()
            name = argument.metavar or argument.name.upper()
            if argument.nargs != 1 and not name.endswith("..."):
                name += "..."
            pieces = [name if piece == raw else piece for piece in pieces]
        return pieces


def _tidy_param(param: Any, ctx: Any) -> None:
    if param.param_type_name == "argument":
        # The name says it (CONFIG, PATH...); the Python type beside it says nothing more.
        param.display_type_rich = lambda ctx: None  # noqa: ARG005  (typer calls it with ctx=)
    elif param.metavar is None and getattr(param, "is_flag", False):
        param.metavar = ""
    elif param.metavar is None and hasattr(param, "display_type"):
        label = param.display_type(ctx)
        if "|" in label:
            param.metavar = "[" + label.strip("<>") + "]"


class _Command(_HelpTidying, typer.core.TyperCommand):
    pass


class _Group(_HelpTidying, typer.core.TyperGroup):
    pass


app = typer.Typer(
    name="fitdoc",
    cls=_Group,
    help="Train dense regression nets and diagnose their learning curves: "
    "overfit, underfit or balanced, and the next regularization change to try.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)

_state = {"debug": False}
F = TypeVar("F", bound=Callable[..., Any])


class OutputFormat(str, Enum):
    text = "text"
    json = "json"
    markdown = "markdown"
    github = "github"


class TableFormat(str, Enum):
    text = "text"
    json = "json"
    markdown = "markdown"


class TuneBackend(str, Enum):
    local = "local"
    ray = "ray"


VERDICT_NAMES = tuple(v.value for v in Verdict)


def _stdout() -> Console:
    # rich loads only for what it draws (~13 ms of a cold start): JSON, Markdown and annotations skip it.
    import os

    from rich.console import Console

    # Piped into a CI log or a file, rich would assume 80 columns and wrap run names in
    # tables; logs are wider than that. COLUMNS still wins when set.
    piped = not sys.stdout.isatty() and "COLUMNS" not in os.environ
    return Console(soft_wrap=True, width=120 if piped else None)


def _stderr() -> Console:
    from rich.console import Console

    return Console(stderr=True, soft_wrap=True)


def _error_line(message: str) -> None:
    # Plain write: one line, never wrapped or styled into several.
    sys.stderr.write(f"error: {' '.join(message.split())}\n")
    sys.stderr.flush()


def exit_boundary(command: F) -> F:
    """The one place where domain errors become one stderr line and an exit code."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except (typer.Exit, typer.Abort):
            raise
        except FitdocError as exc:
            for line in exc.lines():
                _error_line(line)
            raise typer.Exit(int(exc.exit_code)) from None
        except KeyboardInterrupt:
            _error_line("interrupted")
            raise typer.Exit(int(ExitCode.INTERRUPTED)) from None
        except Exception as exc:
            if _state["debug"]:
                raise
            _error_line(
                f"internal error: {type(exc).__name__}: {exc} (a bug in fitdoc; rerun with --debug "
                "for the traceback)"
            )
            raise typer.Exit(int(ExitCode.INTERNAL)) from None

    return wrapper  # type: ignore[return-value]


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"fitdoc {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[  # noqa: ARG001 (typer handles --version in its eager callback)
        bool,
        typer.Option(
            "--version", callback=_version_callback, is_eager=True, help="Show the version and exit."
        ),
    ] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks of internal errors.")] = False,
) -> None:
    _state["debug"] = debug


# ------------------------------------------------------------------ options

PathsArg = Annotated[
    list[Path],
    typer.Argument(
        metavar="PATH...",
        help="History files, run directories, or directories holding them (searched recursively).",
    ),
]
FormatInOpt = Annotated[
    str | None,
    typer.Option(
        "--format-in",
        metavar="FORMAT",
        help="Force the history format (fitdoc, keras_csv, pandas, json, lightning, hf, csv, tensorboard, "
        "mlflow, wandb).",
    ),
]
TrainColOpt = Annotated[
    str | None, typer.Option("--train-col", metavar="COLUMN", help="Column of the train series.")
]
ValColOpt = Annotated[
    str | None, typer.Option("--val-col", metavar="COLUMN", help="Column of the validation series.")
]
FailOnOpt = Annotated[
    str | None,
    typer.Option(
        "--fail-on",
        metavar="VERDICTS",
        help="Comma-separated verdicts that make the exit code 1 (overfit,underfit,balanced,inconclusive).",
    ),
]
SetOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        metavar="KEY=VALUE",
        help="Override a config field, e.g. --set training.epochs=50 (repeatable).",
    ),
]


def parse_fail_on(text: str | None) -> frozenset[str]:
    if not text:
        return frozenset()
    names = {part.strip().lower() for part in text.split(",") if part.strip()}
    unknown = sorted(names - set(VERDICT_NAMES))
    if unknown:
        raise FitdocError(
            f"unknown verdict {', '.join(unknown)}; expected some of: {', '.join(VERDICT_NAMES)}",
            field="--fail-on",
        )
    return frozenset(names)


def _read_options(format_in: str | None, train_col: str | None, val_col: str | None) -> ReadOptions:
    from fitdoc.history.rundir import ReadOptions

    return ReadOptions(format_in=format_in, train_col=train_col, val_col=val_col)


def _load_runs(
    paths: Sequence[Path], options: ReadOptions, config: AnyConfig | None
) -> tuple[list[Run], list[FitdocError]]:
    """Every readable run under `paths`, and the errors of the others (each path stands alone)."""
    from fitdoc.history.load import discover
    from fitdoc.history.rundir import load_run

    runs: list[Run] = []
    errors: list[FitdocError] = []
    for path in paths:
        try:
            sources = discover([path])
        except FitdocError as exc:
            errors.append(exc)
            continue
        for source in sources:
            try:
                runs.append(load_run(source, options, config))
            except MissingDependencyError as exc:
                # The same for every path: one line, not one per file, naming the first it stopped at.
                if exc.path is None:
                    raise MissingDependencyError(exc.message, path=source.history_path) from None
                raise
            except FitdocError as exc:
                errors.append(exc)
    return runs, errors


def _report_errors(errors: Iterable[FitdocError]) -> int:
    code = 0
    for exc in errors:
        for line in exc.lines():
            _error_line(line)
        code = max(code, int(exc.exit_code))
    return code


def _verdict_code(diagnoses: Iterable[Diagnosis], fail_on: frozenset[str]) -> int:
    hit = any(d.verdict.value in fail_on for d in diagnoses)
    return int(ExitCode.VERDICT_FAILED) if hit else int(ExitCode.OK)


def _diagnose_runs(runs: Sequence[Run], thresholds: dict[str, Any] | None) -> list[Diagnosis]:
    from fitdoc.diagnosis.measured import diagnose_run

    # A probed run is diagnosed from its neighbours' measured curves; any other from its own.
    return [diagnose_run(run.curves, run.config, run.probes, thresholds) for run in runs]


def _load_thresholds(path: Path | None) -> dict[str, Any] | None:
    if path is None:
        return None
    from fitdoc.diagnosis.rules.registry import load_threshold_overrides

    return load_threshold_overrides(path)


def _render_diagnoses(
    diagnoses: Sequence[Diagnosis],
    fmt: OutputFormat,
    plot_path: Path | None,
    errors: Sequence[FitdocError] = (),
    fail_on: frozenset[str] = frozenset(),
) -> None:
    if fmt is OutputFormat.text:
        from fitdoc.report.text import render_diagnoses

        render_diagnoses(diagnoses, _stdout())
        return
    if fmt is OutputFormat.json:
        from fitdoc.report.jsonout import diagnoses_to_json

        text = diagnoses_to_json(diagnoses, errors=errors)
    elif fmt is OutputFormat.markdown:
        from fitdoc.report.markdown import diagnoses_to_markdown

        text = diagnoses_to_markdown(diagnoses, plot_path=None if plot_path is None else plot_path.name)
    else:
        from fitdoc.report.github import diagnoses_to_annotations

        text = diagnoses_to_annotations(diagnoses, errors=errors, fail_on=sorted(fail_on))
    _write_stdout(text)


def _write_stdout(text: str) -> None:
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    sys.stdout.flush()


def _views(runs: Sequence[Run], diagnoses: Sequence[Diagnosis | None]) -> list[Run]:
    import dataclasses

    return [dataclasses.replace(run, diagnosis=diag) for run, diag in zip(runs, diagnoses, strict=True)]


def _plot(runs: Sequence[Run], diagnoses: Sequence[Diagnosis | None], out: Path, scale: str) -> Path:
    from fitdoc.report.plot import plot_runs

    return plot_runs(_views(runs, diagnoses), out, scale=scale)  # type: ignore[arg-type]  # checked there


# ------------------------------------------------------------------ commands


@app.command(cls=_Command)
@exit_boundary
def train(
    config_path: Annotated[Path, typer.Argument(metavar="CONFIG", help="The run's YAML config.")],
    overrides: SetOpt = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress output (for CI logs).")] = False,
    plot: Annotated[bool, typer.Option("--plot", help="Write curves.png into the run directory.")] = False,
    probe: Annotated[
        bool,
        typer.Option(
            "--probe",
            help="Also train the run's ladder neighbours (L2/L1 and dropout one step up and down) beside it, "
            "in RUN/probes/; the diagnosis is then measured from their validation curves.",
        ),
    ] = False,
    fail_on: FailOnOpt = None,
    output_format: Annotated[
        OutputFormat, typer.Option("--format", help="How to print the diagnosis at the end.")
    ] = OutputFormat.text,
) -> None:
    """Train the network a config describes; write a run directory; print its diagnosis.

    The last line on stdout is the run directory's path. Exit codes: 0 ok, 1 a verdict
    named in --fail-on was found, 2 bad input or usage, 3 training diverged (loss NaN/inf),
    4 training failed (an internal error; run.json says `failed`), 130 interrupted
    (Ctrl-C / SIGTERM); after 3, 4 and 130 the history is kept up to the last finished epoch.
    """
    from fitdoc.config import Config, load_config

    fail = parse_fail_on(fail_on)
    config = load_config(config_path, overrides)
    assert isinstance(config, Config)
    from fitdoc.training.run import run_training

    result = run_training(config, console=_stderr(), progress=not quiet, probe=probe)
    code = int(ExitCode.OK)
    if result.status == "failed":
        if _state["debug"] and result.error is not None:
            raise result.error
        _error_line(f"{result.run_dir}: {result.message}")
        code = int(result.error.exit_code if isinstance(result.error, FitdocError) else ExitCode.INTERNAL)
    elif result.status == "interrupted":
        _error_line(f"{result.run_dir}: training interrupted; history kept up to the last finished epoch")
        code = int(ExitCode.INTERRUPTED)
    elif result.status == "diverged":
        _error_line(f"{result.run_dir}: {result.message}")
        code = int(ExitCode.DIVERGED)

    from fitdoc.history.load import discover
    from fitdoc.history.rundir import load_run

    try:
        run = load_run(discover([result.run_dir])[0], config=config)
    except FitdocError as exc:
        # An interrupted first epoch leaves an empty history: nothing to diagnose.
        _error_line(exc.one_line())
    else:
        diagnoses = _diagnose_runs([run], None)
        if plot:
            written = _plot([run], diagnoses, result.run_dir / "curves.png", "auto")
            _stderr().print(f"wrote {written}", highlight=False, soft_wrap=True)
        _render_diagnoses(diagnoses, output_format, None)
        code = max(code, _verdict_code(diagnoses, fail))
    typer.echo(str(result.run_dir))
    raise typer.Exit(code)


@app.command(cls=_Command)
@exit_boundary
def diagnose(
    paths: PathsArg,
    output_format: Annotated[
        OutputFormat, typer.Option("--format", help="Output format.")
    ] = OutputFormat.text,
    fail_on: FailOnOpt = None,
    config_path: Annotated[
        Path | None,
        typer.Option(
            "--config",
            metavar="FILE",
            help="The run's config (model and training sections); overrides a run directory's.",
        ),
    ] = None,
    emit_config: Annotated[
        Path | None,
        typer.Option("--emit-config", metavar="FILE", help="Write the config to train next (one path only)."),
    ] = None,
    plot_path: Annotated[
        Path | None,
        typer.Option("--plot", metavar="FILE", help="Also write the learning curves to this PNG/SVG."),
    ] = None,
    thresholds: Annotated[
        Path | None,
        typer.Option("--thresholds", metavar="FILE", help="YAML file overriding rule thresholds."),
    ] = None,
    format_in: FormatInOpt = None,
    train_col: TrainColOpt = None,
    val_col: ValColOpt = None,
) -> None:
    """Label each history overfit / underfit / balanced / inconclusive, explain why, suggest the next change.

    Exit codes: 0 ok, 1 a verdict named in --fail-on was found, 2 bad input or usage.
    """
    fail = parse_fail_on(fail_on)
    config = None
    if config_path is not None:
        from fitdoc.config import load_config

        config = load_config(config_path, model_only=True)
    overrides = _load_thresholds(thresholds)
    runs, errors = _load_runs(paths, _read_options(format_in, train_col, val_col), config)
    if emit_config is not None:
        try:
            _check_emit_config(runs, errors)
        except FitdocError:
            _report_errors(errors)
            raise
    diagnoses = _diagnose_runs(runs, overrides)
    if plot_path is not None and runs:
        _plot(runs, diagnoses, plot_path, "auto")
    if diagnoses or output_format in (OutputFormat.json, OutputFormat.github):
        _render_diagnoses(diagnoses, output_format, plot_path, errors, fail)
    if emit_config is not None and runs:
        _emit_config(runs, diagnoses, emit_config)
    code = max(_report_errors(errors), _verdict_code(diagnoses, fail))
    raise typer.Exit(code)


NO_CONFIG = "no config is known for this history; pass --config CONFIG.yaml"


def _check_emit_config(runs: Sequence[Run], errors: Sequence[FitdocError]) -> None:
    """Refuse `--emit-config` before anything is printed when it cannot write a config:
    several histories, or one whose config is unknown (fitdoc's defaults are no config
    of the user's; a file of them would look trainable and train something else)."""
    if len(runs) > 1 or (not runs and not errors):
        raise FitdocError(f"needs exactly one history, got {len(runs)}", field="--emit-config")
    if runs and runs[0].config is None:
        raise FitdocError(NO_CONFIG, path=runs[0].path or runs[0].curves.source, field="--emit-config")


def _emit_config(runs: Sequence[Run], diagnoses: Sequence[Diagnosis], out: Path) -> None:
    """Write the config to train next, renamed after its change; nothing when there is no change.

    A balanced (or inconclusive) run has no next step: that is an answer, not
    bad input, so a CI job that always passes --emit-config keeps exit 0. A
    config known only in part (`--config` with no usable data section) is
    written as what is known, and says so in its first lines and on stderr.
    """
    from fitdoc.config import data_problem, known_config_yaml
    from fitdoc.diagnosis.suggest import next_config
    from fitdoc.history.rundir import atomic_write_text, write_config

    run, diagnosis = runs[0], diagnoses[0]
    assert run.config is not None  # _check_emit_config refused the others
    suggestion = diagnosis.suggestion
    if suggestion is None or suggestion.primary.to is None:
        why = f"the run is {diagnosis.verdict}" if suggestion is None else "the ladder has no further step"
        _stderr().print(f"{out}: nothing written: {why}, so there is no change to apply", highlight=False)
        return
    change = suggestion.primary
    name = next_run_name(run.config.name, change.key, change.to)
    config = next_config(run.config, suggestion).with_changes({"name": name})
    problem = data_problem(config)
    if problem is None:
        write_config(config, out)
        _stderr().print(f"wrote {out} as {config.name!r} ({change.text})", highlight=False)
        return
    header = (
        f"fitdoc: INCOMPLETE, not trainable as it stands: {problem}.\n"
        f"The keys known for {run.name} with the next change ({change.text});\n"
        "keys not written take fitdoc's defaults."
    )
    atomic_write_text(out, known_config_yaml(run.config, {change.key: change.to, "name": name}, header))
    _stderr().print(
        f"wrote {out} as {name!r} ({change.text}); incomplete: {problem}", highlight=False, soft_wrap=True
    )


def next_run_name(name: str, key: str, value: Any) -> str:
    """`founding-noreg` + `model.l2 -> 0.0001` -> `founding-noreg-l2-0.0001`.

    A suffix of an earlier change to the same key is replaced, not stacked
    (`founding-l2-1e-3` -> `founding-l2-0.0001`), and the result fits the
    100 characters a name may have.
    """
    import re

    leaf = key.rsplit(".", 1)[-1].replace("_", "-")
    if isinstance(value, dict):
        text = "-".join(f"{k.replace('_', '-')}-{_name_value(v)}" for k, v in value.items())
    else:
        text = _name_value(value)
    suffix = f"-{leaf}-{text}" if text else f"-{leaf}"
    base = re.sub(rf"-{re.escape(leaf)}-[0-9][0-9a-z.+-]*$", "", name) or name
    return base[: 100 - len(suffix)] + suffix


def _name_value(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else f"{value:g}"
    return "" if value is None else str(value)


@app.command(cls=_Command)
@exit_boundary
def plot(
    paths: PathsArg,
    output: Annotated[
        Path, typer.Option("--output", "-o", metavar="FILE", help="Image to write (.png or .svg).")
    ] = Path("curves.png"),
    log: Annotated[
        bool | None, typer.Option("--log/--linear", help="Force a log or linear y axis (default: auto).")
    ] = None,
    no_diagnosis: Annotated[
        bool, typer.Option("--no-diagnosis", help="Do not annotate the verdict and suggestion.")
    ] = False,
    format_in: FormatInOpt = None,
    train_col: TrainColOpt = None,
    val_col: ValColOpt = None,
) -> None:
    """Plot learning curves, annotated with the diagnosis; several runs side by side."""
    runs, errors = _load_runs(paths, _read_options(format_in, train_col, val_col), None)
    code = _report_errors(errors)
    if runs:
        diagnoses: list[Diagnosis | None] = (
            [None] * len(runs) if no_diagnosis else list(_diagnose_runs(runs, None))
        )
        scale = "auto" if log is None else ("log" if log else "linear")
        written = _plot(runs, diagnoses, output, scale)
        typer.echo(str(written))
    raise typer.Exit(code)


@app.command(cls=_Command)
@exit_boundary
def compare(
    paths: PathsArg,
    output_format: Annotated[TableFormat, typer.Option("--format", help="Output format.")] = TableFormat.text,
    format_in: FormatInOpt = None,
    train_col: TrainColOpt = None,
    val_col: ValColOpt = None,
) -> None:
    """A table of runs: config differences, best/final train and val MAE, verdicts.

    A run trained with --probe is compared with its neighbours.
    """
    from fitdoc.history.rundir import with_probes
    from fitdoc.report import compare as compare_report
    from fitdoc.report.comparison import compare_runs

    runs, errors = _load_runs(paths, _read_options(format_in, train_col, val_col), None)
    # A probed run is compared with the neighbours trained beside it.
    runs = with_probes(runs)
    code = _report_errors(errors)
    if runs:
        comparison = compare_runs(_views(runs, _diagnose_runs(runs, None)))
        if output_format is TableFormat.text:
            compare_report.render_comparison(comparison, _stdout())
        elif output_format is TableFormat.json:
            _write_stdout(compare_report.comparison_to_json(comparison, errors=errors))
        else:
            _write_stdout(compare_report.comparison_to_markdown(comparison))
    raise typer.Exit(code)


@app.command(cls=_Command)
@exit_boundary
def tune(
    config_path: Annotated[Path, typer.Argument(metavar="CONFIG", help="The starting config.")],
    max_runs: Annotated[int, typer.Option("--max-runs", min=1, metavar="N", help="Budget of trainings.")] = 6,
    parallel: Annotated[
        int | None,
        typer.Option(
            "--parallel",
            min=1,
            metavar="N",
            help="Trials run at once (local: default 1; ray: default the cluster's CPUs / --cpus-per-trial).",
        ),
    ] = None,
    tune_dir: Annotated[
        Path | None,
        typer.Option("--dir", metavar="DIR", help="Tune directory (default: a new one under output.dir)."),
    ] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the tune in --dir.")] = False,
    overrides: SetOpt = None,
    plot: Annotated[bool, typer.Option("--plot", help="Plot all trials into the tune directory.")] = False,
    backend: Annotated[
        TuneBackend, typer.Option("--backend", help="Where trials train: local processes or Ray tasks.")
    ] = TuneBackend.local,
    address: Annotated[
        str | None,
        typer.Option(
            "--address",
            metavar="ADDRESS",
            help="Ray cluster to join (`auto`, `ray://host:port`); default: start a local Ray.",
        ),
    ] = None,
    cpus_per_trial: Annotated[
        float | None,
        typer.Option("--cpus-per-trial", metavar="N", help="CPUs Ray reserves for each trial (default 1)."),
    ] = None,
) -> None:
    """Train, diagnose, apply the suggestion, repeat until balanced or out of budget."""
    from fitdoc.config import Config, load_config
    from fitdoc.tune import run_tune

    config = load_config(config_path, overrides)
    assert isinstance(config, Config)
    if resume and tune_dir is None:
        raise FitdocError("--resume needs --dir pointing at the tune directory", field="--resume")
    result = run_tune(
        config,
        tune_dir=tune_dir,
        max_runs=max_runs,
        parallel=parallel,
        resume=resume,
        console=_stderr(),
        plot=plot,
        backend=backend.value,
        address=address,
        cpus_per_trial=cpus_per_trial,
    )
    typer.echo(str(result.tune_dir))
    raise typer.Exit(int(result.exit_code))


class WatchFormat(str, Enum):
    text = "text"
    json = "json"


@app.command(cls=_Command)
@exit_boundary
def watch(
    path: Annotated[
        Path,
        typer.Argument(
            metavar="PATH",
            help="The history being written: a file, a run directory, a TensorBoard, MLflow or W&B run.",
        ),
    ],
    fail_on: FailOnOpt = None,
    min_confidence: Annotated[
        float,
        typer.Option(
            "--min-confidence",
            min=0.0,
            max=1.0,
            metavar="C",
            help="Exit 1 on a --fail-on verdict only at this confidence or more.",
        ),
    ] = 0.8,
    interval: Annotated[
        float,
        typer.Option("--interval", min=0.01, metavar="S", help="Seconds between polls (longer while quiet)."),
    ] = 1.0,
    idle: Annotated[
        float,
        typer.Option("--idle", min=0.0, metavar="S", help="Stop after this many seconds with nothing new."),
    ] = 60.0,
    output_format: Annotated[
        WatchFormat, typer.Option("--format", help="text, or one JSON object per line.")
    ] = WatchFormat.text,
    format_in: FormatInOpt = None,
    train_col: TrainColOpt = None,
    val_col: ValColOpt = None,
) -> None:
    """Follow a history while it is written; re-diagnose at each new evaluation.

    Prints a line when the verdict or its cause changes, and the diagnosis at the end.
    Exit codes: 1 as soon as a --fail-on verdict is reached with --min-confidence;
    0 when the run ends (run.json leaves `running`, or nothing new for --idle seconds);
    2 for a path it cannot read; 130 on Ctrl-C.
    """
    from fitdoc import watch as watching
    from fitdoc.history.rundir import ReadOptions

    options = watching.WatchOptions(
        fail_on=parse_fail_on(fail_on),
        min_confidence=min_confidence,
        interval=interval,
        idle=idle,
        read=ReadOptions(format_in=format_in, train_col=train_col, val_col=val_col, complete_lines=True),
    )
    source = watching.one_source(path)
    as_json = output_format is WatchFormat.json

    def emit(event: watching.Event) -> None:
        if as_json:
            _write_stdout(event.to_json())
        elif event.kind == "note":
            _stderr().print(f"note: {event.message}", highlight=False, soft_wrap=True)
        elif event.kind == "verdict":
            _write_stdout(event.message)
        elif event.diagnosis is not None:
            _write_stdout(event.message)
            from fitdoc.report.text import render_diagnoses

            render_diagnoses([event.diagnosis], _stdout())

    result = watching.watch(source, options, emit)
    raise typer.Exit(result.exit_code)


@app.command(cls=_Command)
@exit_boundary
def rules(
    thresholds: Annotated[
        Path | None,
        typer.Option("--thresholds", metavar="FILE", help="Show thresholds with this override file applied."),
    ] = None,
    output_format: Annotated[TableFormat, typer.Option("--format", help="Output format.")] = TableFormat.text,
) -> None:
    """Every rule (id, what it measures, thresholds), the fitted combiner's weights and what the gain model weighs."""
    from fitdoc.diagnosis.gains import default_gain_model
    from fitdoc.diagnosis.rules.combiner import default_combiner
    from fitdoc.diagnosis.rules.registry import all_rules, decision_thresholds
    from fitdoc.report.rules import render_combiner, render_gain_model
    from fitdoc.report.text import render_rules, rules_to_json, rules_to_markdown

    overrides = _load_thresholds(thresholds)
    rule_list = all_rules(overrides) if overrides else all_rules()
    decision = decision_thresholds(overrides)
    combiner = default_combiner()
    gain_model = default_gain_model()
    if output_format is TableFormat.text:
        console = _stdout()
        render_rules(rule_list, console, decision)
        render_combiner(combiner, console)
        if gain_model is not None:
            render_gain_model(gain_model, console)
    elif output_format is TableFormat.json:
        _write_stdout(rules_to_json(rule_list, combiner, decision, gain_model))
    else:
        _write_stdout(rules_to_markdown(rule_list, combiner, decision, gain_model))


@app.command(cls=_Command)
@exit_boundary
def schema() -> None:
    """Print the config's JSON Schema."""
    import json

    from fitdoc.config import json_schema

    sys.stdout.write(json.dumps(json_schema(), indent=2) + "\n")


# ------------------------------------------------------------------ entry point


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry: usage errors become one line and exit 2 too."""
    try:
        from typer import _click as click  # typer >= 0.17 vendors click
    except ImportError:  # pragma: no cover
        import click  # type: ignore[no-redef]

    command = typer.main.get_command(app)
    try:
        code = command.main(args=argv, prog_name="fitdoc", standalone_mode=False)
    except click.exceptions.UsageError as exc:
        hint = f" (see 'fitdoc {exc.ctx.info_name} --help')" if exc.ctx is not None else ""
        if exc.ctx is not None and exc.ctx.info_name == "fitdoc":
            hint = " (see 'fitdoc --help')"
        _error_line(f"{exc.format_message()}{hint}")
        code = int(ExitCode.BAD_INPUT)
    except click.exceptions.ClickException as exc:
        _error_line(exc.format_message())
        code = exc.exit_code
    except (typer.Abort, KeyboardInterrupt):
        _error_line("interrupted")
        code = int(ExitCode.INTERRUPTED)
    sys.exit(code if isinstance(code, int) else 0)

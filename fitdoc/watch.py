"""Follow a history while another process writes it; re-diagnose at each new evaluation.

`fitdoc watch PATH` (DESIGN.md "Following a run live") reads any history
`diagnose` reads: a CSVLogger file, a Lightning `metrics.csv`, a fitdoc run
directory, a TensorBoard, MLflow or W&B run. The loop (`watch`) is the only
part with side effects, and they come in as arguments (the clock, the sleep,
where events go), so tests drive it without waiting; what to say about a new
diagnosis (`on_diagnosis`), when to stop (`stop_reason`) and how long to wait
(`next_delay`) are pure functions of values.

- A file is read only up to its last line break: a row being written is
  read once it is whole, never as data half-way.
- Nothing is re-read until the files change (their size, inode and mtime);
  the wait between polls grows by half while nothing changes (up to
  `MAX_BACKOFF` times `--interval`) and drops back at the next change, so a
  quiet run costs a `stat` every few seconds.
- A file that shrinks or is replaced is read again from the start, with a
  note; a read that fails once the run has been read (a file rewritten at
  that moment) is retried at the next poll.
- The run ends when its run.json (fitdoc's, beside its history) leaves
  `running`, a W&B run's log holds its exit record, or nothing has changed
  for `--idle` seconds.
- A W&B run's log grows in 32 KiB blocks while the run goes on (wandb-core
  writes whole blocks), so a live W&B run is seen in bursts; its end
  writes the rest.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from fitdoc.errors import ExitCode, FitdocError, HistoryError, MissingDependencyError
from fitdoc.history.curves import Curves
from fitdoc.history.load import RunSource, discover
from fitdoc.history.rundir import RUN_FILE, ReadOptions, Run, load_run
from fitdoc.verdict import SCHEMA_VERSION, Diagnosis

if TYPE_CHECKING:
    from fitdoc.config import AnyConfig

DEFAULT_INTERVAL_S = 1.0
DEFAULT_IDLE_S = 60.0
DEFAULT_MIN_CONFIDENCE = 0.8
MAX_BACKOFF = 8.0  # the longest wait is this many intervals
BACKOFF_GROWTH = 1.5
# Errors that say "nothing written yet" rather than "not a history": watched, they are waited out.
_NOT_YET = ("empty file", "no data rows", "no logged history yet", "no metric", "no scalar", "no such file")

Signature = tuple[tuple[str, int, int, int], ...]


@dataclass(frozen=True)
class WatchOptions:
    """What `fitdoc watch` was asked for."""

    fail_on: frozenset[str] = frozenset()
    min_confidence: float = DEFAULT_MIN_CONFIDENCE
    interval: float = DEFAULT_INTERVAL_S
    idle: float = DEFAULT_IDLE_S
    read: ReadOptions = field(default_factory=lambda: ReadOptions(complete_lines=True))


@dataclass(frozen=True)
class Event:
    """One thing worth telling: `verdict` (it or its cause changed), `note`, or `end`.

    `evaluation` counts the history's points from 1; `epoch` is the last
    point's epoch as the log numbers it (0-based, as Keras writes it), when
    points are epochs. `end` carries the reason (`fail_on`, `finished`,
    `idle`) and the exit code.
    """

    kind: str
    message: str = ""
    diagnosis: Diagnosis | None = None
    evaluation: int | None = None
    epoch: int | None = None
    reason: str | None = None
    exit_code: int = 0

    def to_dict(self) -> dict[str, object]:
        """One line of `fitdoc watch --format json` (docs/json-schema.md, `kind: "watch"`)."""
        out: dict[str, object] = {"schema_version": SCHEMA_VERSION, "kind": "watch", "event": self.kind}
        if self.evaluation is not None:
            out["evaluation"] = self.evaluation
            out["epoch"] = self.epoch
        if self.kind == "verdict" and self.diagnosis is not None:
            out["verdict"] = self.diagnosis.verdict.value
            out["cause"] = None if self.diagnosis.cause is None else self.diagnosis.cause.value
            out["confidence"] = self.diagnosis.confidence
        if self.message:
            out["message"] = self.message
        if self.kind == "end":
            out["reason"] = self.reason
            out["exit_code"] = self.exit_code
            out["diagnosis"] = None if self.diagnosis is None else self.diagnosis.to_dict()
        return out

    def to_json(self) -> str:
        """One line of JSON (no NaN: `jsonable` writes it as null, as `diagnose --format json` does)."""
        from fitdoc.formatting import jsonable

        return json.dumps(jsonable(self.to_dict()), ensure_ascii=False, allow_nan=False)


@dataclass(frozen=True)
class WatchState:
    """What the watcher knows between polls."""

    signature: Signature | None = None
    evaluations: int = 0
    diagnosis: Diagnosis | None = None
    curves: Curves | None = None
    read_once: bool = False


@dataclass(frozen=True)
class WatchResult:
    exit_code: int
    reason: str
    diagnosis: Diagnosis | None
    events: tuple[Event, ...] = field(default_factory=tuple)


# ---------------------------------------------------------------- pure decisions


def point_of(curves: Curves) -> tuple[int, int | None]:
    """(evaluation counted from 1, the last point's epoch as logged or None)."""
    n = len(curves)
    epoch = int(curves.epochs[-1]) if n and curves.point == "epoch" else None
    return n, epoch


def where(evaluation: int, epoch: int | None) -> str:
    return f"evaluation {evaluation}" + ("" if epoch is None else f" (epoch {epoch} in the log)")


def verdict_text(diagnosis: Diagnosis) -> str:
    cause = "" if diagnosis.cause is None else f" ({diagnosis.cause})"
    return f"{diagnosis.verdict}{cause}, confidence {diagnosis.confidence:.2f}"


def on_diagnosis(previous: Diagnosis | None, diagnosis: Diagnosis, curves: Curves) -> list[Event]:
    """A `verdict` event when the verdict or its cause changed since `previous`."""
    if previous is not None and (previous.verdict, previous.cause) == (diagnosis.verdict, diagnosis.cause):
        return []
    evaluation, epoch = point_of(curves)
    return [
        Event(
            "verdict",
            f"{where(evaluation, epoch)}: {verdict_text(diagnosis)}",
            diagnosis=diagnosis,
            evaluation=evaluation,
            epoch=epoch,
        )
    ]


def fails(diagnosis: Diagnosis, options: WatchOptions) -> bool:
    return diagnosis.verdict.value in options.fail_on and diagnosis.confidence >= options.min_confidence


def stop_reason(state: WatchState, status: str | None, quiet_s: float, options: WatchOptions) -> str | None:
    """Why to stop now (`fail_on`, `finished`, `idle`), or None to keep watching."""
    if state.diagnosis is not None and fails(state.diagnosis, options):
        return "fail_on"
    if status is not None and status != "running":
        return "finished"
    if quiet_s >= options.idle:
        return "idle"
    return None


def next_delay(delay: float, changed: bool, options: WatchOptions) -> float:
    """The wait before the next poll: back to `interval` after a change, else half as long again."""
    if changed:
        return options.interval
    return min(delay * BACKOFF_GROWTH, options.interval * MAX_BACKOFF)


def shrank(before: Signature | None, after: Signature | None) -> str | None:
    """How the watched files were cut back (a note), or None when they only grew."""
    if not before or not after:
        return None
    old = {path: (inode, size) for path, inode, size, _ in before}
    for path, inode, size, _ in after:
        if path not in old:
            continue
        was_inode, was_size = old[path]
        if inode != was_inode:
            return f"{path} was replaced; reading it again from the start"
        if size < was_size:
            return f"{path} was truncated ({was_size} -> {size} bytes); reading it again from the start"
    return None


def waiting_error(exc: FitdocError) -> bool:
    """An error that says the history has not been written yet, not that it is unreadable."""
    return not isinstance(exc, MissingDependencyError) and any(words in exc.message for words in _NOT_YET)


# ---------------------------------------------------------------- the edges: files, clock


def one_source(path: Path) -> RunSource:
    """The one history `path` names; several is a usage error (watch follows one run)."""
    if not str(path).startswith("mlflow:") and not path.exists():
        raise HistoryError("no such file or directory", path=path)
    sources = discover([path])
    if len(sources) != 1:
        names = ", ".join(str(s.history_path) for s in sources[:3])
        more = f" and {len(sources) - 3} more" if len(sources) > 3 else ""
        raise HistoryError(f"holds {len(sources)} runs ({names}{more}); watch one of them", path=path)
    return sources[0]


def signature(path: Path) -> Signature | None:
    """(name, inode, size, mtime) of the files that make up the history; None when it is
    not on this disk (`mlflow:RUN_ID`: every poll reads the store)."""
    if str(path).startswith("mlflow:"):
        return None
    try:
        if path.is_file():
            files = [path]
            run_json = path.parent / RUN_FILE
            if path.name == "history.csv" and run_json.is_file():
                files.append(run_json)
        elif path.is_dir():
            from fitdoc.history.readers import wandbrun

            # A W&B run's history is its `.wandb` log alone; its debug logs grow while nothing is logged.
            log = wandbrun.log_file(path)
            files = (
                [log]
                if log is not None
                else sorted(f for f in path.rglob("*") if f.is_file() and not f.name.startswith("."))
            )
        else:
            return ()
        out = []
        for f in files:
            st = f.stat()
            out.append((str(f), st.st_ino, st.st_size, st.st_mtime_ns))
        return tuple(out)
    except OSError:
        return ()  # vanished between listing and stat: the next poll sees what is there


def run_status(source: RunSource) -> str | None:
    """The run's own word on whether it is still going: fitdoc's run.json `status`, or a
    W&B log's exit record; None when the run keeps no such record."""
    history = Path(source.history_path)
    run_json = history.parent / RUN_FILE if history.name == "history.csv" else None
    if run_json is not None and run_json.is_file():
        try:
            status = json.loads(run_json.read_text(encoding="utf-8")).get("status")
        except (OSError, ValueError, AttributeError):
            return None  # being rewritten (atomically, but a reader may race the rename): ask again later
        return str(status) if status is not None else None
    from fitdoc.history.readers import wandbrun

    if wandbrun.is_run_dir(history):
        try:
            return "running" if wandbrun.run_state(history) == "running" else "finished"
        except FitdocError:
            return None
    return None


def diagnose_run(run: Run) -> Diagnosis:
    from fitdoc.diagnosis.decide import diagnose_curves

    return diagnose_curves(run.curves, run.config)


def watch(
    source: RunSource,
    options: WatchOptions,
    emit: Callable[[Event], None],
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    config: AnyConfig | None = None,
) -> WatchResult:
    """Follow `source` until it fails a `--fail-on` verdict, finishes, or goes quiet.

    Every event is passed to `emit` as it happens (the last one is `end`).
    Raises FitdocError for a history that cannot be read (exit 2), and
    KeyboardInterrupt as it comes (exit 130, said by the caller).
    """
    path = Path(source.history_path)
    state = WatchState()
    events: list[Event] = []
    last_error: FitdocError | None = None
    last_change = clock()
    delay = options.interval

    def say(event: Event) -> None:
        events.append(event)
        emit(event)

    while True:
        sig = signature(path)
        changed = sig is None or sig != state.signature
        if changed:
            note = shrank(state.signature, sig)
            if note is not None:
                say(Event("note", note))
                state = WatchState(read_once=state.read_once)
            state, last_error, grew = _poll(source, options, state, config, say, last_error)
            state = replace(state, signature=sig)
            # Idle means no new data: on a store polled without signatures only new points count.
            if sig is not None or grew:
                last_change = clock()
        status = run_status(source) if changed and state.read_once else None
        reason = stop_reason(state, status, clock() - last_change, options)
        if reason is not None and state.curves is None:
            if last_error is not None:
                raise last_error  # the run ended, or went quiet, before anything readable arrived
            raise HistoryError("nothing to diagnose: no history arrived", path=path)
        if reason is not None:
            return _end(state, reason, options, say, events, status)
        delay = next_delay(delay, changed, options)
        quiet = clock() - last_change
        sleep(max(0.01, min(delay, options.idle - quiet)))


def _poll(
    source: RunSource,
    options: WatchOptions,
    state: WatchState,
    config: AnyConfig | None,
    say: Callable[[Event], None],
    last_error: FitdocError | None,
) -> tuple[WatchState, FitdocError | None, bool]:
    """Read and, when there are new points, diagnose; (state, the read error if any, grew)."""
    try:
        run = load_run(source, options.read, config)
    except MissingDependencyError:
        raise
    except FitdocError as exc:
        if not state.read_once and not waiting_error(exc):
            raise
        if state.read_once and (last_error is None or last_error.message != exc.message):
            say(Event("note", f"cannot read it now ({exc.one_line()}); trying again"))
        return state, exc, False
    n = len(run.curves)
    if n == state.evaluations and state.diagnosis is not None:
        return replace(state, read_once=True), None, False
    if n < state.evaluations:
        say(
            Event("note", f"the history now holds {n} points (had {state.evaluations}); diagnosing it afresh")
        )
        state = replace(state, diagnosis=None)
    diagnosis = diagnose_run(run)
    for event in on_diagnosis(state.diagnosis, diagnosis, run.curves):
        say(event)
    grew = n != state.evaluations
    return (
        replace(state, evaluations=n, diagnosis=diagnosis, curves=run.curves, read_once=True),
        None,
        grew,
    )


def _end(
    state: WatchState,
    reason: str,
    options: WatchOptions,
    say: Callable[[Event], None],
    events: Sequence[Event],
    status: str | None,
) -> WatchResult:
    diagnosis, curves = state.diagnosis, state.curves
    assert diagnosis is not None and curves is not None
    evaluation, epoch = point_of(curves)
    if reason == "fail_on":
        code = int(ExitCode.VERDICT_FAILED)
        message = (
            f"{diagnosis.verdict} reached at {where(evaluation, epoch)} with confidence "
            f"{diagnosis.confidence:.2f} >= {options.min_confidence:.2f} (--fail-on)"
        )
    elif reason == "finished":
        code = int(ExitCode.OK)
        message = f"the run ended ({status}) after {where(evaluation, epoch)}"
    else:
        code = int(ExitCode.OK)
        message = f"nothing new for {options.idle:g} s after {where(evaluation, epoch)}"
    end = Event(
        "end", message, diagnosis=diagnosis, evaluation=evaluation, epoch=epoch, reason=reason, exit_code=code
    )
    say(end)
    return WatchResult(code, reason, diagnosis, (*events,))

"""`fitdoc tune --backend ray`: each trial a Ray task, its run directory sent back.

The driver (the `fitdoc tune` process) plans with `fitdoc.tune.plan` exactly as
the local backend does; only the training moves. A trial is the Ray task
`train_trial`: it trains the trial's config into a temporary directory on
whatever node runs it and returns the run directory's files as bytes, which
the driver writes under `<tune dir>/trials/` and diagnoses there. Workers
need fitdoc with its `train` extra and the data (synthetic, or the config's
`data.path` readable at the same path), but no file system shared with the
driver; `tune.json`, `tune.csv`, `best.yaml` and plots are the driver's.

A round submits all its trials at once (a round holds up to `width` of them:
`--parallel`, or the cluster's CPUs over `--cpus-per-trial`) and records each
as it finishes, keeping the trials in index order, so what is recorded never
depends on which worker was faster. A task is never retried: a worker that
dies mid-trial (Ray's WorkerCrashedError, a lost node) or a training that
raises makes that trial `failed`, with the reason, and the sweep goes on.

`ray` is imported inside functions only (the `ray` extra: `pip install 'fitdoc[ray]'`).
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

from rich.console import Console

from fitdoc.config import Config
from fitdoc.errors import FitdocError, MissingDependencyError
from fitdoc.history.rundir import CONFIG_FILE, safe_name, write_config
from fitdoc.tune.plan import Move, Trial
from fitdoc.tune.state import TRIALS_DIR
from fitdoc.tune.trials import failed_trial, record_run, trial_config, write_trial_config

RAY_MISSING = "--backend ray needs Ray, which is not installed: pip install 'fitdoc[ray]'"

# Test hook, read on the worker: comma-separated trial indices whose worker process
# exits at once (`os._exit(1)`), as a worker killed mid-trial would.
KILL_TRIAL_ENV = "FITDOC_TEST_RAY_KILL_TRIAL"


def import_ray() -> Any:
    """The `ray` module, or MissingDependencyError (one line) when it is not installed."""
    try:
        import ray
    except ImportError:
        raise MissingDependencyError(RAY_MISSING) from None
    return ray


# ---------------------------------------------------------------- on the worker


def train_trial(config_data: Mapping[str, Any]) -> dict[str, Any]:
    """The Ray task: train one trial's config, return its run directory as bytes.

    Returns {"name", "status", "message", "files": {relative path: bytes}}.
    FitdocError (bad data, no TensorFlow on this node) propagates to the driver.
    """
    from fitdoc.training.run import run_training

    config = Config.model_validate(dict(config_data))
    _kill_hook(config.name)
    with tempfile.TemporaryDirectory(prefix="fitdoc-trial-") as scratch:
        local = config.with_changes({"output.dir": scratch})
        result = run_training(local, console=Console(stderr=True, quiet=True), progress=False)
        return {
            "name": result.run_dir.name,
            "status": result.status,
            "message": result.message,
            "files": pack_run_dir(result.run_dir),
        }


def _kill_hook(trial_name: str) -> None:
    wanted = {part.strip() for part in os.environ.get(KILL_TRIAL_ENV, "").split(",") if part.strip()}
    if any(trial_name == f"trial-{int(index):02d}" for index in wanted if index.isdigit()):
        os._exit(1)


def pack_run_dir(run_dir: Path) -> dict[str, bytes]:
    """Every file under `run_dir`, by its path relative to it (POSIX separators)."""
    return {
        path.relative_to(run_dir).as_posix(): path.read_bytes()
        for path in sorted(run_dir.rglob("*"))
        if path.is_file()
    }


# ---------------------------------------------------------------- on the driver


def unpack_run_dir(files: Mapping[str, bytes], parent: Path, name: str) -> Path:
    """Write a run directory sent back by a worker as `parent/name` (or `name-2`, ... when
    taken). It appears whole or not at all: written beside, then renamed into place."""
    parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=parent, prefix=".incoming-"))
    try:
        for relative, data in files.items():
            parts = PurePosixPath(relative).parts
            if not parts or PurePosixPath(relative).is_absolute() or ".." in parts:
                raise FitdocError(f"a worker sent back an unsafe path: {relative!r}", path=parent)
            target = staging.joinpath(*parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        base = safe_name(name)
        for attempt in range(1, 10_000):
            candidate = parent / (base if attempt == 1 else f"{base}-{attempt}")
            if not candidate.exists():
                staging.rename(candidate)
                return candidate
        raise FitdocError("too many run directories with the same name", path=parent)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


class RayRunner:
    """Rounds of trials as Ray tasks (`fitdoc.tune.loop.TrialRunner`).

    Entering connects: to `address` (`auto`, `ray://host:port`) when given,
    else to a new local Ray instance with `parallel * cpus_per_trial` CPUs
    (all of this machine's without `parallel`), or to the Ray this process
    already initialised. Leaving shuts down only a Ray it started.
    """

    def __init__(self, *, parallel: int | None, address: str | None, cpus_per_trial: float | None) -> None:
        self._ray = import_ray()
        if cpus_per_trial is not None and not cpus_per_trial > 0:
            raise FitdocError(f"must be above 0 (got {cpus_per_trial:g})", field="--cpus-per-trial")
        self._parallel = parallel
        self._address = address
        self._cpus = 1.0 if cpus_per_trial is None else float(cpus_per_trial)
        self._started = False
        self._task: Any = None
        self.width = parallel or 1

    def __enter__(self) -> RayRunner:
        ray = self._ray
        if not ray.is_initialized():
            self._connect()
        cluster_cpus = float(ray.cluster_resources().get("CPU", 0.0))
        if cluster_cpus < self._cpus:
            self.__exit__()
            raise FitdocError(
                f"each trial asks for {self._cpus:g} CPUs but the Ray cluster has {cluster_cpus:g}",
                field="--cpus-per-trial",
            )
        self.width = self._parallel or max(1, int(cluster_cpus // self._cpus))
        self._task = ray.remote(num_cpus=self._cpus, max_retries=0)(train_trial)
        return self

    def _connect(self) -> None:
        options: dict[str, Any] = {
            "include_dashboard": False,
            "logging_level": logging.WARNING,
            "log_to_driver": False,
        }
        if self._address is None:
            num_cpus = None if self._parallel is None else max(1, round(self._parallel * self._cpus))
            options.update(address="local", num_cpus=num_cpus)
        else:
            _check_reachable(self._address)
            options.update(address=self._address)
        try:
            self._ray.init(**options)
        except Exception as exc:  # Ray raises ConnectionError, RuntimeError, ValueError...
            where = self._address or "a local Ray instance"
            reason = _first_line(str(exc)) or type(exc).__name__
            raise FitdocError(f"cannot start or join {where}: {reason}", field="--address") from None
        self._started = True

    def __exit__(self, *exc: object) -> None:
        if self._started:
            self._started = False
            self._ray.shutdown()

    def run_round(
        self,
        base: Config,
        moves: Sequence[Move],
        start: int,
        tune_dir: Path,
        record: Callable[[Trial], None],
    ) -> bool:
        ray = self._ray
        pending: dict[Any, tuple[int, Move, Config]] = {}
        for offset, move in enumerate(moves):
            index = start + offset
            config = trial_config(base, move.settings, index, tune_dir)
            write_trial_config(tune_dir, index, config)
            pending[self._task.remote(config.model_dump(mode="json"))] = (index, move, config)
        try:
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                for ref in ready:
                    index, move, config = pending.pop(ref)
                    trial = self._collect(ref, index, move, config, tune_dir)
                    if trial is None:  # a signal reached the worker: the tune stops, as locally
                        raise KeyboardInterrupt
                    record(trial)
        except KeyboardInterrupt:
            for ref in pending:
                ray.cancel(ref, force=True)
            return True
        return False

    def _collect(self, ref: Any, index: int, move: Move, config: Config, tune_dir: Path) -> Trial | None:
        """The finished task's trial: its run directory written here and diagnosed, or `failed`;
        None when the training was interrupted (it is retrained on --resume)."""
        exceptions = self._ray.exceptions
        try:
            result = self._ray.get(ref)
        except exceptions.RayTaskError as exc:
            return failed_trial(index, move, f"the trial raised on its Ray worker: {_cause(exc)}")
        except exceptions.RayError as exc:
            reason = _first_line(str(exc))
            return failed_trial(
                index, move, f"its Ray worker died mid-trial ({type(exc).__name__}): {reason}"
            )
        if result["status"] == "interrupted":
            return None
        run_dir = unpack_run_dir(result["files"], tune_dir / TRIALS_DIR, result["name"])
        write_config(config, run_dir / CONFIG_FILE)  # the driver's paths, as a local trial has them
        return record_run(index, move, config, run_dir, result["status"], result["message"])


def _check_reachable(address: str, timeout: float = 10.0) -> None:
    """For `host:port` and `ray://host:port`: FitdocError at once when nothing answers there
    (Ray itself would retry for minutes). `auto` is left to Ray, which fails fast."""
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not port.isdigit():
        return
    try:
        socket.create_connection((host.strip("[]") or "localhost", int(port)), timeout=timeout).close()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise FitdocError(f"no Ray cluster answers at {address}: {reason}", field="--address") from None


def _cause(exc: Any) -> str:
    cause = getattr(exc, "cause", None)
    if isinstance(cause, FitdocError):
        return cause.one_line()
    if isinstance(cause, BaseException):
        return f"{type(cause).__name__}: {_first_line(str(cause))}"
    return _first_line(str(exc))


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0] if lines else ""

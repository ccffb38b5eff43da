"""What `fitdoc tune` shows: a live table on a terminal, one plain line per event elsewhere."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from fitdoc.formatting import metric_text, value_text
from fitdoc.report.figures import BEST_TEXT
from fitdoc.tune.plan import Move, Trial, best_trial, settings_key, trial_label
from fitdoc.tune.state import TUNE_JSON

# ---------------------------------------------------------------- display


class TuneDisplay:
    """A live table of trials on a terminal; one plain line per event elsewhere (CI logs)."""

    def __init__(self, console: Console, *, max_runs: int) -> None:
        self._console = console
        self._max_runs = max_runs
        self._rows: dict[int, tuple[Move | Trial, bool]] = {}
        self._live: Live | None = None

    def __enter__(self) -> TuneDisplay:
        if self._console.is_terminal:
            self._live = Live(self._render(), console=self._console, refresh_per_second=4, transient=False)
            self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.update(self._render())
            self._live.__exit__(None, None, None)
            self._live = None

    def started(self, index: int, move: Move) -> None:
        self._rows[index] = (move, False)
        if self._live is not None:
            self._live.update(self._render())
        else:
            self._console.print(
                f"trial {index}: {move.change}  (why: {move.reason})", highlight=False, soft_wrap=True
            )

    def finished(self, trial: Trial, *, resumed: bool = False) -> None:
        self._rows[trial.index] = (trial, resumed)
        if self._live is not None:
            self._live.update(self._render())
        elif resumed:
            self._console.print(f"trial {trial.index}: {_outcome(trial)} (from {TUNE_JSON})", highlight=False)
        else:
            self._console.print(f"trial {trial.index}: {_outcome(trial)}", highlight=False, soft_wrap=True)

    def summary(
        self, best: Trial | None, best_path: Path | None, stop_reason: str, base: Mapping[str, Any]
    ) -> None:
        self._console.print(f"stopped: {stop_reason}", highlight=False, soft_wrap=True)
        if best is not None:
            self._console.print(
                f"best: trial {best.index} ({changes_from(base, best.settings)}), "
                f"best val MAE {metric_text(best.val_mae)} ({BEST_TEXT}), "
                f"{best.status if best.verdict is None else best.verdict.value}; config written to {best_path}",
                highlight=False,
                soft_wrap=True,
            )

    def _render(self) -> Table:
        table = Table(title=f"fitdoc tune (budget {self._max_runs} trainings)", expand=False)
        for name, kwargs in (
            ("#", {"justify": "right"}),
            ("change", {}),
            ("verdict", {}),
            ("best val MAE", {"justify": "right"}),
            ("why", {"overflow": "fold", "max_width": 60}),
        ):
            table.add_column(name, **kwargs)
        finished = [v for v, _ in self._rows.values() if isinstance(v, Trial)]
        best = best_trial(finished)
        for index in sorted(self._rows):
            item, _ = self._rows[index]
            if isinstance(item, Trial):
                verdict = trial_label(item)
                mae = metric_text(item.val_mae)
                style = "bold green" if best is not None and best.index == index else ""
                table.add_row(str(index), item.change, verdict, mae, item.reason, style=style)
            else:
                table.add_row(str(index), item.change, Text("training...", style="yellow"), "", item.reason)
        return table


def changes_from(base: Mapping[str, Any], settings: Mapping[str, Any]) -> str:
    """`model.l2: 0 -> 0.0001, training.epochs: 1000 -> 2000`, or `the base config`."""
    edits = [
        f"{key}: {value_text(base.get(key), none='off')} -> {value_text(value, none='off')}"
        for key, value in settings.items()
        if settings_key({key: base.get(key)}) != settings_key({key: value})
    ]
    return ", ".join(edits) or "the base config"


def _outcome(trial: Trial) -> str:
    mae = "" if trial.val_mae is None else f", best val MAE {metric_text(trial.val_mae)}"
    where = f"  {trial.run_dir}" if trial.run_dir else ""
    why = trial.extra.get("message") if trial.status == "failed" else None
    return f"{trial_label(trial)}{mae}{where}" + (f": {why}" if why else "")

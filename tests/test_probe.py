"""`fitdoc train --probe`: which neighbours, the stacked engine, the measured decision, end to end."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from fitdoc.cli import app
from fitdoc.config import Config
from fitdoc.diagnosis.measured import Neighbour, decide, diagnose_run
from fitdoc.diagnosis.rules.registry import all_rules
from fitdoc.history.curves import Curves
from fitdoc.history.rundir import Probe
from fitdoc.training.probe import plan_probes
from fitdoc.verdict import Cause, Change, Verdict


def config(**model: object) -> Config:
    raw = {
        "name": "p",
        "seed": 3,
        "data": {"synthetic": "founding", "n_samples": 300},
        "model": {"hidden_layers": 3, "units": 32, **model},
        "training": {"epochs": 60, "batch_size": 50},
    }
    return Config.model_validate(raw)


def thresholds() -> dict[str, dict[str, float]]:
    rules = {r.code: r for r in all_rules()}
    return {code: dict(rules[code].thresholds) for code in ("FD501", "FD502", "FD503")}


# ---------------------------------------------------------------- which neighbours


def test_no_regularization_probes_l2_and_dropout_up() -> None:
    plans = plan_probes(config())
    assert [p.slug for p in plans] == ["l2-0.0001", "dropout-0.2"]
    assert [(p.change.key, p.change.from_, p.change.to) for p in plans] == [
        ("model.l2", 0.0, 0.0001),
        ("model.dropout", 0.0, 0.2),
    ]
    assert plans[0].config.model.l2 == 0.0001 and plans[0].config.model.dropout == 0.0
    assert plans[0].config.name == "p-l2-0.0001"


def test_founding_l2_1e3_probes_both_ways() -> None:
    slugs = [p.slug for p in plan_probes(config(l2=0.001))]
    assert slugs == ["l2-0.01", "l2-0.0001", "dropout-0.2"]


def test_top_of_the_ladders_has_fewer_neighbours() -> None:
    assert [p.slug for p in plan_probes(config(l2=0.01, dropout=0.5))] == ["l2-0.001", "dropout-0.2"]


def test_one_hidden_layer_has_no_dropout_to_probe() -> None:
    assert [p.slug for p in plan_probes(config(hidden_layers=1))] == ["l2-0.0001"]


def test_a_narrow_net_probes_twice_the_units_too() -> None:
    plans = plan_probes(config(hidden_layers=1, units=4))
    # At least WIDE_UNITS: one doubling of a very narrow net says little.
    assert [p.slug for p in plans] == ["l2-0.0001", "units-32"]
    wider = plans[-1]
    assert (wider.change.key, wider.change.from_, wider.change.to) == ("model.units", 4, 32)
    assert wider.config.model.units == 32 and wider.config.model.l2 == 0.0
    full = plan_probes(config(units=20, l2=0.001, dropout=0.2))
    assert len(full) == 5 and full[-1].slug == "units-40"
    assert not any(p.change.key == "model.units" for p in plan_probes(config(units=32)))


def test_an_l1_run_probes_the_l1_ladder() -> None:
    assert [p.slug for p in plan_probes(config(l1=0.0001))][:2] == ["l1-0.001", "l1-1e-05"]


# ---------------------------------------------------------------- the measured decision


def curve(start: float, end: float, n: int = 100, seed: int = 0, noise: float = 0.01) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = start * (end / start) ** np.linspace(0, 1, n)
    return base * (1 + noise * rng.standard_normal(n))


def flat(level: float, n: int = 100, seed: int = 0) -> np.ndarray:
    return level * (1 + 0.01 * np.random.default_rng(seed).standard_normal(n))


L2_UP = Change("model.l2", 0.0, 0.0001, "")
L2_DOWN = Change("model.l2", 0.001, 0.0001, "")


def test_a_more_regularized_neighbour_that_wins_is_overfit() -> None:
    run = flat(0.06)
    d = decide(run, [Neighbour(L2_UP, flat(0.02, seed=1))], thresholds(), epochs=100)
    assert (d.verdict, d.cause) == (Verdict.OVERFIT, Cause.GAP)
    assert d.winner is not None and d.winner.change == L2_UP
    assert d.winner.gain == pytest.approx(2 / 3, abs=0.02)


def test_a_less_regularized_neighbour_that_wins_is_over_regularized() -> None:
    d = decide(flat(0.03), [Neighbour(L2_DOWN, flat(0.015, seed=2))], thresholds())
    assert (d.verdict, d.cause) == (Verdict.UNDERFIT, Cause.OVER_REGULARIZED)


def test_no_winner_and_val_still_falling_is_not_converged() -> None:
    falling = curve(0.3, 0.1)
    d = decide(falling, [Neighbour(L2_UP, falling * 1.01)], thresholds(), epochs=100)
    assert (d.verdict, d.cause) == (Verdict.UNDERFIT, Cause.NOT_CONVERGED)
    assert d.winner is None and d.still_falling > 0.3


def test_a_steep_fall_beats_a_neighbour_that_gains_less() -> None:
    """Val fell 60 % over the last doubling: training longer is expected to gain more than 10 %."""
    falling = curve(0.5, 0.1)
    d = decide(falling, [Neighbour(L2_UP, falling * 0.9)], thresholds(), epochs=100)
    assert (d.verdict, d.cause) == (Verdict.UNDERFIT, Cause.NOT_CONVERGED)
    assert d.measurements[0].clear  # the neighbour did win on its own


def test_no_winner_and_settled_is_balanced() -> None:
    d = decide(flat(0.05), [Neighbour(L2_UP, flat(0.049, seed=3))], thresholds())
    assert d.verdict is Verdict.BALANCED
    (m, *_) = d.measurements
    assert not m.clear and m.gain == pytest.approx(0.02, abs=0.01)


def test_a_gain_inside_the_paired_noise_does_not_win() -> None:
    run = flat(0.05)
    # 10 % lower on average, but the paired ratio swings +-30 % epoch to epoch.
    nb = run * (0.9 + 0.3 * (-1.0) ** np.arange(100))
    d = decide(run, [Neighbour(L2_UP, nb)], thresholds())
    (m, *_) = d.measurements
    assert m.gain is not None and m.gain > 0.07 and m.noise is not None and m.noise > m.gain
    assert not m.clear


def test_a_val_minimum_long_before_the_end_is_early_stopping() -> None:
    run = np.concatenate([curve(0.2, 0.05, 30), curve(0.05, 0.09, 70, seed=4)])
    d = decide(run, [Neighbour(L2_UP, run * 0.99)], thresholds(), epochs=100)
    assert (d.verdict, d.cause) == (Verdict.OVERFIT, Cause.REBOUND)
    assert d.winner is not None and d.winner.change.key == "training.early_stopping"
    assert d.winner.at_epoch is not None and 20 <= d.winner.at_epoch <= 40


def test_a_diverged_neighbour_is_not_compared() -> None:
    short = flat(0.01)[:20]
    d = decide(flat(0.05), [Neighbour(L2_UP, short, status="diverged")], thresholds())
    (m, *_) = d.measurements
    assert m.status == "diverged" and m.gain is None and not m.clear
    assert d.verdict is Verdict.BALANCED


def mae_curves(val: np.ndarray, train: np.ndarray | None = None) -> Curves:
    n = val.size
    return Curves(
        epochs=np.arange(n, dtype=float),
        train=(train if train is not None else val * 0.3),
        val=val,
        metric="mae",
        source="run/history.csv",
    )


def test_the_measured_diagnosis_keeps_the_curves_verdict_and_words_the_gain() -> None:
    probe = Probe("l2-0.0001", L2_UP, "completed", mae_curves(np.full(100, 0.015)))
    d = diagnose_run(mae_curves(np.full(100, 0.067)), config(), [probe])
    assert d.basis == "measured" and d.verdict is Verdict.OVERFIT
    assert d.suggestion is not None
    primary = d.suggestion.primary
    assert (primary.key, primary.from_, primary.to) == ("model.l2", 0.0, 0.0001)
    assert primary.text == "model.l2: 0 -> 0.0001: val MAE 0.067 -> 0.015 (-78%), measured"
    out = d.to_dict()
    assert out["basis"] == "measured"
    (m,) = [m for m in out["measured"] if m["change"]["key"] == "model.l2"]
    assert m["change"] == {"key": "model.l2", "from": 0.0, "to": 0.0001}
    assert m["clear"] and m["gain"] == pytest.approx(0.776, abs=0.001) and m["noise"] == 0
    assert out["curves_verdict"]["verdict"] in {"overfit", "underfit", "balanced", "inconclusive"}
    assert any(f["rule_id"] == "FD501" for f in out["findings"])
    # The curves' diagnosis carries the gain ranker's predictions; the measured one drops them.
    from fitdoc.diagnosis.decide import PREDICTED_NOTE, diagnose_curves

    assert any(
        n.startswith(PREDICTED_NOTE) for n in diagnose_curves(mae_curves(np.full(100, 0.067)), config()).notes
    )
    assert not any(note.startswith(PREDICTED_NOTE) for note in d.notes)


def test_a_disagreement_with_the_curves_is_a_note() -> None:
    # The curves alone see a problem (val 10x train); the neighbour is no better: balanced, measured.
    run = mae_curves(flat(0.06), train=curve(0.08, 0.006, seed=4))
    probe = Probe("l2-0.0001", L2_UP, "completed", mae_curves(flat(0.0595, seed=8)))
    d = diagnose_run(run, config(), [probe])
    assert d.verdict is Verdict.BALANCED and d.basis == "measured"
    assert d.curves_verdict is not None and d.curves_verdict[0] is not Verdict.BALANCED
    said = d.curves_verdict[0].value
    assert any(f"the curves alone said {said}" in note for note in d.notes)


def test_no_regularization_neighbour_winning_leaves_a_too_narrow_verdict_standing() -> None:
    # A 2-unit net level with train on a plateau: FD207 says too small; L2 does not help, and
    # the probe does not vary the width, so the measurement cannot call it balanced.
    epochs = np.arange(200)
    train = 1.22 + 2.0 * np.exp(-epochs / 25.0)
    run = mae_curves(train * 1.03, train=train)
    probe = Probe("l2-0.0001", L2_UP, "completed", mae_curves(train * 1.031, train=train))
    d = diagnose_run(run, config(hidden_layers=1, units=2), [probe])
    assert (d.verdict, d.cause, d.basis) == (Verdict.UNDERFIT, Cause.CAPACITY, "curves")
    assert d.summary.startswith("underfit (capacity): 2 units per hidden layer")
    assert d.suggestion is not None and d.suggestion.primary.key == "model.units"
    assert any(m.change.key == "model.l2" for m in d.measured)  # what was measured is kept
    assert any("the probe does not vary the width" in note for note in d.notes)


UNITS_UP = Change("model.units", 4, 8, "")


def test_a_wider_neighbour_that_wins_is_capacity() -> None:
    run = flat(0.6)
    d = decide(
        run, [Neighbour(L2_UP, flat(0.61, seed=1)), Neighbour(UNITS_UP, flat(0.3, seed=2))], thresholds()
    )
    assert (d.verdict, d.cause) == (Verdict.UNDERFIT, Cause.CAPACITY)
    assert d.winner is not None and d.winner.change.key == "model.units" and d.winner.direction == -1


def test_a_measured_width_step_overrules_the_curves_too_narrow_verdict() -> None:
    # The same 2-unit plateau as above, but the probe trained 4 units too: what it measured decides.
    epochs = np.arange(200)
    train = 1.22 + 2.0 * np.exp(-epochs / 25.0)
    run = mae_curves(train * 1.03, train=train)
    l2 = Probe("l2-0.0001", L2_UP, "completed", mae_curves(train * 1.031, train=train))
    same = Probe(
        "units-4", Change("model.units", 2, 4, ""), "completed", mae_curves(train * 1.029, train=train)
    )
    d = diagnose_run(run, config(hidden_layers=1, units=2), [l2, same])
    assert (d.verdict, d.basis) == (Verdict.BALANCED, "measured")
    wide = Probe(
        "units-4", Change("model.units", 2, 4, ""), "completed", mae_curves(train * 0.6, train=train * 0.6)
    )
    d = diagnose_run(run, config(hidden_layers=1, units=2), [l2, wide])
    assert (d.verdict, d.cause, d.basis) == (Verdict.UNDERFIT, Cause.CAPACITY, "measured")
    assert d.suggestion is not None and d.suggestion.primary.key == "model.units"
    assert d.suggestion.primary.to == 4 and "measured" in d.suggestion.primary.text


def test_unprobed_histories_keep_the_curves_basis() -> None:
    d = diagnose_run(mae_curves(flat(0.06)), config(), [])
    assert d.basis == "curves" and "measured" not in d.to_dict()
    assert d.to_dict()["basis"] == "curves"


def test_measured_thresholds_are_listed_and_overridable() -> None:
    result = CliRunner().invoke(app, ["rules", "--format", "json"])
    assert result.exit_code == 0
    assert {"FD501", "FD502", "FD503"} <= set(result.output.replace('"', " ").split())
    probe = Probe("l2-0.0001", L2_UP, "completed", mae_curves(flat(0.05, seed=9)))
    # A 17 % gain wins by default and not with min_gain 0.5.
    assert diagnose_run(mae_curves(flat(0.06)), config(), [probe]).verdict is Verdict.OVERFIT
    strict = {"FD501": {"min_gain": 0.5}}
    assert diagnose_run(mae_curves(flat(0.06)), config(), [probe], strict).verdict is not Verdict.OVERFIT


# ---------------------------------------------------------------- the stacked engine


@pytest.mark.training
def test_net_zero_of_a_stack_trains_exactly_as_the_plain_run() -> None:
    """Probing must not change the run: net 0 of K = 3 follows K = 1 step for step."""
    keras = pytest.importorskip("keras")
    from fitdoc.training.engine import Arrays, NetSpec, StackedEngine

    rng = np.random.default_rng(0)
    x = rng.standard_normal((120, 4)).astype(np.float32)
    y = (x[:, :1] ** 2).astype(np.float32)
    arrays = Arrays(x[:90], y[:90], x[90:], y[90:])
    keras.utils.set_random_seed(1)
    net = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(8), keras.layers.Dense(8), keras.layers.Dense(1)]
    )
    initial = net.get_weights()

    def run(specs: list[NetSpec]) -> np.ndarray:
        engine = StackedEngine(
            initial, specs, arrays, optimizer=keras.optimizers.Adam(0.01), batch_size=32, seed=5
        )
        return engine.run(5)

    alone = run([NetSpec(dropout=0.2)])
    stacked = run([NetSpec(dropout=0.2), NetSpec(l2=1e-3, dropout=0.2), NetSpec(dropout=0.5)])
    np.testing.assert_allclose(stacked[0], alone[0], rtol=1e-5, atol=1e-7)
    assert not np.allclose(stacked[1], stacked[0])
    # Same initial weights: the first epoch's nets differ only by their settings.
    same = run([NetSpec(), NetSpec()])
    np.testing.assert_array_equal(same[0], same[1])


@pytest.mark.training
@pytest.mark.parametrize("activation", ["relu", "sigmoid"])
def test_a_narrower_net_padded_into_a_wider_stack_trains_as_it_would_alone(activation: str) -> None:
    """The width probe: a 4-unit net stacked beside an 8-unit one (padded, masked) follows a
    4-unit engine of its own step for step, dropout included; sigmoid's padded units would
    leak 0.5 forward without the mask."""
    keras = pytest.importorskip("keras")
    from fitdoc.training.engine import Arrays, NetSpec, StackedEngine

    rng = np.random.default_rng(0)
    x = rng.standard_normal((120, 4)).astype(np.float32)
    y = (np.sin(2 * x[:, :1]) + x[:, 1:2] ** 2).astype(np.float32)
    arrays = Arrays(x[:90], y[:90], x[90:], y[90:], x[90:], y[90:])

    def weights(units: int) -> list[np.ndarray]:
        keras.utils.set_random_seed(1)
        net = keras.Sequential(
            [keras.Input((4,)), keras.layers.Dense(units), keras.layers.Dense(units), keras.layers.Dense(1)]
        )
        return list(net.get_weights())

    def engine(specs: list[NetSpec], starts: dict[int, list[np.ndarray]] | None = None) -> StackedEngine:
        return StackedEngine(
            weights(4),
            specs,
            arrays,
            optimizer=keras.optimizers.Adam(0.01),
            batch_size=32,
            seed=5,
            activation=activation,
            starts=starts,
        )

    narrow = [NetSpec(l2=1e-3, dropout=0.2), NetSpec(dropout=0.2)]
    alone = engine(narrow)
    stacked = engine([*narrow, NetSpec(dropout=0.2)], starts={2: weights(8)})
    rows_alone, rows_stacked = alone.run(6), stacked.run(6)
    np.testing.assert_allclose(rows_stacked[:2], rows_alone, rtol=1e-5, atol=1e-7)
    assert not np.allclose(rows_stacked[2], rows_stacked[1])
    # Each net's weights come back at its own shape.
    assert [w.shape for w in stacked.weights(0)] == [w.shape for w in weights(4)]
    assert [w.shape for w in stacked.weights(2)] == [w.shape for w in weights(8)]
    for a, b in zip(stacked.weights(1), alone.weights(1), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_stacked_nets_of_another_depth_are_refused() -> None:
    from fitdoc.training.engine import _stack_weights

    two = [np.zeros((3, 4)), np.zeros(4), np.zeros((4, 1)), np.zeros(1)]
    three = [np.zeros((3, 4)), np.zeros(4), np.zeros((4, 4)), np.zeros(4), np.zeros((4, 1)), np.zeros(1)]
    with pytest.raises(ValueError, match="same depth"):
        _stack_weights(two, {1: three}, 2)
    with pytest.raises(ValueError, match="outside"):
        _stack_weights(two, {2: two}, 2)


@pytest.mark.training
def test_a_neighbour_that_diverges_stops_alone() -> None:
    keras = pytest.importorskip("keras")
    from fitdoc.training.engine import FIELDS, Arrays, NetSpec, StackedEngine

    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 3)).astype(np.float32)
    y = x[:, :1].astype(np.float32)
    keras.utils.set_random_seed(2)
    net = keras.Sequential(
        [keras.Input((3,)), keras.layers.Dense(8), keras.layers.Dense(8), keras.layers.Dense(1)]
    )
    engine = StackedEngine(
        net.get_weights(),
        [NetSpec(), NetSpec(l2=1e38)],  # an L2 factor no float32 survives
        Arrays(x[:48], y[:48], x[48:], y[48:]),
        optimizer=keras.optimizers.Adam(0.01),
        batch_size=16,
        seed=1,
    )
    rows = engine.run(4)
    loss = FIELDS.index("loss")
    assert np.isfinite(rows[0, :, :5]).all() and rows[0, -1, loss] < rows[0, 0, loss]
    assert not np.isfinite(rows[1, :, loss]).all()


# ---------------------------------------------------------------- end to end


def write_tiny(folder: Path, **training: object) -> Path:
    """A small net on 300 founding rows: no regularization, it overfits within 150 epochs."""
    import yaml

    raw = {
        "name": "probe",
        "seed": 4,
        "data": {"synthetic": "founding", "n_samples": 300, "noise": 0.05},
        "model": {"hidden_layers": 3, "units": 64},
        "training": {"epochs": 150, "batch_size": 60, **training},
        "output": {"dir": str(folder / "runs")},
    }
    path = folder / "probe.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.fixture(scope="module")
def probed_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    pytest.importorskip("tensorflow")
    folder = tmp_path_factory.mktemp("probe")
    result = CliRunner().invoke(
        app,
        ["train", str(write_tiny(folder)), "--probe", "--quiet", "--format", "json", "--fail-on", "overfit"],
    )
    run_dir = Path(result.stdout.strip().splitlines()[-1])
    return run_dir, result


@pytest.mark.training
def test_train_probe_writes_each_neighbour_and_a_measured_verdict(probed_run: tuple[Path, object]) -> None:
    run_dir, result = probed_run
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "completed"
    assert [p["slug"] for p in record["probes"]] == ["l2-0.0001", "dropout-0.2"]
    for entry in record["probes"]:
        folder = run_dir / entry["path"]
        assert entry["status"] == "completed" and entry["epochs"] == 150
        assert (folder / "config.yaml").is_file() and (folder / "history.csv").is_file()
        assert json.loads((folder / "run.json").read_text())["status"] == "completed"
        assert Config.model_validate(__import__("yaml").safe_load((folder / "config.yaml").read_text()))
    # The run keeps its own record as without --probe.
    assert (run_dir / "model.keras").is_file() and (run_dir / "history.csv").is_file()
    output = result.stdout  # type: ignore[attr-defined]
    payload = json.loads(output[: output.rindex("}") + 1])
    (diagnosis,) = payload["results"]
    assert diagnosis["basis"] == "measured"
    assert {m["change"]["key"] for m in diagnosis["measured"]} >= {"model.l2", "model.dropout"}
    assert "curves_verdict" in diagnosis
    # --fail-on overfit: exit 1 exactly when a more-regularized neighbour measurably wins.
    more_wins = diagnosis["verdict"] == "overfit"
    assert result.exit_code == (1 if more_wins else 0)  # type: ignore[attr-defined]
    assert more_wins, diagnosis["summary"]
    assert diagnosis["suggestion"]["text"].endswith(", measured")


@pytest.mark.training
def test_every_command_reads_a_probed_run(probed_run: tuple[Path, object], tmp_path: Path) -> None:
    run_dir, _ = probed_run
    runner = CliRunner()
    diagnosed = runner.invoke(app, ["diagnose", str(run_dir), "--format", "json"])
    (one,) = json.loads(diagnosed.output)["results"]
    assert one["basis"] == "measured"
    # A folder holding the run: still one run, the probes belong to it.
    assert (
        len(
            json.loads(runner.invoke(app, ["diagnose", str(run_dir.parent), "--format", "json"]).output)[
                "results"
            ]
        )
        == 1
    )
    # --emit-config writes the measured winner.
    emitted = tmp_path / "next.yaml"
    assert runner.invoke(app, ["diagnose", str(run_dir), "--emit-config", str(emitted)]).exit_code in (0, 1)
    from fitdoc.config import load_config

    winner = one["suggestion"]
    value = load_config(emitted).get(winner["key"])
    if isinstance(winner["to"], dict):
        assert all(getattr(value, k) == v for k, v in winner["to"].items())
    else:
        assert value == winner["to"]
    # A neighbour on its own is a plain run, diagnosed from its curves.
    alone = runner.invoke(app, ["diagnose", str(run_dir / "probes" / "l2-0.0001"), "--format", "json"])
    assert json.loads(alone.output)["results"][0]["basis"] == "curves"
    compared = runner.invoke(app, ["compare", str(run_dir), "--format", "json"])
    names = [r["name"] for r in json.loads(compared.output)["runs"]]
    assert len(names) == 3 and any("l2-0.0001" in n for n in names)
    picture = tmp_path / "probe.png"
    plotted = runner.invoke(app, ["plot", str(run_dir), "-o", str(picture)])
    assert plotted.exit_code == 0, plotted.output
    assert picture.stat().st_size > 10_000
    from fitdoc.history.load import discover
    from fitdoc.history.rundir import load_run
    from fitdoc.report.plot import build_figure

    figure = build_figure([load_run(discover([run_dir])[0])])
    _, labels = figure.axes[0].get_legend_handles_labels()
    assert "val, l2 0 -> 0.0001" in labels and "val, dropout 0 -> 0.2" in labels
    # Probes deleted: diagnosed from the curves, with a note.
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    shutil.rmtree(copy / "probes")
    gone = json.loads(runner.invoke(app, ["diagnose", str(copy), "--format", "json"]).output)["results"][0]
    assert gone["basis"] == "curves"
    assert any("histories are gone" in note for note in gone["notes"])


@pytest.mark.training
def test_probe_with_the_keras_engine_is_one_line_and_creates_nothing(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["train", str(write_tiny(tmp_path, engine="keras")), "--probe"])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "training.engine" in lines[0] and "--probe" in lines[0]
    assert not (tmp_path / "runs").exists()


@pytest.mark.training
def test_a_failure_inside_training_ends_as_failed_with_its_history(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Any exception in the engine: run.json `failed` with its one-line message, exit 4, history kept."""
    from fitdoc.training.engine import StackedEngine

    real = StackedEngine.run_epoch

    def flaky(self: StackedEngine, epoch: int) -> np.ndarray:
        if epoch == 3:
            raise RuntimeError("injected: device lost\nsecond line")
        return real(self, epoch)

    monkeypatch.setattr(StackedEngine, "run_epoch", flaky)
    result = CliRunner().invoke(app, ["train", str(write_tiny(tmp_path)), "--probe", "--quiet"])
    assert result.exit_code == 4, result.output
    (run_dir,) = (tmp_path / "runs").iterdir()
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "failed"
    assert "RuntimeError: injected: device lost second line" in record["message"]
    assert record["epochs"]["completed"] == 3
    assert len((run_dir / "history.csv").read_text().splitlines()) == 4
    for entry in record["probes"]:
        assert entry["status"] == "failed" and entry["epochs"] == 3
    assert "Traceback" not in result.output


def test_a_probe_history_ends_at_its_last_finite_epoch(tmp_path: Path) -> None:
    from fitdoc.history.rundir import HISTORY_COLUMNS, HistoryWriter
    from fitdoc.training.run import ProbeRun, _finish_probes

    (plan,) = plan_probes(config(hidden_layers=1))
    plan.directory(tmp_path).mkdir(parents=True)
    good = {"loss": 0.1, "mae": 0.2, "val_loss": 0.1, "val_mae": 0.2, "reg_loss": 0.0}
    with HistoryWriter(plan.directory(tmp_path) / "history.csv", HISTORY_COLUMNS) as writer:
        probe = ProbeRun(plan, plan.directory(tmp_path), writer, 0.001)
        probe.epoch_done(0, good, 0.01)
        probe.epoch_done(1, {**good, "loss": float("nan")}, 0.01)
        probe.epoch_done(2, good, 0.01)  # nothing after the divergence
    _finish_probes([probe], "completed")
    assert probe.status == "diverged" and "epoch 2" in probe.message
    assert len((plan.directory(tmp_path) / "history.csv").read_text().splitlines()) == 2
    record = json.loads((plan.directory(tmp_path) / "run.json").read_text())
    assert record["status"] == "diverged" and record["epochs"]["completed"] == 1
    assert probe.summary()["status"] == "diverged"

"""The corpus factory (benchmarks/corpus_factory.py): its labelling rule, its
store, its early-stopping cut and one tiny path trained for real."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from benchmarks.corpus.labels import Member, label_run, mean_at, step_direction
from benchmarks.corpus.store import append_path, early_stop_epochs, read_paths, runs_of


def flat(value: float, n: int = 40) -> np.ndarray:
    return np.full(n, value)


def test_mean_at_averages_the_five_epochs_ending_at_e() -> None:
    test = np.arange(1.0, 41.0)
    assert mean_at(test, 10) == pytest.approx(np.mean([6, 7, 8, 9, 10]))
    assert np.isnan(mean_at(test, 41))


def test_neighbours_are_one_sensible_step() -> None:
    none, l2_4, l2_2, do2, do5, both = (
        Member(0.0, 0.0, flat(1)),
        Member(1e-4, 0.0, flat(1)),
        Member(1e-2, 0.0, flat(1)),
        Member(0.0, 0.2, flat(1)),
        Member(0.0, 0.5, flat(1)),
        Member(1e-4, 0.2, flat(1)),
    )
    assert step_direction(none, l2_4) == 1  # no L2 counts as 1e-6: two decades
    assert step_direction(none, l2_2) == 0  # four decades: not one step
    assert step_direction(l2_4, none) == -1
    assert step_direction(none, do2) == 1 and step_direction(do5, do2) == -1
    assert step_direction(none, do5) == 0  # two dropout steps
    assert step_direction(none, both) == 1
    assert step_direction(l2_4, do2) == 0  # less L2 but more dropout: no direction


def path_with(me: np.ndarray, more_reg: np.ndarray, less_reg: np.ndarray) -> list[Member]:
    return [Member(1e-4, 0.0, me), Member(1e-3, 0.0, more_reg), Member(1e-5, 0.0, less_reg)]


def test_a_run_that_more_regularization_helps_is_overfit() -> None:
    label = label_run(path_with(flat(1.0), flat(0.8), flat(1.05)), 0, 20)
    assert label is not None
    assert (label.label, label.cause, label.best_change) == (
        "overfit",
        "more regularization",
        "l2=0.001,dropout=0",
    )
    assert label.gain_more == pytest.approx(0.2)


def test_a_run_still_improving_is_underfit_not_converged() -> None:
    me = np.concatenate([flat(1.0, 20), flat(0.7, 20)])
    label = label_run(path_with(me, flat(1.0), flat(1.0)), 0, 20)
    assert label is not None and (label.label, label.cause) == ("underfit", "not converged")


def test_a_run_less_regularization_helps_is_underfit_over_regularized() -> None:
    label = label_run(path_with(flat(1.0), flat(1.2), flat(0.85)), 0, 20)
    assert label is not None and (label.label, label.cause) == ("underfit", "over-regularized")


def test_balanced_and_ambiguous() -> None:
    balanced = label_run(path_with(flat(1.0), flat(0.97), flat(0.98)), 0, 20)
    ambiguous = label_run(path_with(flat(1.0), flat(0.93), flat(1.0)), 0, 20)
    assert balanced is not None and balanced.label == "balanced"
    assert ambiguous is not None and ambiguous.label == "ambiguous"


def test_a_cut_that_was_not_trained_to_twice_its_epochs_is_not_labelled() -> None:
    assert label_run(path_with(flat(1.0), flat(1.0), flat(1.0)), 0, 30) is None


def test_early_stopping_stops_where_keras_would() -> None:
    val = np.array([1.0, 0.8, 0.7, 0.71, 0.72, 0.73, 0.6, 0.9, 0.9, 0.9])
    # patience 3: no improvement at epochs 3, 4, 5 -> stops after epoch 5 (6 epochs trained).
    assert early_stop_epochs(val, 3, 10) == 6
    assert early_stop_epochs(val, 4, 10) == 10


def stored_path(key: str = "p0-00000") -> dict:
    rng = np.random.default_rng(0)
    n = 40
    nets = []
    for penalty, dropout in ((0.0, 0.0), (1e-4, 0.0), (0.0, 0.2)):
        curve = list(0.2 + np.exp(-np.arange(n) / 8) + 0.01 * rng.standard_normal(n))
        nets.append(
            {
                "l2": penalty,
                "l1": 0.0,
                "dropout": dropout,
                "loss": curve,
                "metric": curve,
                "val_loss": curve,
                "val_metric": curve,
                "test_error": curve,
            }
        )
    return {
        "key": key,
        "family": "wave",
        "task": "regression",
        "order": "fixed",
        "path_kind": "l2",
        "layers": 2,
        "units": 16,
        "batch": 32,
        "lr": 0.001,
        "cuts": [10, 20],
        "patience": 5,
        "nets": nets,
    }


def test_the_store_keeps_every_finished_path_and_skips_a_torn_one(tmp_path: Path) -> None:
    shard = tmp_path / "paths-s1-w0.jsonl.gz"
    append_path(shard, stored_path("p0-00000"))
    append_path(shard, stored_path("p0-00001"))
    whole = shard.read_bytes()
    torn = gzip.compress(json.dumps(stored_path("p0-00002")).encode())[:-20]
    shard.write_bytes(whole + torn)
    assert [p["key"] for p in read_paths(tmp_path)] == ["p0-00000", "p0-00001"]


def test_a_second_seed_joins_its_path_as_the_mean_test_error_and_keeps_both(tmp_path: Path) -> None:
    """`--second-seed`: a one-seed path's second training is read back as the mean of both
    seeds' test errors (label_seeds 2), the curves stay the first seed's, and a path missing
    a net's second series keeps its one-seed label rather than a mix."""
    from benchmarks.corpus.store import SECOND_SEEDS_DIR, net_id, seed_labels

    append_path(tmp_path / "paths.jsonl.gz", stored_path("p0-00000"))
    append_path(tmp_path / "paths.jsonl.gz", stored_path("p0-00001"))
    path = stored_path()
    worse = {net_id(n, path): [2 * v for v in n["test_error"]] for n in path["nets"]}
    append_path(tmp_path / SECOND_SEEDS_DIR / "s2.jsonl.gz", {"key": "p0-00000", "test_error": worse})
    partial = dict(list(worse.items())[:2])
    append_path(tmp_path / SECOND_SEEDS_DIR / "s2.jsonl.gz", {"key": "p0-00001", "test_error": partial})
    both, one = read_paths(tmp_path)
    assert both["label_seeds"] == 2 and "label_seeds" not in one
    first = np.asarray(path["nets"][0]["test_error"])
    assert np.allclose(both["nets"][0]["test_error"], 1.5 * first)
    assert both["nets"][0]["test_error_seeds"][1] == worse[net_id(path["nets"][0], path)]
    assert both["nets"][0]["val_metric"] == path["nets"][0]["val_metric"]
    assert one["nets"] == path["nets"]
    # Each seed labels alone; the same error twice as large moves no relative gain.
    pairs = list(seed_labels(both))
    assert pairs and all(a == b for a, b in pairs)
    assert list(seed_labels(one)) == []


def test_runs_are_cut_from_a_path_with_their_history_and_config() -> None:
    runs = list(runs_of(stored_path()))
    assert {r.epochs for r in runs} >= {10, 20}
    run = next(r for r in runs if r.epochs == 10 and r.model["l2"] == 1e-4)
    assert list(run.history) == ["epoch", "loss", "mae", "val_loss", "val_mae"]
    assert len(run.history["val_mae"]) == 10
    assert run.training["epochs"] == 10 and "early_stopping" not in run.training
    assert run.label.label in {"overfit", "underfit", "balanced", "ambiguous"}


@pytest.mark.training
def test_a_tiny_path_trains_for_real_in_both_row_orders() -> None:
    from benchmarks.corpus.families import FAMILIES, make_split
    from benchmarks.corpus_factory import FIELDS, train_path

    base = {
        "key": "t-0", "family": "moons", "task": "classification", "noise": 0.1, "n": 200,
        "optimizer": "adam", "lr": 0.01, "layers": 2, "units": 16, "e_max": 3, "batch": 32,
        "path_kind": "l2", "patience": None, "seed": 3, "cuts": [3],
    }  # fmt: skip
    del FAMILIES, make_split
    curves = {}
    for order in ("reshuffle", "fixed"):
        record = train_path({**base, "order": order})
        curves[order] = np.array([[net[f] for f in FIELDS] for net in record["nets"]], float)
    for values in curves.values():
        assert values.shape == (8, len(FIELDS), 6)
        assert np.isfinite(values).all()
        accuracy = values[0, FIELDS.index("metric")]
        assert accuracy.min() >= 0.0 and accuracy.max() <= 1.0
        assert values[0, FIELDS.index("loss"), -1] < values[0, FIELDS.index("loss"), 0]
    # Same seed, same first epoch (one permutation), different from then on.
    assert np.allclose(curves["fixed"][:, :, 0], curves["reshuffle"][:, :, 0])
    assert not np.allclose(curves["fixed"][:, :, 1:], curves["reshuffle"][:, :, 1:])


def test_twice_the_units_winning_is_underfit_capacity_and_half_is_overfit() -> None:
    me = Member(0.0, 0.0, flat(1.0), units=8)
    wide, narrow = Member(0.0, 0.0, flat(0.8), units=16), Member(0.0, 0.0, flat(1.02), units=4)
    more_l2 = Member(1e-4, 0.0, flat(0.97), units=8)
    label = label_run([me, more_l2, wide, narrow], 0, 20)
    assert label is not None and (label.label, label.cause, label.best_change) == (
        "underfit",
        "capacity",
        "units=16",
    )
    assert step_direction(me, Member(1e-4, 0.0, flat(1.0), units=16)) == 0  # other width: no reg step
    small_wins = label_run(
        [me, more_l2, Member(0.0, 0.0, flat(1.1), units=16), Member(0.0, 0.0, flat(0.8), units=4)], 0, 20
    )
    assert small_wins is not None and small_wins.label == "overfit"


def test_on_a_path_with_width_steps_balanced_needs_the_width_step_seen() -> None:
    # No step helps by 5 %; the 1e-4 net was never trained at other widths, so
    # twice the units might have helped it: ambiguous, not balanced.
    me, more_l2 = Member(0.0, 0.0, flat(1.0), units=8), Member(1e-4, 0.0, flat(1.0), units=8)
    widths = [Member(0.0, 0.0, flat(0.99), units=16), Member(0.0, 0.0, flat(1.01), units=4)]
    seen, unseen = label_run([me, more_l2, *widths], 0, 20), label_run([me, more_l2, *widths], 1, 20)
    assert seen is not None and seen.label == "balanced"
    assert unseen is not None and unseen.label == "ambiguous"
    # A path without width steps keeps its balanced labels.
    plain = label_run([me, more_l2], 1, 20)
    assert plain is not None and plain.label == "balanced"


def test_width_nets_are_neighbours_not_runs() -> None:
    path = stored_path()
    base = path["nets"][0]
    path["width_nets"] = [{**base, "units": 32}, {**base, "units": 8}]
    runs = list(runs_of(path))
    assert {r.model["units"] for r in runs} == {16}
    plain = [r for r in runs if r.model["l2"] == 0.0 and r.model["dropout"] == 0.0]
    assert plain and all({"units=32", "units=8"} <= set(r.label.gains) for r in plain)
    others = [r for r in runs if r not in plain]
    assert others and not any(k.startswith("units=") for r in others for k in r.label.gains)


def tiny_path(**changes: object) -> dict[str, object]:
    """A path small enough to train in seconds: 120 wave rows, one layer of 4 units, 10 epochs."""
    from benchmarks.corpus_factory import draw_path

    tiny = {"family": "wave", "task": "regression", "n": 120, "layers": 1, "units": 4, "narrow_units": None}
    return {**draw_path(1, 0), **tiny, "e_max": 10, "batch": 32, "optimizer": "adam", "lr": 0.01, **changes}


@pytest.mark.training
def test_a_tiny_path_with_width_steps_trains_and_labels(tmp_path: Path) -> None:
    from benchmarks.corpus_factory import train_path

    path = tiny_path(width_steps=True)
    record = train_path(path)
    assert [n["units"] for n in record["width_nets"]] == [8, 8, 2, 2]
    assert all(len(n["test_error"]) == 20 for n in record["width_nets"])
    append_path(tmp_path / "paths.jsonl.gz", record)
    (stored,) = read_paths(tmp_path)
    runs = list(runs_of(stored))
    with_width = [r for r in runs if r.model["l2"] == 0.0 and r.model["dropout"] == 0.0]
    assert with_width and all("units=8" in r.label.gains and "units=2" in r.label.gains for r in with_width)


@pytest.mark.training
def test_extra_widths_join_their_stored_path_when_read(tmp_path: Path) -> None:
    """`--extra-width`: the probe's 32-unit width neighbour, trained later for a stored narrow
    path on the same split; it joins the path's width nets and leaves its labels alone."""
    from benchmarks.corpus.store import EXTRA_WIDTHS_DIR
    from benchmarks.corpus_factory import extra_width_todo, train_extra_width, train_path

    record = train_path(tiny_path(width_steps=True))
    append_path(tmp_path / "paths.jsonl.gz", record)
    (todo,) = extra_width_todo(tmp_path, 32)
    extra = train_extra_width(todo, 32)
    assert extra["key"] == record["key"] and [n["units"] for n in extra["width_nets"]] == [32, 32]
    # The same split, seed and budget: the narrow setting's first epoch at 8 units repeats.
    again = train_extra_width(todo, 8)["width_nets"][0]
    assert again["val_metric"][:3] == record["width_nets"][0]["val_metric"][:3]
    append_path(tmp_path / EXTRA_WIDTHS_DIR / "wide.jsonl.gz", extra)
    (stored,) = read_paths(tmp_path)
    assert [n["units"] for n in stored["width_nets"]] == [8, 8, 2, 2, 32, 32]
    assert extra_width_todo(tmp_path, 32) == []
    labels = [r.label for r in runs_of(record)]
    assert [r.label for r in runs_of(stored)] == labels


@pytest.mark.training
def test_two_seed_labels_average_the_test_error_of_two_trainings_on_the_same_data() -> None:
    from benchmarks.corpus_factory import train_path

    path = tiny_path(width_steps=False)
    one, other = train_path(path), train_path({**path, "train_seed": path["seed"] + 1})
    both = train_path(path, seeds=2)
    assert both["label_seeds"] == 2
    a, b, mean = (np.asarray(r["nets"][0]["test_error"], float) for r in (one, other, both))
    assert not np.allclose(a, b)  # another initialization and row order
    assert np.allclose(mean, (a + b) / 2, rtol=1e-4)
    assert both["nets"][0]["val_metric"] == one["nets"][0]["val_metric"]  # the curves: the first seed's


@pytest.mark.training
def test_a_stored_path_trains_again_from_the_second_seed_with_its_own_budget(tmp_path: Path) -> None:
    from benchmarks.corpus.store import SECOND_SEEDS_DIR, net_id
    from benchmarks.corpus_factory import second_seed_todo, train_path, train_second_seed

    record = train_path(tiny_path(width_steps=True))
    # A stored budget is kept as it is, even where `fit_budget` would choose another.
    record = {**record, "batch": 16}
    append_path(tmp_path / "paths.jsonl.gz", record)
    ((todo, extra),) = second_seed_todo(tmp_path)
    assert todo["key"] == record["key"] and extra == ()
    again = train_second_seed(todo, (32,))
    nets = [*record["nets"], *record["width_nets"]]
    assert set(again["test_error"]) == {net_id(n, record) for n in nets} | {"32:0:0:0", "32:0.0001:0:0"}
    first = np.asarray(record["nets"][0]["test_error"], float)
    second = np.asarray(again["test_error"][net_id(record["nets"][0], record)], float)
    assert second.shape == first.shape and not np.allclose(first, second)
    append_path(tmp_path / SECOND_SEEDS_DIR / "s2.jsonl.gz", again)
    assert second_seed_todo(tmp_path) == []
    (stored,) = read_paths(tmp_path)
    assert stored["label_seeds"] == 2


def test_slow_sgd_paths_are_the_same_draw_with_plain_sgd_at_a_small_rate_under_their_own_key() -> None:
    from benchmarks.corpus_factory import SLOW_SGD_LR, draw_path, slow_sgd

    path = draw_path(1, 42)
    slow = slow_sgd(path)
    assert slow["key"] == "p1s-00042" and slow["key"] != path["key"]
    assert slow["optimizer"] == "sgd_plain" and SLOW_SGD_LR[0] <= slow["lr"] <= SLOW_SGD_LR[1]
    assert {k: v for k, v in slow.items() if k not in ("key", "optimizer", "lr")} == {
        k: v for k, v in path.items() if k not in ("key", "optimizer", "lr")
    }
    assert slow_sgd(draw_path(1, 42)) == slow  # seeded by the path alone


def test_short_classification_paths_are_classification_draws_of_few_epochs_under_their_own_key() -> None:
    from benchmarks.corpus.families import FAMILIES
    from benchmarks.corpus_factory import SHORT_EPOCHS, draw_path, fit_budget, short_classification

    paths = [short_classification(draw_path(1, i)) for i in range(60)]
    assert paths[7]["key"] == "p1c-00007"
    assert all(FAMILIES[p["family"]].task == "classification" == p["task"] for p in paths)
    assert {p["e_max"] for p in paths} == set(SHORT_EPOCHS)
    assert {p["family"] for p in paths} == {n for n, f in FAMILIES.items() if f.task == "classification"}
    assert short_classification(draw_path(1, 7)) == paths[7]  # seeded by the path alone
    # The budget never stretches a short run, nor cuts it below 10 epochs.
    for e_max in SHORT_EPOCHS:
        fitted = fit_budget({**paths[0], "e_max": e_max, "n": 20_000}, 16_000, 4_000, 20)
        assert fitted["e_max"] == e_max and min(fitted["cuts"]) >= 10 and max(fitted["cuts"]) == e_max


@pytest.mark.training
def test_the_factory_command_line_takes_every_flag(tmp_path: Path) -> None:
    import subprocess
    import sys

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "corpus_factory.py"
    flags = ["--paths", "0", "--data-dir", str(tmp_path), "--only-narrow", "--slow-sgd", "--seeds", "2"]
    second = subprocess.run(
        [sys.executable, str(script), "--second-seed", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert second.returncode == 0, second.stderr
    assert "0 stored paths still labelled from one seed" in second.stdout
    flags.append("--short-classification")
    done = subprocess.run([sys.executable, str(script), *flags], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "trained 0 paths" in done.stdout

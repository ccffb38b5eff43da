"""The suggestion ladder: verdict + config -> one concrete change; next_config."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from fitdoc.config import Config, ModelOnlyConfig, validate_config
from fitdoc.diagnosis.features import Features, compute_features
from fitdoc.diagnosis.suggest import dropout_down, dropout_up, l2_down, l2_up, next_config, suggest
from fitdoc.errors import ConfigError
from fitdoc.history.curves import Curves
from fitdoc.verdict import Cause, Verdict


def cfg(**model: Any) -> Config:
    training = model.pop("training", {})
    return validate_config({"data": {"synthetic": "founding"}, "model": model, "training": training})


def feats(best_fraction: float = 1.0, n: int = 200) -> Features:
    train = np.linspace(1.0, 0.1, n)
    val = np.full(n, 0.3)
    val[int(best_fraction * (n - 1))] = 0.2
    return compute_features(Curves(np.arange(n), train, val, "mae"))


def primary(verdict: Verdict, cause: Cause | None, config: Any, f: Features | None = None) -> tuple:
    s = suggest(verdict, cause, config, f)
    assert s is not None
    return s.primary.key, s.primary.from_, s.primary.to


def test_ladders() -> None:
    assert [l2_up(v) for v in (0.0, 1e-4, 1e-3, 1e-2)] == [1e-4, 1e-3, 1e-2, None]
    assert [l2_down(v) for v in (1e-2, 1e-3, 1e-4, 1e-5, 0.0)] == [1e-3, 1e-4, 1e-5, 0.0, None]
    assert [dropout_up(v) for v in (0.0, 0.2, 0.5)] == [0.2, 0.5, None]
    assert [dropout_down(v) for v in (0.5, 0.2, 0.0)] == [0.2, 0.0, None]


def test_overfit_ladder() -> None:
    s = suggest(Verdict.OVERFIT, Cause.GAP, cfg())
    assert (s.primary.key, s.primary.from_, s.primary.to) == ("model.l2", 0.0, 0.0001)
    assert s.alternatives[0].key == "model.dropout" and s.alternatives[0].to == 0.2
    assert primary(Verdict.OVERFIT, Cause.GAP, cfg(l2=1e-4)) == ("model.l2", 1e-4, 1e-3)
    assert primary(Verdict.OVERFIT, Cause.GAP, cfg(l2=1e-3)) == ("model.l2", 1e-3, 1e-2)
    assert primary(Verdict.OVERFIT, Cause.GAP, cfg(l2=1e-2)) == ("model.dropout", 0.0, 0.2)
    assert primary(Verdict.OVERFIT, Cause.GAP, cfg(dropout=0.2)) == ("model.dropout", 0.2, 0.5)


def test_a_run_that_chose_l1_climbs_the_l1_ladder() -> None:
    assert primary(Verdict.OVERFIT, Cause.GAP, cfg(l1=1e-5)) == ("model.l1", 1e-5, 1e-4)
    assert primary(Verdict.OVERFIT, Cause.GAP, cfg(l1=1e-2)) == ("model.dropout", 0.0, 0.2)
    # With both penalties set, L2 stays the one to raise.
    assert primary(Verdict.OVERFIT, Cause.GAP, cfg(l1=1e-4, l2=1e-4)) == ("model.l2", 1e-4, 1e-3)
    assert primary(Verdict.UNDERFIT, Cause.OVER_REGULARIZED, cfg(l1=1e-3)) == ("model.l1", 1e-3, 1e-4)


def test_missed_early_stop_suggests_stopping_at_the_minimum() -> None:
    s = suggest(Verdict.OVERFIT, Cause.REBOUND, cfg(), feats(0.3))
    assert s.primary.key == "training.early_stopping"
    assert s.primary.from_ is None and s.primary.to == {"patience": 20}
    assert "epoch" in s.primary.text
    assert s.alternatives[0].key == "model.l2"  # more regularization as the alternative
    applied = next_config(cfg(), s)
    assert applied.training.early_stopping is not None and applied.training.early_stopping.patience == 20


def test_underfit_ladder() -> None:
    assert primary(Verdict.UNDERFIT, Cause.OVER_REGULARIZED, cfg(l2=1e-3)) == ("model.l2", 1e-3, 1e-4)
    assert primary(Verdict.UNDERFIT, Cause.OVER_REGULARIZED, cfg(l2=1e-5)) == ("model.l2", 1e-5, 0.0)
    assert primary(Verdict.UNDERFIT, Cause.OVER_REGULARIZED, cfg(dropout=0.5)) == ("model.dropout", 0.5, 0.2)
    assert primary(Verdict.UNDERFIT, Cause.OVER_REGULARIZED, cfg(dropout=0.2)) == ("model.dropout", 0.2, 0.0)
    assert primary(Verdict.UNDERFIT, Cause.OVER_REGULARIZED, cfg()) == ("model.units", 64, 128)
    assert primary(Verdict.UNDERFIT, Cause.NOT_CONVERGED, cfg(training={"epochs": 20})) == (
        "training.epochs",
        20,
        40,
    )
    assert primary(Verdict.UNDERFIT, Cause.CAPACITY, cfg(units=32)) == ("model.units", 32, 64)


def test_change_text_is_a_human_config_edit() -> None:
    s = suggest(Verdict.UNDERFIT, Cause.OVER_REGULARIZED, cfg(l2=1e-3))
    assert s.primary.text == "lower L2 tenfold: model.l2 0.001 -> 0.0001"


def test_without_config_the_change_is_generic() -> None:
    for verdict, cause in [
        (Verdict.OVERFIT, Cause.GAP),
        (Verdict.UNDERFIT, Cause.OVER_REGULARIZED),
        (Verdict.UNDERFIT, Cause.NOT_CONVERGED),
        (Verdict.UNDERFIT, Cause.CAPACITY),
    ]:
        s = suggest(verdict, cause, None)
        assert s is not None and s.primary.from_ is None and s.primary.to is None and s.primary.text
        with pytest.raises(ConfigError):
            next_config(cfg(), s)


def test_balanced_and_inconclusive_have_no_change() -> None:
    assert suggest(Verdict.BALANCED, None, cfg()) is None
    assert suggest(Verdict.INCONCLUSIVE, None, cfg()) is None


def test_next_config_applies_the_primary_change_on_both_config_kinds() -> None:
    full = cfg(l2=1e-3)
    s = suggest(Verdict.UNDERFIT, Cause.OVER_REGULARIZED, full)
    new = next_config(full, s)
    assert isinstance(new, Config) and new.model.l2 == 1e-4 and full.model.l2 == 1e-3
    partial = validate_config({"model": {"l2": "1e-3"}}, model_only=True)
    assert isinstance(partial, ModelOnlyConfig)
    new = next_config(partial, suggest(Verdict.UNDERFIT, Cause.OVER_REGULARIZED, partial))
    assert isinstance(new, ModelOnlyConfig) and new.model.l2 == 1e-4


def test_growth_stops_at_the_config_schemas_bounds() -> None:
    from fitdoc.config import ModelConfig, TrainingConfig
    from fitdoc.diagnosis.suggest import schema_max

    assert schema_max("ModelConfig", "units") == ModelConfig.model_fields["units"].metadata[1].le
    assert schema_max("TrainingConfig", "epochs") == TrainingConfig.model_fields["epochs"].metadata[1].le
    top = cfg().with_changes({"model.units": schema_max("ModelConfig", "units")})
    s = suggest(Verdict.UNDERFIT, Cause.CAPACITY, top)
    assert s is None or all(c.key != "model.units" for c in (s.primary, *s.alternatives))

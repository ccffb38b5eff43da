"""The one place rules are registered, listed, and given threshold overrides.

Registration refuses a duplicate code or name. Overrides come from a YAML file
`{FD101: {max_ratio: 3.0}}` (a rule may also be named by its dotted name;
`decision:` names the decision's own thresholds) and are checked strictly: an unknown rule or threshold, or a value that is not a
number, is a `ConfigError` naming the file and the field.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from fitdoc.diagnosis.rules.base import Check, Rule, Threshold
from fitdoc.diagnosis.rules.decision import DECISION, DecisionThresholds
from fitdoc.errors import ConfigError, did_you_mean

# The families, in code order; importing one registers its rules.
FAMILIES = ("history", "overfit", "underfit", "balanced", "measured")

_RULES: dict[str, Rule] = {}

Overrides = dict[str, dict[str, float]]


def register(new: Rule) -> Rule:
    if new.code in _RULES:
        raise ValueError(f"rule code {new.code} is already registered ({_RULES[new.code].name})")
    if any(existing.name == new.name for existing in _RULES.values()):
        raise ValueError(f"rule name {new.name} is already registered")
    _RULES[new.code] = new
    return new


def rule(
    code: str, name: str, description: str, **thresholds: tuple[float, str, str]
) -> Callable[[Check], Rule]:
    """Declare a rule: `@rule("FD101", "overfit.gap", "...", max_ratio=(3.0, "ratio", "why"))`."""

    def wrap(check: Check) -> Rule:
        specs = tuple(
            Threshold(key, float(default), text, unit) for key, (default, unit, text) in thresholds.items()
        )
        return register(Rule(code=code, name=name, description=description, specs=specs, check=check))

    return wrap


def _load_builtin() -> None:
    for family in FAMILIES:
        importlib.import_module(f"fitdoc.diagnosis.rules.{family}")


def all_rules(overrides: Mapping[str, Mapping[str, Any]] | None = None) -> list[Rule]:
    """Every registered rule in code order, with `overrides` applied (validated)."""
    _load_builtin()
    checked = validate_overrides(overrides or {}, source="<thresholds>")
    rules = [_RULES[code] for code in sorted(_RULES)]
    return [r.with_thresholds(checked[r.code]) if r.code in checked else r for r in rules]


def decision_thresholds(overrides: Mapping[str, Mapping[str, Any]] | None = None) -> DecisionThresholds:
    """The decision's own thresholds, with the `decision:` part of `overrides` applied (validated)."""
    checked = validate_overrides(overrides or {}, source="<thresholds>")
    return DECISION.with_thresholds(checked[DECISION.code]) if DECISION.code in checked else DECISION


def get_rule(key: str) -> Rule:
    """A rule by code (`FD101`) or dotted name (`overfit.gap`)."""
    _load_builtin()
    found = _lookup(key)
    if found is None:
        raise KeyError(key)
    return found


def load_threshold_overrides(path: Path) -> Overrides:
    """Read `{FD101: {max_ratio: 3.0}}` from a YAML (or JSON) file, checked."""
    from fitdoc.config import load_yaml

    raw = load_yaml(Path(path))
    return validate_overrides(raw, source=path)


def validate_overrides(raw: Mapping[str, Any], *, source: object) -> Overrides:
    """Normalize to `{code: {threshold: float}}`; ConfigError on anything unknown."""
    _load_builtin()
    if not isinstance(raw, Mapping):
        raise ConfigError(f"expected a mapping of rule ids, got {type(raw).__name__}", path=source)
    result: Overrides = {}
    for key, values in raw.items():
        found: Rule | DecisionThresholds | None = DECISION if str(key) == DECISION.code else _lookup(str(key))
        if found is None:
            choices = [*sorted(_RULES), *sorted(r.name for r in _RULES.values()), DECISION.code]
            raise ConfigError(f"unknown rule{_hint(str(key), choices)}", path=source, field=str(key))
        if not isinstance(values, Mapping):
            raise ConfigError(
                f"expected a mapping of threshold names to numbers, got {values!r}",
                path=source,
                field=str(key),
            )
        for name, value in values.items():
            field = f"{key}.{name}"
            if name not in found.thresholds:
                raise ConfigError(
                    f"unknown threshold{_hint(str(name), list(found.thresholds))}", path=source, field=field
                )
            result.setdefault(found.code, {})[str(name)] = _number(value, source, field)
    return result


def _lookup(key: str) -> Rule | None:
    if key.upper() in _RULES:
        return _RULES[key.upper()]
    return next((r for r in _RULES.values() if r.name == key), None)


def _number(value: Any, source: object, field: str) -> float:
    # YAML 1.1 reads `1e-4` as a string; take it as the number a person meant.
    if isinstance(value, bool):
        raise ConfigError(f"expected a number, got {value!r}", path=source, field=field)
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"expected a number, got {value!r}", path=source, field=field) from None
    if not math.isfinite(number):
        raise ConfigError(f"expected a finite number, got {value!r}", path=source, field=field)
    return number


def _hint(word: str, options: list[str]) -> str:
    return f" {word!r}{did_you_mean(word, options)}"

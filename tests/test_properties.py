"""Property tests: whatever a user feeds fitdoc, the outcome is a value or a one-line fitdoc error.

Issue 8: fitdoc runs unattended in CI on files it did not write. For every
history reader and the config loader, arbitrary input must end in either a
valid value (`Config`, `Curves`, `Diagnosis`) or a `FitdocError` whose one-line
message names the file; any other exception is a bug. Examples are bounded so
the whole file runs in CI in a few seconds.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fitdoc.config import Config, ModelOnlyConfig, config_to_yaml, load_config, validate_config
from fitdoc.errors import ConfigError, FitdocError

BOUNDED = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _write(data: bytes | str, name: str) -> Path:
    """A fresh file per example (hypothesis reuses one function-scoped tmp_path)."""
    folder = Path(tempfile.mkdtemp(prefix="fitdoc-prop-"))
    path = folder / name
    if isinstance(data, str):
        path.write_text(data, encoding="utf-8", newline="")
    else:
        path.write_bytes(data)
    return path


def assert_clean_error(exc: FitdocError, path: Path) -> None:
    """What the CLI prints for it: one line, naming the file."""
    line = exc.one_line()
    assert line
    assert "\n" not in line and "\r" not in line
    assert str(path) in line


# ------------------------------------------------------------------ config


def _finite_numbers(config: Config | ModelOnlyConfig) -> None:
    """A config that validates holds only finite numbers (inf/NaN must be refused)."""
    dumped = config.model_dump(mode="python")

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)
        elif isinstance(node, float):
            assert math.isfinite(node), dumped

    walk(dumped)


def load_outcome(path: Path, overrides: list[str] | None = None, *, model_only: bool = False) -> Any:
    """Load a config; return it, or the ConfigError after checking it is a clean one-liner."""
    try:
        config = load_config(path, overrides, model_only=model_only)
    except ConfigError as exc:
        assert_clean_error(exc, path)
        return exc
    assert isinstance(config, ModelOnlyConfig if model_only else Config)
    _finite_numbers(config)
    return config


# Values YAML can hold that a user might put anywhere: right, wrong and odd types.
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["1e-4", "1e3", "0.2", "many", "", "founding", "relu", "adam", "mse", "fast", "keras"]),
    st.text(max_size=12),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)

SECTION_KEYS = {
    "data": ["synthetic", "path", "target", "features", "n_samples", "noise", "test_split"],
    "model": ["hidden_layers", "units", "activation", "l2", "l1", "dropout"],
    "training": [
        "optimizer",
        "learning_rate",
        "loss",
        "epochs",
        "batch_size",
        "validation_split",
        "shuffle",
        "early_stopping",
        "engine",
    ],
    "output": ["dir"],
}
# Known keys mostly, with typos and strangers mixed in.
key_names = {
    section: st.sampled_from([*keys, "l3", "epoch", "unknown", "Units", "learningrate"])
    for section, keys in SECTION_KEYS.items()
}


@st.composite
def config_trees(draw: st.DrawFn) -> dict[Any, Any]:
    tree: dict[Any, Any] = {}
    if draw(st.booleans()):
        tree["data"] = {"synthetic": "founding"}
    for section, names in key_names.items():
        if draw(st.integers(0, 3)) == 0:
            continue
        body = tree.setdefault(section, {})
        if not isinstance(body, dict):
            continue
        for _ in range(draw(st.integers(0, 3))):
            body[draw(names)] = draw(values)
    if draw(st.integers(0, 4)) == 0:
        tree[draw(st.sampled_from(["name", "seed", "nmae", "extra", 1, None]))] = draw(values)
    if draw(st.integers(0, 6)) == 0:
        tree[draw(st.sampled_from(["model", "training", "data"]))] = draw(values)
    return tree


@BOUNDED
@given(data=st.binary(max_size=600))
def test_config_arbitrary_bytes(data: bytes) -> None:
    load_outcome(_write(data, "c.yaml"))


@BOUNDED
@given(text=st.text(alphabet=st.characters(codec="utf-8"), max_size=300))
def test_config_arbitrary_text(text: str) -> None:
    load_outcome(_write(text, "c.yaml"))


@BOUNDED
@given(tree=config_trees(), model_only=st.booleans(), bom=st.booleans(), crlf=st.booleans())
def test_config_wrong_types_unknown_keys(tree: dict[Any, Any], model_only: bool, bom: bool, crlf: bool) -> None:
    text = yaml.safe_dump(tree, sort_keys=False, allow_unicode=True)
    if crlf:
        text = text.replace("\n", "\r\n")
    path = _write(("\ufeff" if bom else "") + text, "c.yaml")
    outcome = load_outcome(path, model_only=model_only)
    if isinstance(outcome, ConfigError):
        return
    # What loads, saves and loads back to the same config (the run dir's config.yaml).
    again = _write(config_to_yaml(outcome), "again.yaml")
    assert load_config(again, model_only=model_only) == outcome


@BOUNDED
@given(tree=config_trees(), cut=st.integers(min_value=0, max_value=400))
def test_config_truncated(tree: dict[Any, Any], cut: int) -> None:
    text = yaml.safe_dump(tree, sort_keys=False)
    load_outcome(_write(text[:cut], "c.yaml"))


# Tags that would construct Python objects, or that YAML's safe schema does not know.
UNSAFE_TAGS = [
    "!!python/object/apply:os.system ['echo pwned > {marker}']",
    "!!python/object/new:builtins.list [[1]]",
    "!!python/name:os.system",
    "!!python/module:os",
    "!!python/tuple [1, 2]",
    "!custom {{a: 1}}",
]
# Standard safe tags: may load or be refused, but never crash.
TAGGED = [
    *UNSAFE_TAGS,
    "!!binary aGVsbG8=",
    "!!set {{a, b}}",
    "!!timestamp 2024-01-01",
    "!!omap [{{a: 1}}]",
    "&a [*a]",
    "*undefined",
]


@BOUNDED
@given(
    fragment=st.sampled_from(TAGGED),
    where=st.sampled_from(["", "model.l2", "training.epochs", "name", "data.synthetic"]),
)
def test_config_tags_are_never_constructed(fragment: str, where: str) -> None:
    folder = Path(tempfile.mkdtemp(prefix="fitdoc-prop-"))
    marker = folder / "pwned"
    value = fragment.format(marker=marker)
    if not where:
        text = value + "\n"
    elif "." in where:
        section, key = where.split(".")
        text = f"data:\n  synthetic: founding\n{section}:\n  {key}: {value}\n"
        if section == "data":
            text = f"data:\n  {key}: {value}\n"
    else:
        text = f"data:\n  synthetic: founding\n{where}: {value}\n"
    path = folder / "c.yaml"
    path.write_text(text)
    outcome = load_outcome(path)
    assert not marker.exists(), "a YAML tag executed code"
    if fragment in UNSAFE_TAGS:
        assert isinstance(outcome, ConfigError), f"an unsafe tag was accepted: {text!r}"


override_texts = st.one_of(
    st.text(max_size=30),
    st.builds(
        lambda key, value: f"{key}={value}",
        st.sampled_from(
            [
                "model.l2",
                "training.epochs",
                "training.early_stopping.patience",
                "model",
                "nope",
                "model.l3",
                "training..epochs",
                ".",
                "name",
                "data.synthetic",
            ]
        ),
        st.one_of(
            st.sampled_from(["1e-4", "many", "[1, 2", "{a: 1}", "!!python/name:os.system", ".inf", ".nan", ""]),
            st.text(max_size=10),
        ),
    ),
)


@BOUNDED
@given(overrides=st.lists(override_texts, max_size=3), model_only=st.booleans())
def test_config_overrides(overrides: list[str], model_only: bool) -> None:
    path = _write("data:\n  synthetic: founding\ntraining:\n  epochs: 3\n", "c.yaml")
    load_outcome(path, overrides, model_only=model_only)


@pytest.mark.parametrize("value", [".inf", "-.inf", ".nan", "1e999", "'1e999'"])
@pytest.mark.parametrize("key", ["model.l2", "model.l1", "data.noise", "training.early_stopping.min_delta"])
def test_config_refuses_non_finite_numbers(tmp_path: Path, key: str, value: str) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("data:\n  synthetic: founding\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, [f"{key}={value}"])
    assert_clean_error(info.value, path)
    assert key in info.value.one_line()


def test_validate_config_non_mapping_sections() -> None:
    for raw in ({"data": None}, {"data": [1]}, {"data": {"synthetic": "founding"}, "model": "big"}):
        with pytest.raises(ConfigError):
            validate_config(raw, path="x.yaml")

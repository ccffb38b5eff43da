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
from fitdoc.history.load import FORMATS

BOUNDED = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


_SCRATCH: list[Path] = []


@pytest.fixture(autouse=True, scope="module")
def _scratch(tmp_path_factory: pytest.TempPathFactory) -> None:
    """One pytest-managed folder for all examples (pytest prunes it, /tmp does not fill up)."""
    _SCRATCH[:] = [tmp_path_factory.mktemp("examples")]


def _write(data: bytes | str, name: str) -> Path:
    """A fresh file per example (hypothesis reuses one function-scoped tmp_path)."""
    folder = Path(tempfile.mkdtemp(prefix="ex-", dir=_SCRATCH[0] if _SCRATCH else None))
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
    """A config that validates holds only finite numbers (inf/NaN must be refused).

    `diagnose --config` keeps a data section it never reads (so --emit-config can
    write a trainable file) without validating it; only what it reads must be finite.
    """
    dumped = config.model_dump(mode="python")
    if isinstance(config, ModelOnlyConfig):
        dumped.pop("data", None)

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
def test_config_wrong_types_unknown_keys(
    tree: dict[Any, Any], model_only: bool, bom: bool, crlf: bool
) -> None:
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
    folder = _write("", "c.yaml").parent
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
            st.sampled_from(
                ["1e-4", "many", "[1, 2", "{a: 1}", "!!python/name:os.system", ".inf", ".nan", ""]
            ),
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


# ------------------------------------------------------------------ histories

FORMAT_CHOICES = [None, *FORMATS]
COLUMN_POOL = [
    "epoch",
    "loss",
    "mae",
    "val_loss",
    "val_mae",
    "reg_loss",
    "learning_rate",
    "lr",
    "step",
    "train_loss",
    "val_acc",
    "accuracy",
    "train_mae_epoch",
    "val_mae_epoch",
    "out1_mae",
    "val_out1_mae",
    "time",
    "",
    "x y",
    "val_",
]
cells = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=64).map(repr),
    st.floats(min_value=-10, max_value=10).map(lambda v: f"{v:.6g}"),
    st.integers(min_value=-5, max_value=2000).map(str),
    st.sampled_from(
        ["NA", "nan", "", "inf", "-inf", "1e308", "1e-320", "1e999", "None", "abc", '"3"', "1,5"]
    ),
)


def assert_curves(curves: Any, path: Path) -> None:
    """What every rule may rely on in a `Curves` value."""
    from fitdoc.history.curves import Curves

    assert isinstance(curves, Curves)
    n = len(curves.epochs)
    assert curves.train is not None or curves.val is not None
    for series in (curves.train, curves.val, curves.train_loss, curves.val_loss, curves.reg_loss):
        if series is not None:
            assert series.shape == (n,)
            assert series.dtype.kind == "f"
    assert str(path) in curves.source or curves.source.endswith(path.name)


def read_outcome(path: Path, **options: Any) -> Any:
    """Read a history; return its Curves, or the HistoryError after checking it is a clean one-liner."""
    from fitdoc.history.load import read_history

    try:
        curves = read_history(path, **options)
    except FitdocError as exc:
        assert int(exc.exit_code) == 2
        assert_clean_error(exc, path)
        return exc
    assert_curves(curves, path)
    return curves


@st.composite
def csv_histories(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    """A CSV history of random shape, delimiter, epochs, values, BOM and line endings."""
    delimiter = draw(st.sampled_from([",", ";", "\t"]))
    columns = draw(st.lists(st.sampled_from(COLUMN_POOL), min_size=1, max_size=6))
    n_rows = draw(st.integers(min_value=0, max_value=25))
    epoch_mode = draw(st.sampled_from(["sorted", "missing", "duplicate", "unsorted", "restart", "none"]))
    epochs = list(range(n_rows))
    if epoch_mode == "missing" and n_rows > 2:
        epochs = sorted(draw(st.sets(st.integers(0, 3 * n_rows), min_size=n_rows, max_size=n_rows)))
    elif epoch_mode == "duplicate" and n_rows > 1:
        epochs = sorted(draw(st.lists(st.integers(0, n_rows // 2), min_size=n_rows, max_size=n_rows)))
    elif epoch_mode == "unsorted":
        epochs = draw(st.permutations(epochs))
    elif epoch_mode == "restart" and n_rows > 3:
        cut = n_rows // 2
        epochs = list(range(cut)) + list(range(n_rows - cut))
    all_na_val = draw(st.booleans())
    index_column = draw(st.integers(0, 4)) == 0  # a pandas dump: leading unnamed index
    header = ([""] if index_column else []) + (["epoch"] if epoch_mode != "none" else []) + columns
    lines = [delimiter.join(header)]
    for row, epoch in enumerate(epochs):
        values = [str(row)] if index_column else []
        if epoch_mode != "none":
            values.append(str(epoch))
        for name in columns:
            values.append("NA" if all_na_val and name.startswith("val") else draw(cells))
        if draw(st.integers(0, 15)) == 0:
            values = values[: draw(st.integers(0, len(values)))]  # a ragged row
        lines.append(delimiter.join(values))
    if draw(st.integers(0, 8)) == 0 and n_rows:
        lines.insert(draw(st.integers(1, len(lines))), lines[0])  # header repeated (appended run)
    newline = draw(st.sampled_from(["\n", "\r\n", "\r\r\n"]))
    text = newline.join(lines) + draw(st.sampled_from(["", newline]))
    if draw(st.booleans()):
        text = "\ufeff" + text
    options: dict[str, Any] = {}
    if draw(st.integers(0, 4)) == 0:
        options["format_in"] = draw(st.sampled_from(FORMAT_CHOICES))
    if draw(st.integers(0, 5)) == 0:
        options["val_col"] = draw(st.sampled_from(COLUMN_POOL))
    if draw(st.integers(0, 5)) == 0:
        options["train_col"] = draw(st.sampled_from(COLUMN_POOL))
    return text, options


json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**64), max_value=2**64),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=6),
)
json_series = st.lists(json_scalars | st.floats(min_value=0, max_value=5), max_size=20)
json_keys = st.sampled_from(["loss", "val_loss", "mae", "val_mae", "epoch", "step", "eval_loss", "lr", "x"])


@st.composite
def json_histories(draw: st.DrawFn) -> Any:
    """JSON of the right shapes (dict of lists, list of records, trainer_state) and wrong ones."""
    shape = draw(st.sampled_from(["dict_of_lists", "records", "trainer_state", "wrong"]))
    if shape == "dict_of_lists":
        return draw(st.dictionaries(json_keys, json_series | json_scalars, max_size=5))
    record = st.dictionaries(json_keys, json_scalars | st.floats(0, 5), max_size=5)
    if shape == "records":
        return draw(st.lists(record, max_size=15))
    if shape == "trainer_state":
        state: dict[str, Any] = {"log_history": draw(st.lists(record, max_size=15) | json_scalars)}
        if draw(st.booleans()):
            state["global_step"] = draw(json_scalars)
        return state
    return draw(
        st.recursive(
            json_scalars,
            lambda inner: st.lists(inner, max_size=3) | st.dictionaries(json_keys, inner, max_size=3),
            max_leaves=8,
        )
    )


@BOUNDED
@given(
    data=st.binary(max_size=800),
    name=st.sampled_from(["history.csv", "metrics.csv", "h.json", "trainer_state.json", "log.txt"]),
    format_in=st.sampled_from(FORMAT_CHOICES),
)
def test_history_arbitrary_bytes(data: bytes, name: str, format_in: str | None) -> None:
    read_outcome(_write(data, name), format_in=format_in)


@BOUNDED
@given(history=csv_histories())
def test_history_random_csv(history: tuple[str, dict[str, Any]]) -> None:
    text, options = history
    read_outcome(_write(text, "history.csv"), **options)


@BOUNDED
@given(history=csv_histories(), cut=st.floats(min_value=0, max_value=1))
def test_history_truncated_csv(history: tuple[str, dict[str, Any]], cut: float) -> None:
    text, options = history
    data = text.encode("utf-8")
    read_outcome(_write(data[: int(len(data) * cut)], "history.csv"), **options)


@BOUNDED
@given(obj=json_histories(), format_in=st.sampled_from([None, "json", "hf_trainer_state"]), cut=st.booleans())
def test_history_json_shapes(obj: Any, format_in: str | None, cut: bool) -> None:
    import json

    text = json.dumps(obj)  # NaN and Infinity as Python's json writes them
    if cut:
        text = text[: len(text) // 2]
    read_outcome(
        _write(text, "trainer_state.json" if "log_history" in text else "h.json"), format_in=format_in
    )


@BOUNDED
@given(obj=st.dictionaries(json_keys, json_series, max_size=5))
def test_curves_from_mapping(obj: dict[str, Any]) -> None:
    from fitdoc.history.curves import Curves
    from fitdoc.history.load import curves_from_mapping

    try:
        curves = curves_from_mapping(obj)
    except FitdocError as exc:
        assert "\n" not in exc.one_line()
        return
    assert isinstance(curves, Curves)


# ------------------------------------------------------------------ diagnosis

series_values = st.one_of(
    st.floats(min_value=1e-6, max_value=10),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -1.0, 1e308, -1e308, 5e-324, float("nan"), float("inf")]),
)


@st.composite
def curves_values(draw: st.DrawFn) -> Any:
    """Curves as any reader could hand them over: any length, any values, validation or not."""
    import numpy as np

    from fitdoc.history.curves import Curves

    n = draw(st.integers(min_value=0, max_value=60))
    smooth = draw(st.booleans())

    def series() -> Any:
        if smooth and n:
            # A plausible decaying curve, so rules past the inconclusive gates run too.
            start, end = draw(st.floats(0.5, 5)), draw(st.floats(1e-4, 0.4))
            curve = start * (end / start) ** (np.arange(n) / max(n - 1, 1))
            return curve + draw(st.floats(0, 0.3)) * end * np.sin(np.arange(n))
        return np.asarray(draw(st.lists(series_values, min_size=n, max_size=n)), dtype=float)

    val = None if draw(st.integers(0, 4)) == 0 else series()
    if val is not None and draw(st.integers(0, 6)) == 0:
        val = np.full(n, np.nan)  # a validation column that is all NA
    return Curves(
        epochs=np.arange(n, dtype=float),
        train=series(),
        val=val,
        metric=draw(st.sampled_from(["mae", "loss", "mse"])),
        reg_loss=series() if draw(st.integers(0, 3)) == 0 else None,
        source="<prop>",
    )


def assert_diagnosis(diagnosis: Any, curves: Any) -> None:
    import json

    import numpy as np

    from fitdoc.diagnosis.rules.registry import get_rule
    from fitdoc.report.jsonout import diagnoses_to_json
    from fitdoc.verdict import Diagnosis, Verdict

    assert isinstance(diagnosis, Diagnosis)
    assert isinstance(diagnosis.verdict, Verdict)
    assert 0.0 <= diagnosis.confidence <= 1.0
    # A history that cannot support a verdict gets `inconclusive`, not a guess.
    cannot_judge = (
        not curves.has_validation
        or len(curves) < get_rule("FD002").thresholds["min_epochs"]
        or (curves.train is not None and np.isinf(curves.train).any())
        or np.isinf(curves.val).any()
    )
    if cannot_judge:
        assert diagnosis.verdict is Verdict.INCONCLUSIVE, (diagnosis.verdict, diagnosis.summary)
    # The CI-facing JSON is strict JSON (no NaN), whatever the numbers were.
    json.loads(diagnoses_to_json([diagnosis]), parse_constant=lambda c: pytest.fail(f"{c} in JSON"))


@BOUNDED
@given(curves=curves_values())
def test_diagnosis_any_curves(curves: Any) -> None:
    from fitdoc.diagnosis.decide import diagnose_curves

    assert_diagnosis(diagnose_curves(curves), curves)


@BOUNDED
@given(history=csv_histories())
def test_read_then_diagnose(history: tuple[str, dict[str, Any]]) -> None:
    """The whole `diagnose` pipeline on random CSVs: Curves then a Diagnosis, or a clean error."""
    from fitdoc.diagnosis.decide import diagnose_curves

    text, options = history
    outcome = read_outcome(_write(text, "history.csv"), **options)
    if not isinstance(outcome, FitdocError):
        assert_diagnosis(diagnose_curves(outcome), outcome)


@pytest.mark.parametrize(
    "text",
    [
        "epoch,loss,mae,val_loss,val_mae\n",
        "epoch,loss,mae,val_loss,val_mae\n0,1.0,0.9,1.1,1.0\n",
        "epoch,loss,mae,val_loss,val_mae\n" + "".join(f"{e},1,1,NA,NA\n" for e in range(50)),
        "epoch,loss,mae\n" + "".join(f"{e},{1 / (e + 1)},{1 / (e + 1)}\n" for e in range(50)),
        "epoch,loss,mae,val_loss,val_mae\n" + "".join(f"{e},1,1,inf,inf\n" for e in range(50)),
        "epoch,loss,mae,val_loss,val_mae\n" + "".join(f"{e},nan,nan,nan,nan\n" for e in range(50)),
    ],
    ids=["header-only", "one-row", "val-all-NA", "no-val-column", "val-all-inf", "all-nan"],
)
def test_history_that_cannot_be_judged_is_inconclusive(tmp_path: Path, text: str) -> None:
    """Empty, one-row and validation-less histories: a clean error or `inconclusive`, never a label."""
    from fitdoc.diagnosis.decide import diagnose_curves
    from fitdoc.verdict import Verdict

    path = tmp_path / "history.csv"
    path.write_text(text)
    outcome = read_outcome(path)
    if isinstance(outcome, FitdocError):
        return
    assert diagnose_curves(outcome).verdict is Verdict.INCONCLUSIVE


def test_val_growing_1e17_fold_is_diagnosed(tmp_path: Path) -> None:
    """Found by hypothesis: a diverging val that stays finite crashed the features (exit 4)."""
    from fitdoc.diagnosis.decide import diagnose_curves

    path = tmp_path / "history.csv"
    path.write_text("epoch,mae,val_mae\n" + "".join(f"{e},1,{1 if e < 6 else 1e17}\n" for e in range(12)))
    curves = read_outcome(path)
    assert_diagnosis(diagnose_curves(curves), curves)


# ------------------------------------------------------------------ through the CLI (in process)


@st.composite
def any_history_file(draw: st.DrawFn) -> tuple[str, str]:
    import json

    if draw(st.booleans()):
        return draw(csv_histories())[0], "history.csv"
    text = json.dumps(draw(json_histories()))
    return (text[: draw(st.integers(0, len(text)))] if draw(st.booleans()) else text), "h.json"


@settings(BOUNDED, max_examples=80)
@given(
    history=any_history_file(),
    command=st.sampled_from(["diagnose", "compare"]),
    output_format=st.sampled_from(["text", "json", "markdown", "github"]),
)
def test_cli_exit_codes(history: tuple[str, str], command: str, output_format: str) -> None:
    """`fitdoc diagnose|compare` on a random history: exit 0 with a report, or 2 with one `error:` line."""
    from typer.testing import CliRunner

    from fitdoc.cli import app

    if command == "compare" and output_format == "github":
        output_format = "text"
    text, name = history
    path = _write(text, name)
    result = CliRunner().invoke(app, [command, str(path), "--format", output_format])
    assert result.exit_code in (0, 2), (result.exit_code, result.stderr)
    if result.exit_code == 2:
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and str(path) in lines[0], lines

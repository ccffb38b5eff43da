"""Config validation: every error names the file and the field, in one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from fitdoc.config import (
    Config,
    ModelOnlyConfig,
    config_to_yaml,
    json_schema,
    load_config,
    parse_overrides,
)
from fitdoc.errors import ConfigError

MINIMAL = "data:\n  synthetic: founding\n"


def write(tmp_path: Path, text: str, name: str = "c.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def error_of(tmp_path: Path, text: str, overrides: list[str] | None = None) -> str:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path, overrides)
    line = info.value.one_line()
    assert "\n" not in line
    assert str(path) in line
    return line


def test_defaults_fill_everything_but_data(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, MINIMAL))
    assert isinstance(config, Config)
    assert config.model.hidden_layers == 5
    assert config.model.units == 64
    assert config.training.epochs == 1000
    assert config.training.batch_size == 500
    assert config.training.validation_split == 0.2
    assert config.training.learning_rate == 0.001
    assert config.training.early_stopping is None
    assert config.output.dir == "runs"


@pytest.mark.parametrize(
    ("text", "value"),
    [("1e-4", 1e-4), ("1e-05", 1e-5), ("0.001", 0.001), ("'1E-3'", 1e-3), ("0", 0.0)],
)
def test_numbers_read_as_people_write_them(tmp_path: Path, text: str, value: float) -> None:
    config = load_config(write(tmp_path, MINIMAL + f"model:\n  l2: {text}\n"))
    assert config.model.l2 == pytest.approx(value)


def test_integer_in_exponent_form(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, MINIMAL + "training:\n  epochs: 1e3\n"))
    assert config.training.epochs == 1000


@pytest.mark.parametrize(
    ("text", "field", "words"),
    [
        ("training:\n  epochs: many\n", "training.epochs", "expected a whole number"),
        ("training:\n  epochs: 0\n", "training.epochs", "must be at least 1 (got 0)"),
        ("training:\n  epochs: 2.5\n", "training.epochs", "expected a whole number (got 2.5)"),
        ("training:\n  learning_rate: 0\n", "training.learning_rate", "must be above 0"),
        ("training:\n  learning_rate: -1e-3\n", "training.learning_rate", "must be above 0"),
        ("training:\n  validation_split: 1.0\n", "training.validation_split", "must be below 1"),
        ("training:\n  validation_split: 0\n", "training.validation_split", "must be above 0"),
        ("model:\n  dropout: 1.0\n", "model.dropout", "must be below 1"),
        ("model:\n  dropout: -0.1\n", "model.dropout", "must be at least 0"),
        ("model:\n  l2: -1\n", "model.l2", "must be at least 0"),
        ("model:\n  activation: relux\n", "model.activation", "did you mean 'relu'?"),
        ("training:\n  optimizer: sgd\n", "training.optimizer", "expected one of: adam (got 'sgd')"),
        ("training:\n  shuffle: maybe\n", "training.shuffle", "expected true or false"),
        ("model:\n  units: many\n", "model.units", "expected a whole number (got 'many')"),
        ("model:\n", "model", "empty section; give some of its keys (hidden_layers, units"),
        ("training:\n  early_stopping: 5\n", "training.early_stopping", "expected a section of keys"),
        ("name: ''\n", "name", "must not be empty"),
    ],
)
def test_out_of_range_values_name_the_field(tmp_path: Path, text: str, field: str, words: str) -> None:
    line = error_of(tmp_path, MINIMAL + text)
    assert f": {field}:" in line
    assert words in line


@pytest.mark.parametrize(
    ("text", "field", "suggestion"),
    [
        ("model:\n  l2s: 0.1\n", "model.l2s", "l2"),
        ("modle:\n  l2: 0.1\n", "modle", "model"),
        ("training:\n  epoch: 3\n", "training.epoch", "epochs"),
        ("training:\n  early_stopping:\n    patiense: 3\n", "training.early_stopping.patiense", "patience"),
    ],
)
def test_unknown_keys_say_did_you_mean(tmp_path: Path, text: str, field: str, suggestion: str) -> None:
    line = error_of(tmp_path, MINIMAL + text)
    assert f": {field}: unknown key; did you mean '{suggestion}'?" in line


@pytest.mark.parametrize(("text", "field"), [("Model:\n", "Model"), ("model:\n  Units: 4\n", "model.Units")])
def test_a_capitalized_unknown_key_is_named(tmp_path: Path, text: str, field: str) -> None:
    # Capitalized parts of pydantic's error paths are usually union branch names (dropped);
    # an unknown key is not one of them, even capitalized.
    assert f": {field}: unknown key" in error_of(tmp_path, MINIMAL + text)


def test_data_source_is_required_and_exclusive(tmp_path: Path) -> None:
    assert "data: missing; give data.synthetic or data.path" in error_of(tmp_path, "model:\n  l2: 0\n")
    line = error_of(tmp_path, "data:\n  synthetic: founding\n  path: x.csv\n  target: y\n")
    assert "exactly one of" in line
    assert "`target` is required" in error_of(tmp_path, "data:\n  path: x.csv\n")


def test_python_tags_are_refused(tmp_path: Path) -> None:
    line = error_of(tmp_path, "name: !!python/object/apply:os.system ['echo hacked']\n" + MINIMAL)
    assert "invalid YAML" in line


@pytest.mark.parametrize("text", ["", "- a\n- b\n", "just a string\n", "data: [\n"])
def test_unusable_yaml(tmp_path: Path, text: str) -> None:
    error_of(tmp_path, text)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "nope.yaml")


def test_set_overrides(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL)
    config = load_config(path, ["training.epochs=50", "model.l2=1e-4", "name=x"])
    assert config.training.epochs == 50
    assert config.model.l2 == pytest.approx(1e-4)
    assert config.name == "x"
    config = load_config(path, ["training.early_stopping={patience: 5}"])
    assert config.training.early_stopping is not None
    assert config.training.early_stopping.patience == 5


@pytest.mark.parametrize(
    ("override", "words"),
    [
        ("training.epoch=3", "did you mean 'epochs'"),
        ("training.epochs", "expected KEY=VALUE"),
        ("training.epochs=many", "expected a whole number (got 'many')"),
    ],
)
def test_bad_overrides(tmp_path: Path, override: str, words: str) -> None:
    line = error_of(tmp_path, MINIMAL, [override])
    assert words in line


def test_parse_overrides_reads_yaml_values() -> None:
    assert parse_overrides(["a.b=1", "c=0.5", "d=true", "e=[1, 2]", "f=text"]) == {
        "a.b": 1,
        "c": 0.5,
        "d": True,
        "e": [1, 2],
        "f": "text",
    }


def test_data_path_resolved_relative_to_config(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    path = write(tmp_path / "sub", "data:\n  path: d.csv\n  target: y\n")
    config = load_config(path)
    assert Path(config.data.path) == (tmp_path / "sub" / "d.csv").resolve()


def test_model_only_config_ignores_data(tmp_path: Path) -> None:
    path = write(tmp_path, "data:\n  path: /no/such/file.csv\n  target: y\nmodel:\n  l2: '1e-05'\n")
    config = load_config(path, model_only=True)
    assert isinstance(config, ModelOnlyConfig)
    assert config.model.l2 == pytest.approx(1e-5)
    assert load_config(write(tmp_path, "model:\n  dropout: 0.2\n"), model_only=True).model.dropout == 0.2
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, "model:\n  units: 0\n"), model_only=True)
    assert ": model.units: " in info.value.one_line()


def test_with_changes_validates() -> None:
    config = Config.model_validate({"data": {"synthetic": "founding"}})
    assert config.with_changes({"model.l2": 1e-4}).model.l2 == pytest.approx(1e-4)
    assert config.model.l2 == 0.0  # the original is untouched
    with pytest.raises(ValueError):
        config.with_changes({"model.dropout": 1.5})


def test_resolved_config_round_trips(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, MINIMAL + "model:\n  l2: 1e-4\n"))
    again = load_config(write(tmp_path, config_to_yaml(config), "again.yaml"))
    assert again == config


def test_json_schema_documents_fields() -> None:
    schema = json_schema()
    model = schema["$defs"]["ModelConfig"]
    assert model["additionalProperties"] is False
    assert "description" in model["properties"]["l2"]


def test_model_only_config_round_trips_its_unread_data_section(tmp_path: Path) -> None:
    # Found by hypothesis: JSON-mode dumping turned `.inf` in the unread data section into null.
    path = write(tmp_path, "data:\n  synthetic: {'': .inf}\nmodel:\n  l2: 1e-3\n")
    config = load_config(path, model_only=True)
    again = load_config(write(tmp_path, config_to_yaml(config), "again.yaml"), model_only=True)
    assert again == config

"""The YAML config: schema, defaults, `--set` overrides, loading and saving.

Strict where users err (unknown keys, out-of-range values, `epochs: many`),
lenient where YAML 1.1 is unhelpful: PyYAML reads `l2: 1e-4` as a string, and
fitdoc reads it as the number a person meant.
"""

from __future__ import annotations

import copy
import difflib
import re
import reprlib
import textwrap
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, get_args, get_origin

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from fitdoc.errors import ConfigError, did_you_mean

# Echo a bad value briefly: YAML aliases can make a small file a huge value (a
# "billion laughs"), and a full repr of it would take minutes and gigabytes.
_SHORT_REPR = reprlib.Repr()
_SHORT_REPR.maxlevel = 2
_SHORT_REPR.maxlist = _SHORT_REPR.maxtuple = _SHORT_REPR.maxdict = _SHORT_REPR.maxset = 4
_SHORT_REPR.maxstring = _SHORT_REPR.maxother = 60

_FLOAT_TEXT = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def _number_from_text(value: Any) -> Any:
    """`"1e-4"` -> 1e-4 and `"1e3"` -> 1000 (for int fields); anything else unchanged."""
    if isinstance(value, str) and _FLOAT_TEXT.match(value.strip()):
        return float(value)
    return value


def _int_from_text(value: Any) -> Any:
    value = _number_from_text(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


Float = Annotated[float, BeforeValidator(_number_from_text)]
Int = Annotated[int, BeforeValidator(_int_from_text)]


class _Section(BaseModel):
    # allow_inf_nan=False: `l2: .inf` or `1e999` is a mistake to name now, not a NaN loss later.
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


_Top = TypeVar("_Top", bound="_TopLevel")


class _TopLevel(_Section):
    """`get("model.l2")` and `with_changes({"model.l2": 1e-4})` for the top-level configs."""

    def get(self, dotted_key: str) -> Any:
        node: Any = self
        for part in dotted_key.split("."):
            node = getattr(node, part)
        return node

    def with_changes(self: _Top, changes: dict[str, Any]) -> _Top:
        """A new, validated config of the same kind with the changes applied."""
        raw = self.model_dump(mode="python")
        for key, value in changes.items():
            _set_dotted(raw, key, value)
        return type(self).model_validate(raw)


SYNTHETIC_DATASETS = ("founding", "friedman1", "wave")


class DataConfig(_Section):
    synthetic: Literal["founding", "friedman1", "wave"] | None = Field(
        None, description="A built-in seeded generator (no downloads)."
    )
    path: str | None = Field(None, description="A CSV or Parquet file (relative to the config file).")
    target: str | list[str] | None = Field(
        None, description="With `path`: the target column, or a list of columns (several outputs)."
    )
    features: list[str] | None = Field(
        None, description="With `path`: feature columns; default every other numeric column."
    )
    n_samples: Int = Field(5000, ge=10, description="With `synthetic`: number of rows.")
    noise: Float = Field(0.002, ge=0, description="With `synthetic`: std of the noise added to the target.")
    test_split: Float = Field(
        0.0,
        ge=0,
        lt=1,
        description="Fraction held out before training as a test set; adds a `test_mae` column "
        "(never read by the rules).",
    )
    heldout_samples: Int = Field(
        0,
        ge=0,
        description="With `synthetic` and no `test_split`: rows of a separate fresh sample scored "
        "each epoch as `test_mae` (never read by the rules); 0 adds no column.",
    )

    @model_validator(mode="after")
    def _one_source(self) -> DataConfig:
        if (self.synthetic is None) == (self.path is None):
            raise ValueError("give exactly one of `synthetic` or `path`")
        if self.path is not None and self.target is None:
            raise ValueError("`target` is required with `path`")
        if self.heldout_samples and self.path is not None:
            raise ValueError(
                "`heldout_samples` draws fresh rows of a `synthetic` dataset; with `path` use `test_split`"
            )
        if self.heldout_samples and self.test_split > 0:
            raise ValueError("give `test_split` or `heldout_samples`, not both")
        return self


class ModelConfig(_Section):
    hidden_layers: Int = Field(5, ge=1, le=64, description="Number of hidden Dense layers.")
    units: Int = Field(64, ge=1, le=65536, description="Units in each hidden layer.")
    activation: Literal["relu", "tanh", "elu", "selu", "gelu", "sigmoid", "linear"] = Field(
        "relu", description="Activation of the hidden layers."
    )
    l2: Float = Field(0.0, ge=0, description="Kernel L2 factor on every hidden Dense layer.")
    l1: Float = Field(0.0, ge=0, description="Kernel L1 factor on every hidden Dense layer.")
    dropout: Float = Field(0.0, ge=0, lt=1, description="Dropout rate between hidden layers.")


class EarlyStoppingConfig(_Section):
    patience: Int = Field(50, ge=1, description="Epochs without val MAE improvement before stopping.")
    min_delta: Float = Field(0.0, ge=0, description="Smallest change of val MAE that counts.")
    start_from_epoch: Int = Field(0, ge=0, description="Epochs to wait before monitoring.")


class TrainingConfig(_Section):
    optimizer: Literal["adam"] = Field("adam", description="Optimizer (Adam, as in the founding case).")
    learning_rate: Float = Field(0.001, gt=0, description="Adam learning rate.")
    loss: Literal["mse"] = Field("mse", description="Training loss.")
    epochs: Int = Field(1000, ge=1, le=1_000_000, description="Epochs to train.")
    batch_size: Int = Field(500, ge=1, description="Batch size.")
    validation_split: Float = Field(
        0.2, gt=0, lt=1, description="Last fraction of the data used for validation, as in Keras."
    )
    shuffle: bool = Field(True, description="Shuffle the training part every epoch.")
    early_stopping: EarlyStoppingConfig | None = Field(
        None, description="Stop when val MAE stops improving; restores the best weights."
    )
    engine: Literal["fast", "keras"] = Field(
        "fast",
        description=(
            "`fast`: compiled whole-epoch loop that draws a fresh row order every epoch; "
            "`keras`: plain model.fit (reference), which after Keras' set_random_seed visits the "
            "rows in the same order every epoch."
        ),
    )


class OutputConfig(_Section):
    dir: str = Field("runs", description="Where run directories are created (relative to the working dir).")


class Config(_TopLevel):
    name: str = Field("run", min_length=1, max_length=100, description="Names the run directory.")
    seed: Int = Field(42, ge=0, le=2**31 - 1, description="Seed for data, weights and shuffling.")
    data: DataConfig = Field(description="Where the data comes from (required).")
    model: ModelConfig = Field(default_factory=ModelConfig)
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    output: OutputConfig = Field(default_factory=OutputConfig)


class ModelOnlyConfig(_TopLevel):
    """What `diagnose --config` needs: the data section may be absent or point nowhere."""

    name: str = "run"
    seed: Int = 42
    data: dict[str, Any] | None = None
    model: ModelConfig = Field(default_factory=ModelConfig)
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    output: OutputConfig = Field(default_factory=OutputConfig)


AnyConfig = Config | ModelOnlyConfig


# ---------------------------------------------------------------- loading


def upper_bound(section: type[BaseModel], name: str) -> int:
    """The schema's inclusive upper bound of an integer field (`le=`), so code that
    grows a value (the suggestion ladder) stops where validation would refuse it."""
    for item in section.model_fields[name].metadata:
        bound = getattr(item, "le", None)
        if bound is not None:
            return int(bound)
    raise LookupError(f"{section.__name__}.{name} has no upper bound")


def parse_overrides(overrides: list[str] | None, path: object | None = None) -> dict[str, Any]:
    """`["training.epochs=50"]` -> `{"training.epochs": 50}` (values read as YAML)."""
    parsed: dict[str, Any] = {}
    for item in overrides or []:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"expected KEY=VALUE, got {item!r}", path=path, field="--set")
        try:
            parsed[key.strip()] = yaml.safe_load(text) if text.strip() else ""
        except yaml.YAMLError as exc:
            raise ConfigError(
                f"value {text!r} is not valid YAML ({_yaml_problem(exc, text)})",
                path=path,
                field=f"--set {key}",
            ) from None
    return parsed


def load_yaml(path: Path) -> dict[str, Any]:
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ConfigError("file not found", path=path) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read: {exc}", path=path) from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid YAML: {_yaml_problem(exc, text)}", path=path) from None
    if raw is None:
        raise ConfigError(f"empty config; {DATA_HINT}", path=path, field="data")
    if not isinstance(raw, dict):
        raise ConfigError(f"expected a mapping of sections, got {type(raw).__name__}", path=path)
    return raw


def load_config(path: Path, overrides: list[str] | None = None, *, model_only: bool = False) -> AnyConfig:
    """Read, override and validate a config file. Raises ConfigError (one line)."""
    raw = load_yaml(path)
    for key, value in parse_overrides(overrides, path).items():
        _check_override_key(key, path)
        _set_dotted(raw, key, value)
    return validate_config(raw, path=path, model_only=model_only)


def validate_config(raw: dict[str, Any], *, path: object = "<config>", model_only: bool = False) -> AnyConfig:
    schema = ModelOnlyConfig if model_only else Config
    try:
        config = schema.model_validate(raw)
    except ValidationError as exc:
        raise _config_error(exc, path, schema) from None
    if isinstance(config, Config) and config.data.path is not None and path not in (None, "<config>"):
        data_path = Path(config.data.path).expanduser()
        if not data_path.is_absolute():
            data_path = Path(str(path)).resolve().parent / data_path
        config.data.path = str(data_path)
    return config


def config_to_yaml(config: BaseModel) -> str:
    # Python mode, not JSON mode: a model-only config keeps its unread data section as
    # YAML gave it (inf, dates...), and JSON mode would turn those into null or text.
    return yaml.safe_dump(config.model_dump(mode="python"), sort_keys=False)


def data_problem(config: AnyConfig) -> str | None:
    """Why `config` could not be trained as it stands (its data section), or None.

    A full `Config` always has a usable data section; a model-only one (what
    `diagnose --config` reads) may have none, or one that does not validate.
    """
    if isinstance(config, Config):
        return None
    if config.data is None:
        return f"no data section is known; {DATA_HINT}"
    try:
        DataConfig.model_validate(config.data)
    except ValidationError as exc:
        error = _config_error(exc, None, DataConfig)
        where = "data" if error.field in (None, "(top level)") else f"data.{error.field}"
        return f"{where}: {error.message}"
    return None


def known_config_yaml(config: AnyConfig, changes: dict[str, Any], header: str) -> str:
    """Only the keys the user's file gave for `config` (fitdoc's defaults not filled in),
    with `changes` applied, as YAML under a `header` comment: a file that says it is
    incomplete rather than one that looks complete and is not."""
    raw = config.model_dump(mode="python", exclude_unset=True)
    if raw.get("data") is None:
        raw.pop("data", None)
    for key, value in changes.items():
        _set_dotted(raw, key, value)
    lines = [part for line in header.splitlines() for part in textwrap.wrap(line, 86) or [""]]
    ordered = {key: raw[key] for key in Config.model_fields if key in raw}
    return "".join(f"# {line}".rstrip() + "\n" for line in lines) + yaml.safe_dump(ordered, sort_keys=False)


def json_schema() -> dict[str, Any]:
    return Config.model_json_schema()


# ---------------------------------------------------------------- helpers


def _set_dotted(raw: dict[str, Any], key: str, value: Any) -> None:
    node = raw
    parts = key.split(".")
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[parts[-1]] = copy.deepcopy(value)


def _check_override_key(key: str, path: object) -> None:
    model: type[BaseModel] | None = Config
    for part in key.split("."):
        fields = model.model_fields if model is not None else {}
        if part not in fields:
            hint = did_you_mean(part, list(fields))
            raise ConfigError(f"unknown key{hint}", path=path, field=f"--set {key}")
        annotation = fields[part].annotation
        model = _section_type(annotation)


def _section_type(annotation: Any) -> type[BaseModel] | None:
    candidates = getattr(annotation, "__args__", None) or (annotation,)
    for candidate in candidates:
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def _model_at(schema: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    model: type[BaseModel] | None = schema
    for part in loc:
        if model is None or not isinstance(part, str) or part not in model.model_fields:
            return None
        model = _section_type(model.model_fields[part].annotation)
    return model


DATA_HINT = (
    "give data.synthetic or data.path (data.synthetic: a built-in dataset, one of "
    + ", ".join(SYNTHETIC_DATASETS)
    + "; data.path: a CSV or Parquet file, with data.target)"
)


def _config_error(exc: ValidationError, path: object, schema: type[BaseModel]) -> ConfigError:
    """Every problem pydantic found, each with its dotted field (the CLI prints one a line),
    in fitdoc's words: pydantic's own wording ("Input should be a valid dictionary or
    instance of DataConfig") never reaches a user."""
    problems: dict[str, list[tuple[str, str]]] = {}
    for error in exc.errors():
        field, message = _problem(error, schema)
        problems.setdefault(field, []).append((error["type"], message))
    lines = [(field, _one_message(found)) for field, found in problems.items()]
    (field, message), more = lines[0], lines[1:]
    return ConfigError(message, path=path, field=field, more=more)


def _one_message(found: list[tuple[str, str]]) -> str:
    """One field, one line: the branches of a union (`target`: text or a list) are said together."""
    if len(found) == 1:
        return found[0][1]
    wants = [m for kind, m in found if kind in _TYPE_WORDS]
    if len(wants) == len(found):
        got = wants[0].rsplit(" (got ", 1)[1] if " (got " in wants[0] else ""
        expected = " or ".join(m.split(" (got ")[0].removeprefix("expected ") for m in wants)
        return f"expected {expected}" + (f" (got {got}" if got else "")
    return "; ".join(m for _, m in found)


# What each pydantic type error expects, in words.
_TYPE_WORDS = {
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "finite_number": "a finite number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "string_type": "text",
    "list_type": "a list",
}
_BOUNDS = {
    "greater_than_equal": ("ge", "at least"),
    "greater_than": ("gt", "above"),
    "less_than_equal": ("le", "at most"),
    "less_than": ("lt", "below"),
}


def _clean_loc(schema: type[BaseModel], loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """The dotted path a user wrote: without pydantic's union branch names
    (`EarlyStoppingConfig`, `str`, `list[str]`), list indexes kept."""
    model: type[BaseModel] | None = schema
    out: list[Any] = []
    for part in loc:
        if isinstance(part, int):
            out.append(part)
        elif model is not None and part in model.model_fields:
            out.append(part)
            model = _section_type(model.model_fields[part].annotation)
        elif model is not None and not part[:1].isupper():
            out.append(part)  # an unknown key
            model = None
    return tuple(out)


def _problem(error: Any, schema: type[BaseModel]) -> tuple[str, str]:
    raw = tuple(error["loc"])
    kind = error["type"]
    # An unknown key is always the last part, even one that looks like a union branch name.
    loc = _clean_loc(schema, raw[:-1]) + raw[-1:] if kind == "extra_forbidden" else _clean_loc(schema, raw)
    dotted = ".".join(str(p) for p in loc) or "(top level)"
    ctx = error.get("ctx") or {}
    got = f" (got {_SHORT_REPR.repr(error['input'])})" if "input" in error else ""
    section = _model_at(schema, loc)
    if kind == "extra_forbidden":
        parent = _model_at(schema, loc[:-1])
        options = list(parent.model_fields) if parent is not None else []
        message = f"unknown key{did_you_mean(str(loc[-1]), options)}"
    elif loc == ("data",) and (kind == "missing" or error.get("input") is None):
        message = f"missing; {DATA_HINT}"
    elif kind == "missing":
        message = "required field is missing"
    elif kind in ("model_type", "model_attributes_type", "dict_type") and section is not None:
        keys = ", ".join(section.model_fields)
        if error.get("input") is None:
            message = f"empty section; give some of its keys ({keys}) or remove the line"
        else:
            message = f"expected a section of keys ({keys}){got}"
    elif kind in ("model_type", "model_attributes_type", "dict_type"):
        message = f"expected a mapping of keys{got}"
    elif kind in _TYPE_WORDS:
        message = f"expected {_TYPE_WORDS[kind]}{got}"
    elif kind in _BOUNDS:
        bound, words = _BOUNDS[kind]
        limit = ctx.get(bound)
        limit_text = f"{limit:g}" if isinstance(limit, float) else str(limit)
        message = f"must be {words} {limit_text}{got}"
    elif kind == "literal_error":
        message = _literal_problem(schema, loc, error.get("input"))
    elif kind == "string_too_short":
        size = ctx.get("min_length", 1)
        message = "must not be empty" if size == 1 else f"must have at least {size} characters{got}"
    elif kind == "string_too_long":
        size = len(error["input"]) if isinstance(error.get("input"), str) else "more"
        message = f"must have at most {ctx.get('max_length')} characters (got {size})"
    elif kind == "value_error":
        message = str(error["msg"]).removeprefix("Value error, ") + got
    else:  # pragma: no cover  (a pydantic error type fitdoc's fields cannot raise)
        message = f"invalid value{got}"
    return dotted, message


def _literal_problem(schema: type[BaseModel], loc: tuple[Any, ...], value: Any) -> str:
    parent = _model_at(schema, loc[:-1])
    choices: list[str] = []
    if parent is not None and loc and loc[-1] in parent.model_fields:
        choices = _literal_choices(parent.model_fields[loc[-1]].annotation)
    got = _SHORT_REPR.repr(value)
    close = difflib.get_close_matches(str(value), choices, n=1, cutoff=0.6)
    if close:
        return f"unknown value {got}; did you mean '{close[0]}'?"
    return f"expected one of: {', '.join(choices)} (got {got})"


def _literal_choices(annotation: Any) -> list[str]:
    if get_origin(annotation) is Literal:
        return [str(a) for a in get_args(annotation)]
    return [c for arg in get_args(annotation) for c in _literal_choices(arg)]


def _yaml_problem(exc: yaml.YAMLError, text: str = "") -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    if mark is not None and _is_tab(text, mark.line, mark.column):
        return (
            f"a tab at line {mark.line + 1}, column {mark.column + 1}; "
            "YAML forbids tabs for indentation and between tokens: use spaces"
        )
    if mark is not None:
        return f"{problem} at line {mark.line + 1}, column {mark.column + 1}"
    return str(problem)


def _is_tab(text: str, line: int, column: int) -> bool:
    lines = text.splitlines()
    return line < len(lines) and column < len(lines[line]) and lines[line][column] == "\t"

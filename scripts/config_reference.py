"""Print the config reference (a Markdown table) from the pydantic schema.

The README's "Config reference" section is this script's output, so the docs
cannot drift from the validator: `python scripts/config_reference.py`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from fitdoc.config import Config, DataConfig, EarlyStoppingConfig, ModelConfig, OutputConfig, TrainingConfig

SECTIONS: list[tuple[str, type[BaseModel]]] = [
    ("", Config),
    ("data", DataConfig),
    ("model", ModelConfig),
    ("training", TrainingConfig),
    ("training.early_stopping", EarlyStoppingConfig),
    ("output", OutputConfig),
]
NESTED = {"data", "model", "training", "output", "early_stopping"}


def _default(field: Any) -> str:
    if field.default is PydanticUndefined:
        return "required" if field.default_factory is None else "(section)"
    return "`null`" if field.default is None else f"`{field.default}`"


def _limits(field: Any) -> str:
    parts = []
    choices = [a for a in getattr(field.annotation, "__args__", ()) if isinstance(a, str)]
    if getattr(field.annotation, "__origin__", None) is Literal:
        parts.append(" / ".join(f"`{c}`" for c in choices))
    for arg in getattr(field.annotation, "__args__", ()):
        if getattr(arg, "__origin__", None) is Literal:
            parts.append(" / ".join(f"`{c}`" for c in arg.__args__))
    for item in field.metadata:
        for name, symbol in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")):
            value = getattr(item, name, None)
            if value is not None:
                parts.append(f"{symbol} {value}")
    return ", ".join(parts)


def reference() -> str:
    lines = ["| key | default | allowed | meaning |", "| --- | --- | --- | --- |"]
    for prefix, model in SECTIONS:
        for name, field in model.model_fields.items():
            if name in NESTED and model is not EarlyStoppingConfig and name != "early_stopping":
                continue
            key = f"{prefix}.{name}" if prefix else name
            lines.append(f"| `{key}` | {_default(field)} | {_limits(field)} | {field.description or ''} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(reference())

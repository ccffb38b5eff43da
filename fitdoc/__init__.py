"""fitdoc: a learning-curve doctor for dense regression nets (and any history file)."""

from __future__ import annotations

__version__ = "0.1.0"

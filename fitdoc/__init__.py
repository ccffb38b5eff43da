"""fitdoc: a learning-curve doctor for dense regression nets (and any history file)."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["Diagnosis", "FitdocCallback", "__version__", "diagnose"]


def __getattr__(name: str) -> object:
    # Lazy, so `import fitdoc` stays light: `FitdocCallback` alone pulls in Keras.
    if name == "diagnose":
        from fitdoc.api import diagnose

        return diagnose
    if name == "Diagnosis":
        from fitdoc.verdict import Diagnosis

        return Diagnosis
    if name == "FitdocCallback":
        from fitdoc.keras import FitdocCallback

        return FitdocCallback
    raise AttributeError(f"module 'fitdoc' has no attribute {name!r}")

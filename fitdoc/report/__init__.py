"""Renderers: rich text, JSON, Markdown, GitHub annotations, comparisons and plots.

Each submodule turns values (`Diagnosis`, `Comparison`, `Run`) into one
output format; none of them computes a diagnosis. `plot` imports matplotlib
only when called.
"""

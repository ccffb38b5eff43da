"""The rule engine's rules: one module per family, registered in `registry`."""

from fitdoc.diagnosis.rules.base import Rule, Threshold, Vote
from fitdoc.diagnosis.rules.registry import all_rules, get_rule, load_threshold_overrides

__all__ = ["Rule", "Threshold", "Vote", "all_rules", "get_rule", "load_threshold_overrides"]

"""Diagnosis: curve features, rules, the combiner, the decision (curves or measured) and the suggestion ladder."""

"""History readers: every supported file format becomes one `Curves` value.

The public entry points live in `fitdoc.history.load`; the modules here do one job
each: `text` decodes bytes and splits CSV text, `names` understands column
names, `select` picks the series and builds `Curves`, `tabular` and `jsonfmt`
turn each file format into named numeric columns, `steps` pairs step-based
evaluations with the train logs before them, `tbevents`, `mlflowrun` and
`wandbrun` read TensorBoard, MLflow and W&B runs, and `params` maps a run's
logged params to the knobs the ladder turns.
"""

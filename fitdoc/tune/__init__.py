"""`fitdoc tune`: train, diagnose, take the next step on the ladder, repeat.

The decisions live in `fitdoc.tune.plan` (pure, tested over scripted verdicts),
which walks the one ladder of `fitdoc.diagnosis.suggest`;
this module runs them: each trial is an ordinary run directory under
`<tune dir>/trials/`, and after every trial `tune.json` and `tune.csv` are
rewritten atomically, so an interrupted tune resumes (`--resume`) without
repeating a finished trial. At the end the best trial by validation MAE is
written out as `best.yaml`, a config to train as it is.

Where trials train is a runner's business (`loop.TrialRunner`): `local`
(this process, or `fitdoc train` processes with `parallel` > 1) or `ray`
(`ray_backend`: Ray tasks on a local instance or a cluster, their run
directories sent back to this directory). The tune directory is the same
either way.

Layout of a tune directory:

    tune.json    base config, every trial (settings, change, why, verdict, val MAE), best, stop reason
    tune.csv     the same trials as one table
    best.yaml    the best trial's config (the base config's name and output.dir)
    configs/     trial-NN.yaml, the config each trial trained
    trials/      the run directories
    trials.png   all trials' curves (with --plot)
"""

from fitdoc.tune.loop import TuneResult, run_tune

__all__ = ["TuneResult", "run_tune"]

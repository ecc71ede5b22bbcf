"""A search trial's pruning: its validation metric, reported to its Optuna trial after each validation.

Used by the tpe search workers (framework/executors/study.py) when `search.pruner` is set: the study's
pruner (median or ASHA-style successive halving) compares the value with the other trials' at the same
epoch, and a trial it prunes stops with TrialPruned, which `run.execute` records as `pruned`. Optuna's own
Lightning callback lives in the optuna-integration package; this one is a few lines and needs only optuna.
"""

from __future__ import annotations

import math
from typing import Any

from lightning.pytorch.callbacks import Callback

from framework.errors import TrialPruned


class PruningReport(Callback):
    """After each validation: report `metric` at the epoch to `trial` (an optuna.Trial), stop if pruned."""

    def __init__(self, trial: Any, metric: str, reported: set[int] | None = None):
        # reported: the epochs an earlier attempt of this trial reported (a resumed trial reports from there)
        self.trial, self.metric, self.reported = trial, metric, set(reported or ())

    def on_validation_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking:
            return
        value = trainer.callback_metrics.get(self.metric)
        if value is None or not math.isfinite(float(value)):
            return  # a non-finite loss is the divergence check's to stop
        epoch = trainer.current_epoch
        if epoch not in self.reported:  # Optuna keeps a step's first value and warns about a second
            self.trial.report(float(value), epoch)
            self.reported.add(epoch)
        if self.trial.should_prune():
            raise TrialPruned(f"pruned by the search's pruner at epoch {epoch}: {self.metric}={float(value):.4g}")

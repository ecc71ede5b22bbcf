"""`framework run ... --sanity`: before a long grid, check that each task x optimizer can learn at all.

For the first run of each task x optimizer pair, the first `BATCHES` training batches are trained on
over and over for `STEPS` steps (overfitting them, on one device, with the run's own optimizer,
hyperparameters, precision and clipping). The check passes when the mean loss of the last pass over the
batches is at least `DROP` below that of the first pass. A failure points at broken wiring (a loss not
connected to the parameters, a frozen network, labels that do not match the inputs, a learning rate of
0) minutes before a grid would waste hours on it. Nothing is written to the output folder.

The check trains with the run's own schedule over its STEPS steps: a warm-up of STEPS steps or more
(`schedule.warmup_steps`) takes the whole check and fails it with the schedule's error, and one far above
a few steps keeps the learning rate near 0 and fails it too: sweep such values after checking with a
shorter warm-up.
"""

from __future__ import annotations

import itertools
import math
import tempfile
import warnings
from dataclasses import dataclass

from framework.config import Node
from framework.config.grid import RunSpec
from framework.config.registry import Registry
from framework.errors import one_line

BATCHES = 2  # a few batches: small enough to memorise in a few dozen steps
STEPS = 40  # 20 passes over them
DROP = 0.1  # the loss must fall by at least 10 %


@dataclass
class SanityResult:
    spec: RunSpec
    first: float  # mean loss of the first pass over the batches
    last: float  # mean loss of the last pass
    error: str | None = None

    @property
    def passed(self) -> bool:
        return self.error is None and math.isfinite(self.last) and self.last <= (1 - DROP) * self.first

    def describe(self) -> str:
        if self.error:
            return f"FAILED: {self.error}"
        verdict = "ok" if self.passed else f"FAILED: the loss did not fall by {DROP:.0%} (check the loss, the labels and the learning rate)"
        return f"loss {self.first:.4g} -> {self.last:.4g} in {STEPS} steps on {BATCHES} batches: {verdict}"


def check(spec: RunSpec, registry: Registry, batches: int = BATCHES, steps: int = STEPS) -> SanityResult:
    """Overfit the first `batches` training batches of `spec`'s task for `steps` steps."""
    import lightning.pytorch as pl
    from torch.utils.data import DataLoader

    from framework.training.callbacks import LossRecorder
    from framework.training.optimizer_modes import OptimizerModes
    from framework.training.run import load_task, quiet_lightning
    from framework.training.trainer_options import trainer_arguments

    quiet_lightning()
    warnings.filterwarnings("ignore", message=".*defined a `validation_step` but have no `val_dataloader`.*")
    recorder = LossRecorder()
    losses = recorder.losses

    with tempfile.TemporaryDirectory(prefix="framework-sanity-") as tmp:
        engine = spec.config["engine"]
        config = Node({**spec.config, "engine": {**engine, "devices": 1, "nodes": 1}, "run": {"id": spec.run_id, "dir": tmp}})
        try:
            model, datamodule = load_task(config, registry)
            datamodule.prepare_data()
            datamodule.setup("fit")
            fixed = list(itertools.islice(iter(datamodule.train_dataloader()), batches))
            if not fixed:
                return SanityResult(spec, math.nan, math.nan, "the training loader yields no batch")
            options = trainer_arguments(config.engine)  # devices=1: set in the config above
            trainer = pl.Trainer(
                **options, max_steps=steps, max_epochs=-1, limit_val_batches=0, num_sanity_val_steps=0,
                logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                callbacks=[recorder, OptimizerModes()], default_root_dir=tmp,  # OptimizerModes: schedule-free
            )
            # batch_size=None: the loader hands out the stored batches as they are, in order, every epoch
            trainer.fit(model, train_dataloaders=DataLoader(fixed, batch_size=None))
        except Exception as exc:  # a sanity check reports what broke instead of stopping at the first task
            return SanityResult(spec, math.nan, math.nan, one_line(exc))
    # With accumulation a step takes several of the stored batches; compare whole passes either way.
    window = max(1, min(len(fixed), len(losses) // 2))
    first, last = sum(losses[:window]) / window, sum(losses[-window:]) / window
    if not all(math.isfinite(v) for v in losses):
        return SanityResult(spec, first, last, "the loss became NaN or infinite")
    return SanityResult(spec, first, last)


def check_grid(runs: list[RunSpec], registry: Registry, report=print) -> bool:
    """Check the first run of each task x optimizer pair; report one line each; True when all pass."""
    firsts: dict[tuple[str, str], RunSpec] = {}
    for spec in runs:
        firsts.setdefault((spec.task, spec.optimizer), spec)
    results = []
    for (task, optimizer), spec in firsts.items():
        result = check(spec, registry)
        report(f"sanity {task} x {optimizer}: {result.describe()}")
        results.append(result)
    failed = [r for r in results if not r.passed]
    if failed:
        report(f"sanity check failed for {len(failed)} of {len(results)} task x optimizer pairs; the grid was not run")
    return not failed

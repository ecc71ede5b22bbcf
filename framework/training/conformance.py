"""The conformance suite: what every task x optimizer pair must do, checked on the CPU in seconds.

`framework conformance FOLDER...` runs it on the plugins of plugin folders, `framework.testing` hands the
same checks to an author's own pytest, and the repository's tests/test_conformance.py runs it on the
bundled plugins. Each plugin of a folder is paired with a bundled reference (REFERENCE_TASK,
REFERENCE_OPTIMIZER, REFERENCE_TASKS): a task with the reference optimizer, an optimizer with the reference
task, a model with the reference task of each kind it serves (`task.model.name=<model>`) and the reference
optimizer, so a failure points at the plugin under test. The checks, in order:

- contract: the up-front checks of `framework run` (framework/training/contract.py);
- step: one training step changes the parameters, logs a finite train_loss, and the groups hold every
  trainable parameter once;
- same_seed: a second build with the same seed takes a first step with the same loss;
- checkpoint: a checkpoint after that step loads with weights_only=True into a freshly built model (same
  parameters) and its optimizer state into a freshly configured optimizer;
- diverged: a NaN training loss stops the fit as diverged (the engine's DivergenceCheck).
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from framework.config import parse_overrides
from framework.config.grid import RunSpec, expand
from framework.config.registry import Registry
from framework.errors import DivergedError, FrameworkError

REFERENCE_TASK = "digits"
REFERENCE_OPTIMIZER = "adamw_baseline"
# a model plugin trains the bundled task of each kind it serves (model.auto_classes)
REFERENCE_TASKS = {"classification": "classification", "semantic_segmentation": "semantic_segmentation",
                   "object_detection": "coco_detection", "universal_segmentation": "coco_instance"}
# ... at the bundled data's size: coco_instance's defaults are the real recipe's 1024 crops (minutes a step)
REFERENCE_SIZES = {"coco_instance": ["task.crop_size=128", "task.eval_short=128", "task.eval_max_size=512"]}
CHECKS = ("contract", "step", "same_seed", "checkpoint", "diverged")
# One step on the CPU, nothing kept: the loss logged at that step, no loader processes
CHECK_OVERRIDES = ("engine.log_every_n_steps=1", "engine.data_workers=0", "engine.devices=1", "engine.accumulate_grad_batches=1")


class CheckFailed(AssertionError):
    """A conformance check that did not hold: one line per problem (pytest shows them as the failure)."""

    def __init__(self, *lines: str):
        self.lines = list(lines)
        super().__init__("\n".join(self.lines))


def folder_plugins(folder: str | Path, registry: Registry) -> list[list[str]]:
    """The names of the tasks, of the optimizers and of the models whose folders lie in plugin folder `folder`."""
    root = Path(folder).expanduser().resolve()
    return [[name for name, p in registry.plugins[kind].items() if p.path.resolve().parent.parent == root]
            for kind in ("task", "optimizer", "model")]


# (task, optimizer, model): model is "" for the task's own, else a model plugin trained as task.model.name
Pair = tuple[str, str, str]


def reference_pairs(folders: list[str | Path], registry: Registry) -> tuple[list[Pair], list[str]]:
    """(task, optimizer, model) of the plugins in `folders`, each with the bundled references; and the bad
    input found: a folder that does not exist or holds no plugin, a plugin the registry found broken."""
    pairs: list[Pair] = []
    problems: list[str] = []
    for folder in folders:
        if not Path(folder).is_dir():
            problems.append(f"{folder}: no such plugin folder (a folder holding tasks/, optimizers/ and/or models/)")
            continue
        tasks, optimizers, models = folder_plugins(folder, registry)
        if not tasks and not optimizers and not models:
            problems.append(f"{folder}: holds no plugin (expected tasks/<name>/, optimizers/<name>/ or models/<name>/ folders)")
        for kind, names in (("task", tasks), ("optimizer", optimizers), ("model", models)):
            for name in names:
                plugin = registry.plugins[kind][name]
                if not plugin.ok:
                    problems.append(f"{kind} '{name}' is broken: {plugin.problem}")
                elif kind == "task":
                    pairs.append((name, REFERENCE_OPTIMIZER, ""))
                elif kind == "optimizer":
                    pairs.append((REFERENCE_TASK, name, ""))
                else:
                    pairs += [(REFERENCE_TASKS[k], REFERENCE_OPTIMIZER, name) for k in plugin.defaults["model"]["auto_classes"]]
    return list(dict.fromkeys(pairs)), problems


def all_pairs(registry: Registry) -> list[Pair]:
    """Every task x every optimizer the registry holds (templates included: copies of them are plugins)."""
    return [(t, o, "") for t in sorted(registry.tasks) for o in sorted(registry.optimizers)
            if registry.tasks[t].ok and registry.optimizers[o].ok]


@dataclass
class PairChecks:
    """The checks of one task x optimizer pair; the first step's result is kept for the checks after it."""

    task: str
    optimizer: str
    registry: Registry
    overrides: list[str] = field(default_factory=list)
    _first: dict[str, Any] | None = None

    def spec(self, output: str, seed: int | None = None) -> RunSpec:
        seeds = [f"engine.seed={seed}"] if seed is not None else []
        # the folders under test, where a run looks for model plugins too (task.model.name)
        folders = [f"engine.plugin_paths=[{','.join(str(r) for r in self.registry.roots[1:])}]"]
        request = parse_overrides([f"tasks={self.task}", f"optimizers={self.optimizer}", f"engine.output_dir={output}",
                                   *CHECK_OVERRIDES, *folders, *self.overrides, *seeds])
        (spec,) = expand(request, self.registry)
        return spec

    def contract(self) -> None:
        from framework.training.contract import check_runs

        with tempfile.TemporaryDirectory(prefix="framework-conformance-") as tmp:
            report = check_runs([self.spec(tmp)], self.registry)
        if report.problems:
            raise CheckFailed(*report.problems)

    def first_step(self) -> dict[str, Any]:
        if self._first is None:
            with tempfile.TemporaryDirectory(prefix="framework-conformance-") as tmp:
                self._first = fit_steps(self.spec(tmp), self.registry, Path(tmp))
        return self._first

    def step(self) -> None:
        import torch

        first = self.first_step()
        if not first["changed"]:
            raise CheckFailed("one optimizer step changed no parameter")
        if not math.isfinite(first["loss"]):
            raise CheckFailed(f"the first training loss is {first['loss']}")
        if first["train_loss"] is None or not torch.isfinite(first["train_loss"]):
            raise CheckFailed("no finite train_loss was logged at step 0 (log it with self.log_train_loss(loss, batch_size))")
        if first["grouped"] != first["trainable"]:
            raise CheckFailed("the GroupedModel's groups do not hold every trainable parameter exactly once")

    def same_seed(self) -> None:
        first = self.first_step()
        with tempfile.TemporaryDirectory(prefix="framework-conformance-") as tmp:
            again = fit_steps(self.spec(tmp), self.registry, Path(tmp))
        if again["loss"] != first["loss"]:
            raise CheckFailed(f"the same seed gave another first loss: {first['loss']!r}, then {again['loss']!r} "
                              f"(seed every random choice from config.engine.seed)")

    def checkpoint(self) -> None:
        with tempfile.TemporaryDirectory(prefix="framework-conformance-") as tmp:
            first = fit_steps(self.spec(tmp), self.registry, Path(tmp), save=True)
            round_trip(first, self.spec(tmp, seed=int(first["seed"]) + 1), self.registry, Path(tmp))

    def diverged(self) -> None:
        with tempfile.TemporaryDirectory(prefix="framework-conformance-") as tmp:
            try:
                fit_steps(self.spec(tmp), self.registry, Path(tmp), nan=True)
            except DivergedError:
                return
        raise CheckFailed("a NaN training loss did not stop the fit as diverged (return the loss from training_step)")


def _nan_loss(step: Callable) -> Callable:
    """`training_step` with its loss multiplied by NaN: what a diverging run returns."""

    def wrapped(*args, **kwargs):
        out = step(*args, **kwargs)
        if isinstance(out, dict) and "loss" in out:
            return {**out, "loss": out["loss"] * math.nan}
        return out * math.nan if out is not None else out

    return wrapped


def fit_steps(spec: RunSpec, registry: Registry, tmp: Path, save: bool = False, nan: bool = False) -> dict[str, Any]:
    """Build the run's task as the engine does and fit one step on the CPU; what the checks look at."""
    import lightning.pytorch as pl
    import torch

    from framework.training.callbacks import DivergenceCheck, LossRecorder
    from framework.training.optimizer_modes import OptimizerModes
    from framework.training.run import build, quiet_lightning

    quiet_lightning()
    recorder = LossRecorder()
    losses = recorder.losses

    model, datamodule, _, _, _ = build(spec, registry, tmp / "run")
    if nan:
        model.training_step = _nan_loss(model.training_step)
    before = [p.detach().clone() for p in model.parameters()]
    trainer = pl.Trainer(max_steps=1, max_epochs=-1, limit_val_batches=0, num_sanity_val_steps=0, accelerator="cpu",
                         devices=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, default_root_dir=tmp,
                         callbacks=[OptimizerModes(), DivergenceCheck(), recorder])  # as in every engine run
    trainer.fit(model, datamodule=datamodule)
    grouped = sorted(n for g in model.model.parameter_groups() for n in g.names)
    result = {
        "loss": losses[0] if losses else math.nan, "train_loss": trainer.callback_metrics.get("train_loss"),
        "changed": sum(not torch.equal(a, b.detach()) for a, b in zip(before, model.parameters())),
        "grouped": grouped, "trainable": sorted(n for n, p in model.model.model.named_parameters() if p.requires_grad),
        "seed": spec.config["engine"]["seed"], "state": {k: v.detach().clone() for k, v in model.state_dict().items()},
    }
    if save:
        result["checkpoint"] = tmp / "step.ckpt"
        trainer.save_checkpoint(result["checkpoint"])
    return result


def round_trip(first: dict[str, Any], spec: RunSpec, registry: Registry, tmp: Path) -> None:
    """Load `first`'s checkpoint as `framework evaluate` and a resumed run do, into a model built anew."""
    import torch

    from framework.training.group_checks import torch_optimizers
    from framework.training.run import build

    try:
        saved = torch.load(first["checkpoint"], map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckFailed(f"the checkpoint does not load with weights_only=True (keep only tensors and plain values in "
                          f"it): {type(exc).__name__}: {str(exc).splitlines()[0][:200]}") from None
    model, _, _, _, _ = build(spec, registry, tmp / "fresh")
    model.load_state_dict(saved["state_dict"])
    for name, value in model.state_dict().items():
        if not torch.equal(value, first["state"][name]):
            raise CheckFailed(f"{name} differs after loading the checkpoint into a new model")
    optimizers = torch_optimizers(model.optimizer_factory(model.model, total_steps=10)) or []
    states = saved.get("optimizer_states", [])
    if len(states) != len(optimizers):
        raise CheckFailed(f"the checkpoint holds {len(states)} optimizer state(s) for {len(optimizers)} optimizer(s)")
    for optimizer, state in zip(optimizers, states):
        optimizer.load_state_dict(state)


def pair_checks(pairs: list[Pair], registry: Registry, checks: tuple[str, ...] = CHECKS,
                overrides: dict[str, list[str]] | None = None) -> Iterator[tuple[str, str, str, Callable[[], None]]]:
    """(task, optimizer, check name, check) for each pair and check, the task named `task[model]` when a
    model plugin trains it; a check raises CheckFailed (or the plugin's own error) when it does not hold.
    `overrides`: extra `key=value` per task name (a model's reference task: REFERENCE_SIZES by default)."""
    unknown = [c for c in checks if c not in CHECKS]
    if unknown:
        raise FrameworkError(f"unknown conformance check(s) {', '.join(unknown)} (known: {', '.join(CHECKS)})")
    for task, optimizer, model in pairs:
        extra = list((overrides or {}).get(task, REFERENCE_SIZES.get(task, []) if model else []))
        pair = PairChecks(task, optimizer, registry, extra + ([f"task.model.name={model}"] if model else []))
        for name in checks:
            yield f"{task}[{model}]" if model else task, optimizer, name, getattr(pair, name)

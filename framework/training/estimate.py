"""What a grid will cost, measured on this machine before it runs (`framework estimate`).

For each distinct (task, optimizer, task settings, precision) of the grid, a short real Lightning fit on
the current device measures:
- parameters (millions);
- FLOPs per sample of the forward pass (one validation batch) and of a training step (forward,
  backward and optimizer; counted by torch.utils.flop_counter, which counts matrix products and
  convolutions, i.e. nearly all the arithmetic of a network);
- the time of a training step (median over the measured steps, after warm-up steps) and of an
  evaluation step, synchronised on a GPU;
- peak memory: on a GPU the most memory torch allocated; on a CPU the process's peak resident size.

A step is measured as one device processes it: with the micro-batch of the batch size rule
(task.batch_size / devices / accumulate_grad_batches), from the end of one batch to the end of the next
(loading the batch and Lightning's loop included). Each run's time is then projected from its own
config: its training micro-batches (max_steps, or max_epochs over the training set) times the step
time, its validation and the testing of its checkpoints times the evaluation step time, plus the fixed
costs measured alongside (a fit's start-up and tear-down, one per run; the start-up of a validate or
test call, one per validation and two per tested checkpoint; writing a checkpoint, up to two per
validation). The first fit of a process pays one-time costs and is not measured: a throwaway fit of two
steps comes first. On a GPU the
grid's total is also given in GPU-hours (time x engine.devices). Not in the projection: communication
between devices and data loading slower than in these first steps (a cold file cache).
"""

from __future__ import annotations

import json
import math
import resource
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from framework.config import Node
from framework.config.batch_size import micro_batch_size, processes
from framework.config.grid import RunSpec
from framework.config.registry import Registry

WARMUP_STEPS = 3  # first steps pay for allocations and lazy initialisation: not timed
_warmed_up = False  # the first fit of a process pays one-time costs (lazy imports, first allocations)


@dataclass
class Measurement:
    parameters: int
    forward_flops_per_sample: float | None
    train_flops_per_sample: float | None
    step_s: float
    eval_step_s: float | None
    peak_memory_bytes: int | None
    lengths: dict[str, int | None]  # samples in the train / val / test splits
    device: str
    startup_s: float = 0.0  # a fit's cost outside its batches: building the Trainer, setting up, tearing down
    eval_startup_s: float = 0.0  # the same for one validate or test call
    checkpoint_s: float = 0.0  # writing one checkpoint


@dataclass
class Estimate:
    task: str
    optimizer: str
    measurement: Measurement
    runs: list[RunSpec] = field(default_factory=list)
    projected_s: float | None = 0.0  # the grid's runs of this group, one after the other
    device_s: float | None = 0.0  # projected_s weighted by each run's engine.devices


def _group_key(spec: RunSpec) -> str:
    """Runs that differ only in optimizer hyperparameters or seed take the same time per step."""
    engine = spec.config["engine"]
    return json.dumps([spec.task, spec.optimizer, spec.config["task"], engine["precision"], engine["devices"],
                       engine["accumulate_grad_batches"], engine["accelerator"]], sort_keys=True, default=str)


def _length(dataset: Any) -> int | None:
    try:
        return len(dataset) if dataset is not None else None
    except TypeError:
        return None


class _StepClock:
    """Per-step times of training and evaluation batches, and the FLOPs of one of each (a Lightning
    callback). A step's time runs from the end of the previous batch to the end of this one, so it holds
    what a real run pays per step: loading the batch, Lightning's loop, forward, backward and the update.
    """

    def __init__(self, device_type: str):
        from lightning.pytorch import Callback

        from framework.training.callbacks import batch_size_of

        clock = self

        # Training: step 1 has its FLOPs counted (the counter slows it) and is not timed; the steps after
        # WARMUP_STEPS + 1 are. Evaluation: batch 0 is counted, the later ones timed.
        class Hooks(Callback):
            def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
                clock.start("train", trainer.global_step == 1)

            def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
                clock.stop("train", trainer.global_step > WARMUP_STEPS + 1, batch_size_of(batch))

            def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0):
                clock.start("eval", batch_idx == 0)

            def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
                clock.stop("eval", batch_idx >= 1, batch_size_of(batch))

        self.callback = Hooks()
        self.cuda = device_type == "cuda"
        self.times: dict[str, list[float]] = {"train": [], "eval": []}
        self.flops: dict[str, float] = {}
        self.first_start: dict[str, float] = {}
        self.last_end: dict[str, float] = {}
        self._counter: Any = None

    def _now(self) -> float:
        if self.cuda:  # the device's work, not only the host's queueing
            import torch

            torch.cuda.synchronize()
        return time.perf_counter()

    def span(self, kind: str) -> float:
        """Seconds from the start of the first batch of `kind` to the end of the last."""
        return self.last_end.get(kind, 0.0) - self.first_start.get(kind, 0.0)

    def start(self, kind: str, count_flops: bool) -> None:
        if kind not in self.first_start:
            self.first_start[kind] = self._now()
        if count_flops:
            from torch.utils.flop_counter import FlopCounterMode

            self._counter = FlopCounterMode(display=False)
            self._counter.__enter__()

    def stop(self, kind: str, timed: bool, samples: int) -> None:
        if self._counter is not None:
            self._counter.__exit__(None, None, None)
            self.flops[kind] = self._counter.get_total_flops() / max(1, samples)
            self._counter = None
            timed = False
        now = self._now()
        if timed and kind in self.last_end:
            self.times[kind].append(now - self.last_end[kind])
        self.last_end[kind] = now


def _peak_memory(device_type: str) -> int | None:
    if device_type == "cuda":
        import torch

        return int(torch.cuda.max_memory_allocated())
    if sys.platform.startswith("linux"):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kilobytes on Linux
    return None


def measure(spec: RunSpec, registry: Registry, steps: int = 10) -> Measurement:
    """Train `steps` timed steps (after warm-up) of one run on the current device, on one device with its
    micro-batch, and time `steps` evaluation batches."""
    import torch

    from framework.training.run import load_task, quiet_lightning
    from framework.training.trainer_options import device_type

    quiet_lightning()
    config, engine = spec.config, spec.config["engine"]
    micro = micro_batch_size(config["task"]["batch_size"], engine["devices"], engine["accumulate_grad_batches"],
                             engine.get("nodes", 1))
    with tempfile.TemporaryDirectory(prefix="framework-estimate-") as tmp:
        measured = Node({
            **config,
            "task": {**config["task"], "batch_size": micro},
            "engine": {**engine, "devices": 1, "nodes": 1, "accumulate_grad_batches": 1},
            # the probe fits take a dozen steps, shorter than a recipe's warm-up (refused as taking the whole
            # run), and the lr's value does not change a step's time
            "schedule": {**config["schedule"], "warmup_steps": 0, "warmup_fraction": 0.0},
            "run": {"id": spec.run_id, "dir": tmp},
        })
        model, datamodule = load_task(measured, registry)
        kind = device_type(engine["accelerator"])
        if kind == "cuda":
            torch.cuda.reset_peak_memory_stats()
        clock = _StepClock(kind)
        timings = _timed_fit_and_validate(measured, registry, model, datamodule, clock, steps, Path(tmp))
        if datamodule.data_test is None:
            datamodule.setup("test")
        return Measurement(
            parameters=sum(p.numel() for p in model.parameters()),
            forward_flops_per_sample=clock.flops.get("eval"),
            train_flops_per_sample=clock.flops.get("train"),
            step_s=statistics.median(clock.times["train"]) if clock.times["train"] else math.nan,
            eval_step_s=statistics.median(clock.times["eval"]) if clock.times["eval"] else None,
            peak_memory_bytes=_peak_memory(kind),
            lengths={split: _length(getattr(datamodule, f"data_{split}", None)) for split in ("train", "val", "test")},
            device=torch.cuda.get_device_name() if kind == "cuda" else kind,
            **timings,
        )


def _timed_fit_and_validate(measured: Node, registry: Registry, model: Any, datamodule: Any, clock: _StepClock,
                            steps: int, tmp: Path) -> dict[str, float]:
    """Fit warm-up + `steps` steps, save a checkpoint and validate `steps` batches, with `clock` timing each
    step; returns the fixed costs around them (start-up, evaluation start-up, checkpoint)."""
    import lightning.pytorch as pl

    from framework.training.optimizer_modes import OptimizerModes
    from framework.training.run import load_task
    from framework.training.trainer_options import trainer_arguments

    options = trainer_arguments(measured.engine)
    quiet = {"logger": False, "enable_checkpointing": False, "enable_progress_bar": False,
             "enable_model_summary": False, "default_root_dir": tmp}
    global _warmed_up
    if not _warmed_up:  # a throwaway fit of 2 steps, so the measured start-up is that of every later run
        pl.Trainer(**options, **quiet, max_steps=2, limit_val_batches=0,
                   callbacks=[OptimizerModes()]).fit(load_task(measured, registry)[0], datamodule=datamodule)
        _warmed_up = True
    started = time.perf_counter()
    trainer = pl.Trainer(**options, **quiet, max_steps=WARMUP_STEPS + 1 + steps, max_epochs=-1, limit_val_batches=0,
                         num_sanity_val_steps=0, callbacks=[clock.callback, OptimizerModes()])
    trainer.fit(model, datamodule=datamodule)
    startup = time.perf_counter() - started - clock.span("train")
    started = time.perf_counter()
    trainer.save_checkpoint(tmp / "probe.ckpt")
    checkpoint_s = time.perf_counter() - started
    started = time.perf_counter()
    evaluator = pl.Trainer(**options, **quiet, limit_val_batches=steps + 1, callbacks=[clock.callback])
    evaluator.validate(model, datamodule=datamodule, verbose=False)
    eval_startup = time.perf_counter() - started - clock.span("eval")
    return {"startup_s": max(0.0, startup), "eval_startup_s": max(0.0, eval_startup), "checkpoint_s": checkpoint_s}


def project_seconds(spec: RunSpec, m: Measurement) -> float | None:
    """The projected wall time of one run from its config and a measurement of its group."""
    engine, task = spec.config["engine"], spec.config["task"]
    ranks = processes(engine)  # every device of every node loads its own share of each split
    micro = micro_batch_size(task["batch_size"], engine["devices"], engine["accumulate_grad_batches"], engine.get("nodes", 1))
    n_train, n_val, n_test = (m.lengths.get(s) for s in ("train", "val", "test"))
    if not n_train:
        return None
    per_epoch = math.ceil(n_train / ranks / micro)  # micro-batches per device and epoch
    limits = []
    if task.get("max_steps"):
        limits.append(task["max_steps"] * engine["accumulate_grad_batches"])
    if task.get("max_epochs"):
        limits.append(task["max_epochs"] * per_epoch)
    micro_batches = min(limits)
    epochs = math.ceil(micro_batches / per_epoch)
    validations = epochs // engine["check_val_every_n_epoch"] if n_val else 0
    eval_batches = validations * math.ceil(n_val / ranks / micro) if n_val else 0
    tested = len(engine["test_checkpoints"])
    for _ in range(tested):
        eval_batches += math.ceil((n_val or 0) / ranks / micro) + math.ceil((n_test or 0) / ranks / micro)
    fixed = (m.startup_s  # the fit
             + validations * (m.eval_startup_s  # starting each validation loop costs about what a validate call does
                              + 2 * m.checkpoint_s)  # and it writes last.ckpt, and best-*.ckpt when it improved
             + tested * 2 * m.eval_startup_s)  # each tested checkpoint is validated and tested
    return micro_batches * m.step_s + eval_batches * (m.eval_step_s or m.step_s) + fixed


def estimate(runs: list[RunSpec], registry: Registry, steps: int = 10, report: Any = None) -> list[Estimate]:
    """One Estimate per group of runs with the same step cost, each measured once."""
    groups: dict[str, Estimate] = {}
    for spec in runs:
        key = _group_key(spec)
        if key not in groups:
            if report:
                report(f"measuring {spec.task} x {spec.optimizer} ({steps} steps after {WARMUP_STEPS} warm-up)")
            groups[key] = Estimate(spec.task, spec.optimizer, measure(spec, registry, steps))
        group = groups[key]
        group.runs.append(spec)
        seconds = project_seconds(spec, group.measurement)
        if seconds is None or group.projected_s is None:
            group.projected_s = group.device_s = None
        else:
            group.projected_s += seconds
            group.device_s += seconds * processes(spec.config["engine"])
    return list(groups.values())


def _fmt(value: float | None, scale: float = 1.0, digits: int = 3) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value / scale:.{digits}g}"


def rows(estimates: list[Estimate]) -> tuple[list[str], list[list[str]]]:
    """The estimate as a table: header and rows (shared by the terminal and the markdown)."""
    gpu = any(e.measurement.device not in ("cpu", "mps") for e in estimates)
    header = ["task", "optimizer", "params (M)", "GFLOPs/sample fwd", "GFLOPs/sample train", "step (ms)",
              "eval step (ms)", "peak memory (MB)", "runs", "projected (h)"] + (["GPU-hours"] if gpu else [])
    body = []
    for e in estimates:
        m = e.measurement
        body.append([
            e.task, e.optimizer, _fmt(m.parameters, 1e6), _fmt(m.forward_flops_per_sample, 1e9),
            _fmt(m.train_flops_per_sample, 1e9), _fmt(m.step_s, 1e-3), _fmt(m.eval_step_s, 1e-3),
            _fmt(m.peak_memory_bytes, 2**20, 4), str(len(e.runs)), _fmt(e.projected_s, 3600),
        ] + ([_fmt(e.device_s, 3600)] if gpu else []))
    return header, body


def totals(estimates: list[Estimate]) -> str:
    known = [e for e in estimates if e.projected_s is not None]
    hours = sum(e.projected_s for e in known) / 3600
    gpu = any(e.measurement.device not in ("cpu", "mps") for e in estimates)
    text = f"{sum(len(e.runs) for e in estimates)} runs, projected {hours:.3g} h one after the other"
    if gpu:
        text += f" ({sum(e.device_s for e in known) / 3600:.3g} GPU-hours)"
    if len(known) < len(estimates):
        text += "; runs whose training set has no length are not projected"
    return text


def markdown(estimates: list[Estimate], command: str) -> str:
    """The estimate as a markdown page (docs/estimation.md)."""
    import lightning
    import torch

    header, body = rows(estimates)
    devices = sorted({e.measurement.device for e in estimates})
    lines = [
        "# Estimated cost of the grid",
        "",
        f"Measured by `{command}` on {', '.join(devices)} "
        f"(torch {torch.__version__} with {torch.get_num_threads()} CPU thread(s), lightning {lightning.__version__}, "
        f"{time.strftime('%Y-%m-%d')}).",
        "",
        "| " + " | ".join(header) + " |",
        "| " + " | ".join("---" for _ in header) + " |",
        *("| " + " | ".join(row) + " |" for row in body),
        "",
        f"Total: {totals(estimates)}.",
        "",
        "How to read it (see `framework/training/estimate.py`): a step is one micro-batch on one device (task.batch_size /",
        "devices / accumulate_grad_batches), timed from the end of one batch to the end of the next as the",
        "median over the steps after warm-up; FLOPs count matrix products and convolutions per sample, forward",
        "alone and for a whole training step; peak memory is torch's peak allocation on a GPU and the",
        "process's peak resident size on a CPU. A run's projected time is its training micro-batches times",
        "the step time, its validation and checkpoint testing times the evaluation step time, and the fixed",
        "costs measured alongside: start-up of the fit and of each validate/test call, checkpoint writes.",
        "",
    ]
    return "\n".join(lines)

# python benchmarks/digits_step_time.py --epochs 30 --repeats 11 --output docs/benchmarks.md
"""Training-step time of the digits task: `framework run` against a hand-written PyTorch loop.

Both sides train the same thing: the digits MLP (built by the task), the data module's training loader
(batch size 64, shuffled by (seed, epoch)), AdamW with the optimizer plugin's parameter groups and its
LambdaLR schedule stepped after every step, cross-entropy. The reference loop is plain PyTorch:
forward, loss, zero_grad, backward, step, scheduler step; no callbacks, no logging, no validation.
A third column, bare Lightning, fits the task's own LightningModule with a Trainer that has nothing
the engine adds (no logger, checkpoints, validation or engine callbacks): what Lightning's training
loop costs by itself.

Time per step is measured the same way everywhere: wall time of each training epoch (creating the
batch iterator included, validation excluded) summed over all epochs and divided by the number of
optimizer steps. The framework's number is the one the run records itself (`train.step_time_ms` in
scores.json, from TrainTimer). Each repeat runs every side in a fresh process with the same number of
torch threads, in alternating order, so a slow spell of the machine hits all sides alike; the medians
are compared.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path

from common import ROOT, machine, median_rounds, ms_per_step, publish

OVERRIDES = ["tasks=digits", "optimizers=adamw_baseline"]
SIDES = ("framework", "lightning", "reference")


def _env(threads: int) -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}


def framework_step_ms(epochs: int, device: str, threads: int, overrides: list[str] = OVERRIDES) -> float:
    """`framework run` through the real CLI in a fresh process; the run's own recorded step time."""
    with tempfile.TemporaryDirectory() as output:
        command = [sys.executable, "-m", "framework", "run", *overrides, f"task.max_epochs={epochs}",
                   f"engine.accelerator={device}", "-o", output, "--force"]
        subprocess.run(command, cwd=ROOT, env=_env(threads), check=True, capture_output=True, text=True)
        (scores,) = Path(output).glob("*/*/*/scores.json")
        train = json.loads(scores.read_text())["train"]
        if train["steps"] != train["global_step"]:
            raise RuntimeError(f"the run timed {train['steps']} of its {train['global_step']} steps")
        return float(train["step_time_ms"])


def child_step_ms(side: str, epochs: int, device: str, threads: int, script: str = __file__) -> float:
    """Run `script` as `--child SIDE` in a fresh process, so it starts as cold as the framework's run."""
    command = [sys.executable, script, "--child", side, "--epochs", str(epochs), "--device", device,
               "--threads", str(threads)]
    result = subprocess.run(command, cwd=ROOT, env=_env(threads), check=True, capture_output=True, text=True)
    return float(result.stdout.strip().splitlines()[-1])


def setup(epochs: int, threads: int, overrides: list[str] = OVERRIDES):
    """The run's resolved configuration and the task and optimizer plugins, as `framework run` has them."""
    import torch

    from framework.config import Node, parse_overrides
    from framework.config.grid import expand
    from framework.config.registry import Registry

    torch.set_num_threads(threads)
    registry = Registry()
    (spec,) = expand(parse_overrides([*overrides, f"task.max_epochs={epochs}"]), registry)
    config = Node(spec.config)
    return (config, registry.get("task", config.task.name).load(),
            registry.get("optimizer", config.optimizer.name).load())


def reference(epochs: int, device: str, threads: int) -> float:
    """The hand-written loop; returns milliseconds per training step."""
    import torch
    from torch.nn import functional as F

    from framework.training.parameter_groups import GroupedModel
    from framework.training.run import OptimizerFactory

    config, task_module, optimizer_module = setup(epochs, threads)
    mlp = importlib.import_module(f"{task_module.__package__}.model").mlp
    torch.manual_seed(config.engine.seed)
    datamodule = task_module.get_datamodule(config)
    datamodule.setup("fit")
    loader = datamodule.train_dataloader()
    task = config.task
    model = GroupedModel(mlp(task.hidden_size, task.hidden_layers, task.dropout)).to(device)
    configured = OptimizerFactory(optimizer_module.configure_optimizers, config)(model, epochs * len(loader))
    optimizer, scheduler = configured["optimizer"], configured["lr_scheduler"]["scheduler"]
    model.train()

    gc.collect()
    gc.freeze()  # as the engine does around fit (it makes no difference to this loop, which allocates little)

    def train_step(batch):
        x, y = (t.to(device, non_blocking=True) for t in batch)
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
        return loss

    return ms_per_step(loader, epochs, device, train_step)


def bare_lightning(epochs: int, device: str, threads: int) -> float:
    """The task's LightningModule and data module under a Trainer with Lightning's defaults and nothing
    the engine adds; returns milliseconds per training step."""
    import lightning.pytorch as pl

    from framework.training.callbacks import TrainTimer
    from framework.training.run import OptimizerFactory, quiet_lightning

    quiet_lightning()
    config, task_module, optimizer_module = setup(epochs, threads)
    pl.seed_everything(config.engine.seed, verbose=False)
    model, datamodule = task_module.get_task(OptimizerFactory(optimizer_module.configure_optimizers, config), config)
    timer = TrainTimer()
    with tempfile.TemporaryDirectory() as root:
        trainer = pl.Trainer(
            default_root_dir=root, accelerator="gpu" if device == "cuda" else "cpu", devices=1, max_epochs=epochs,
            logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
            num_sanity_val_steps=0, limit_val_batches=0, callbacks=[timer],
        )
        gc.collect()
        gc.freeze()  # as the engine does around fit
        trainer.fit(model, datamodule=datamodule)
    return 1000 * timer.seconds / timer.steps


CHILDREN = {"reference": reference, "lightning": bare_lightning}


def _cells(row: dict[str, float]) -> list[str]:
    ratios = [row["framework"] / row["reference"], row["lightning"] / row["reference"]]
    return [f"{row[side]:.3f}" for side in SIDES] + [f"{ratio:.2f}" for ratio in ratios]


def _markdown(args, rows: list[dict[str, float]]) -> str:
    median = {side: statistics.median(row[side] for row in rows) for side in SIDES}
    per_round = statistics.median(row["framework"] / row["reference"] for row in rows)
    command = (f"python benchmarks/digits_step_time.py --epochs {args.epochs} --repeats {args.repeats} "
               f"--threads {args.threads} --device {args.device}")
    lines = [
        f"Measured {date.today().isoformat()} with `{command}` on {machine('lightning')}; "
        f"{args.threads} torch thread(s) on every side. Times in ms per training step.",
        "",
        "| round | framework | bare Lightning | reference | framework / reference | bare Lightning / reference |",
        "|---|---|---|---|---|---|",
        *(f"| {i} | " + " | ".join(_cells(row)) + " |" for i, row in enumerate(rows, 1)),
        "| **median** | " + " | ".join(f"**{cell}**" for cell in _cells(median)) + " |",
        "",
        f"Ratio framework / reference (medians): **{median['framework'] / median['reference']:.2f}x** "
        f"(target <= 1.5x); median of the rounds' own ratios: {per_round:.2f}x.",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30, help="training epochs per run (task default 30)")
    parser.add_argument("--repeats", type=int, default=11, help="rounds of the three measurements; medians compared")
    parser.add_argument("--threads", type=int, default=1, help="torch threads on every side (default 1: a small "
                        "MLP gains nothing from more, and threads fighting over few cores make timings noisy)")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--output", default=str(ROOT / "docs" / "benchmarks.md"),
                        help="markdown file whose marked digits section is replaced ('-' prints only)")
    parser.add_argument("--child", choices=CHILDREN, help=argparse.SUPPRESS)  # one side, in its own process
    args = parser.parse_args()
    if args.child:
        print(CHILDREN[args.child](args.epochs, args.device, args.threads))
        return 0

    accelerator = "gpu" if args.device == "cuda" else "cpu"
    measure = {
        "framework": lambda: framework_step_ms(args.epochs, accelerator, args.threads),
        "lightning": lambda: child_step_ms("lightning", args.epochs, args.device, args.threads),
        "reference": lambda: child_step_ms("reference", args.epochs, args.device, args.threads),
    }
    print("ms per step", flush=True)
    median, rows = median_rounds(measure, args.repeats)
    print(f"median ratio framework / reference: {median['framework'] / median['reference']:.2f}x")
    publish(_markdown(args, rows), args.output, "digits_step_time")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

# imported by tests/test_results_table.py and tests/test_report.py
"""An output folder written by hand, with known numbers, so that tables can be checked against them.

Task `toy` (score best/test_acc, higher is better, chosen by best/val_acc; val_acc must reach TARGET): optimizers adam and sgd,
two learning rates, three seeds; sgd at lr 0.1 fails on seed 3 and diverges on seed 2. Task `lossy`
(score best/test_loss, lower is better, chosen by best/val_loss, no target): adam and sgd, one learning rate, two seeds.
Every run has env.json, and done runs a logs/metrics.csv with the rows Lightning writes: validation
every 10 steps, the training loss at steps 4, 14 and 24, and the validation + test rows of the
post-training evaluation at the final step (which curves must leave out).
"""

from __future__ import annotations

import json
from pathlib import Path

from framework.results.run_folder import write_config, write_scores, write_status

TARGET = 0.8
LRS = (0.01, 0.1)
SEEDS = (1, 2, 3)
VAL_STEPS = (9, 19, 29)
TRAIN_STEPS = (4, 14, 24)
FAILED = ("toy", "sgd", 0.1, 3)
DIVERGED = ("toy", "sgd", 0.1, 2)
ENV = {"code": {"framework": "0.1.0", "git_commit": "abc123", "git_dirty": False},
       "packages": {"torch": "2.13.0+cpu", "lightning": "2.6.6"}, "device": "cpu: test CPU (2 cores)",
       "python": "3.11.7", "platform": "Linux", "host": "testhost", "captured": "2026-01-01T00:00:00+0000"}


def score(task: str, optimizer: str, lr: float, seed: int) -> float:
    """The run's best/test_acc (toy) or best/test_loss (lossy)."""
    if task == "lossy":
        return round((0.5 if optimizer == "adam" else 0.8) + seed / 100, 6)
    return round((0.9 if optimizer == "adam" else 0.7) - 0.5 * abs(lr - 0.01) + seed / 100, 6)


def val_acc(optimizer: str, lr: float, seed: int, step: int) -> float:
    """The toy task's validation accuracy at a logged step: rises with the step, adam faster."""
    speed = 0.03 if optimizer == "adam" else 0.02
    return round(min(0.95, 0.5 + speed * (step + 1) * (1.0 if lr == 0.01 else 0.5) + seed / 1000), 6)


def train_loss(optimizer: str, lr: float, seed: int, step: int) -> float:
    return round(2.0 / (step + 1) + (0.1 if optimizer == "sgd" else 0.0) + lr + seed / 100, 6)


def config(task: str, optimizer: str, lr: float, seed: int) -> dict:
    toy = task == "toy"
    return {
        "task": {"name": task, "batch_size": 32, "max_epochs": 3, "target_metric": "val_acc" if toy else "val_loss",
                 "target_metric_mode": "max" if toy else "min"},
        "optimizer": {"name": optimizer, "learning_rate": lr, "weight_decay": 0.0, "milestones": [0.5, 0.9],
                      **({"momentum": 0.9} if optimizer == "sgd" else {})},
        "engine": {"seed": seed, "output_dir": "ignored", "plugin_paths": [], "devices": 1},
        "evaluation": {"checkpoint": "best", "target": TARGET if toy else None, "plot": {
            "metric": "test_acc" if toy else "test_loss", "test_metric_mode": "max" if toy else "min",
            "format": ".3f", "limits": None, "x": "optimizer.learning_rate", "y": "optimizer.weight_decay"}},
    }


def runs() -> list[tuple[str, str, float, int]]:
    cells = [("toy", o, lr, s) for o in ("adam", "sgd") for lr in LRS for s in SEEDS]
    return cells + [("lossy", o, 0.01, s) for o in ("adam", "sgd") for s in SEEDS[:2]]


def state(cell: tuple) -> str:
    return "failed" if cell == FAILED else "diverged" if cell == DIVERGED else "done"


def run_dir(output: Path, cell: tuple) -> Path:
    task, optimizer, lr, seed = cell
    return output / task / optimizer / f"{task}-{optimizer}-lr{lr}-s{seed}"


def write_output(output: Path) -> Path:
    for cell in runs():
        task, optimizer, lr, seed = cell
        directory = run_dir(output, cell)
        write_config(directory, config(*cell))
        (directory / "env.json").write_text(json.dumps(ENV))
        if state(cell) == "failed":
            write_status(directory, "failed", error="RuntimeError: boom <on purpose>",
                         traceback="Traceback (most recent call last):\nRuntimeError: boom <on purpose>")
            continue
        if state(cell) == "diverged":
            write_status(directory, "diverged", error="training loss is nan at step 7 (epoch 0)")
            continue
        value = score(*cell)
        metric = "test_acc" if task == "toy" else "test_loss"
        # the validation score (which chooses configurations) in the same order as the test score
        validation = {"val_acc": round(value - 0.02, 6)} if task == "toy" else {"val_loss": round(value + 0.02, 6)}
        write_scores(directory, {
            "best": {**validation, metric: value, "epoch": 2, "step": 30},
            "last": {"val_acc": 0.85, metric: value - 0.01},
            "train": {"time_s": 3.0, "steps": 30, "step_time_ms": 100.0, "epochs": 3, "global_step": 30,
                      "precision": "32-true"},  # text: not a row of the results table
        })
        _write_metrics(directory, cell)
        write_status(directory, "done")
    return output


def _write_metrics(directory: Path, cell: tuple) -> None:
    task, optimizer, lr, seed = cell
    rows = []
    for epoch, step in enumerate(VAL_STEPS):
        rows.append(f"{epoch},{TRAIN_STEPS[epoch]},,{train_loss(optimizer, lr, seed, TRAIN_STEPS[epoch])},,")
        rows.append(f"{epoch},{step},{val_acc(optimizer, lr, seed, step)},,0.5,")
    # after training: the best and the last checkpoint validated and tested at the final step
    rows += ["3,30,0.99,,0.1,", "3,30,,,,0.97", "3,30,0.99,,0.1,", "3,30,,,,0.96"]
    (directory / "logs").mkdir(parents=True, exist_ok=True)
    (directory / "logs" / "metrics.csv").write_text("epoch,step,val_acc,train_loss,val_loss,test_acc\n" + "\n".join(rows) + "\n")

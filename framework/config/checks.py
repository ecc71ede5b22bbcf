"""Value checks that types alone cannot express, run on every resolved configuration."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from framework.config.loggers import logger_problems


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _executor_problems(engine: Mapping[str, Any]) -> list[str]:
    """engine.workers and the engine.slurm section (the sbatch options are checked when submitting)."""
    problems = []
    workers, slurm = engine.get("workers"), engine.get("slurm", {})
    if not (isinstance(workers, int) and not isinstance(workers, bool) and workers >= 0):
        problems.append(f"engine.workers: must be 0 (in this process) or a positive integer, got {workers!r}")
    for key in ("array_parallelism",):
        if not _positive_int(slurm.get(key)):
            problems.append(f"engine.slurm.{key}: must be a positive integer, got {slurm.get(key)!r}")
    requeues = slurm.get("max_requeues")
    if not (isinstance(requeues, int) and not isinstance(requeues, bool) and requeues >= 0):
        problems.append(f"engine.slurm.max_requeues: must be 0 or a positive integer, got {requeues!r}")
    factor = slurm.get("time_factor")
    if not (isinstance(factor, (int, float)) and not isinstance(factor, bool) and factor > 0):
        problems.append(f"engine.slurm.time_factor: must be a positive number, got {factor!r}")
    if not all(isinstance(line, str) for line in slurm.get("setup", [])):
        problems.append("engine.slurm.setup: must be a list of shell lines (strings)")
    return problems


# Lightning's precisions that engine.precision accepts (trainer_options decides what a device gets).
PRECISIONS = ("32-true", "64-true", "16-mixed", "bf16-mixed", "16-true", "bf16-true")


def _training_problems(engine: Mapping[str, Any], task: Mapping[str, Any]) -> list[str]:
    """The training options: precision, accumulation and the batch size rule, clipping, early stopping."""
    from framework.config.batch_size import micro_batch_problem

    problems = []
    if engine.get("precision") not in PRECISIONS:
        problems.append(f"engine.precision: must be one of {', '.join(PRECISIONS)}, got {engine.get('precision')!r}")
    accumulate = engine.get("accumulate_grad_batches")
    if not _positive_int(accumulate):
        problems.append(f"engine.accumulate_grad_batches: must be a positive integer, got {accumulate!r}")
    elif _positive_int(task.get("batch_size")) and _positive_int(engine.get("devices")):
        nodes = engine.get("nodes", 1)
        problem = micro_batch_problem(task["batch_size"], engine["devices"], accumulate, nodes if _positive_int(nodes) else 1)
        if problem:
            problems.append(problem)
    if not engine.get("gradient_clip_val", 0.0) >= 0:
        problems.append(f"engine.gradient_clip_val: must be 0 (off) or a positive number, got {engine.get('gradient_clip_val')!r}")
    if engine.get("gradient_clip_algorithm") not in ("norm", "value"):
        problems.append(f"engine.gradient_clip_algorithm: must be norm or value, got {engine.get('gradient_clip_algorithm')!r}")
    for key in ("early_stopping_patience", "skip_bad_samples"):
        value = engine.get(key)
        if not (isinstance(value, int) and not isinstance(value, bool) and value >= 0):
            problems.append(f"engine.{key}: must be 0 (off) or a positive integer, got {value!r}")
    if not engine.get("early_stopping_min_delta", 0.0) >= 0:
        problems.append(f"engine.early_stopping_min_delta: must be >= 0, got {engine.get('early_stopping_min_delta')!r}")
    return problems


def _selection_problems(task: Mapping[str, Any], evaluation: Mapping[str, Any]) -> list[str]:
    """Configurations are chosen on the validation split (docs/protocol.md): the selection metric must be
    a val_* metric, never the test metric that is reported."""
    select, mode = evaluation.get("select"), evaluation.get("select_mode")
    if mode is not None and mode not in ("min", "max"):
        return [f"evaluation.select_mode: must be min, max or null (task.target_metric_mode), got {mode!r}"]
    if select is None:
        metric = task.get("target_metric")
        if isinstance(metric, str) and not metric.startswith("val_"):
            return [(f"evaluation.select: null chooses configurations by task.target_metric '{metric}', which is "
                     "no validation metric; set evaluation.select to a val_* metric")]
        return []
    if not isinstance(select, str) or not select.startswith("val_"):
        return [("evaluation.select: configurations are chosen on the validation split, so it must name a "
                 f"val_* metric (the test metric is only reported), got {select!r}")]
    if select != task.get("target_metric") and mode is None:
        return [(f"evaluation.select_mode: set it to max or min: '{select}' is not task.target_metric, whose "
                 "direction it would otherwise take")]
    return []


def check_semantics(config: Mapping[str, Any]) -> list[str]:
    """Value checks that types alone cannot express, on the resolved config (whatever layer set them)."""
    problems = []
    task, engine, evaluation = config["task"], config["engine"], config["evaluation"]

    def bad(key: str, message: str) -> None:
        problems.append(f"{key}: {message}")

    for key, choices in (
        ("task.target_metric_mode", ("min", "max")),
        ("evaluation.plot.test_metric_mode", ("min", "max")),
        ("evaluation.checkpoint", ("best", "last")),
        ("engine.executor", ("local", "slurm")),
    ):
        section, *rest = key.split(".")
        value: Any = config[section]
        for part in rest:
            value = value.get(part) if isinstance(value, Mapping) else None
        if value not in choices:
            bad(key, f"must be one of {', '.join(choices)}, got {value!r}")
    if not _positive_int(task.get("batch_size")):
        bad("task.batch_size", f"must be a positive integer, got {task.get('batch_size')!r}")
    epochs, steps = task.get("max_epochs"), task.get("max_steps")
    for key, value in (("task.max_epochs", epochs), ("task.max_steps", steps)):
        if value is not None and not _positive_int(value):
            bad(key, f"must be a positive integer or null, got {value!r}")
    if epochs is None and steps is None:
        bad("task.max_epochs", "set a positive max_epochs or max_steps (both are null)")
    problems += _executor_problems(engine)
    if not _positive_int(engine.get("devices")):
        bad("engine.devices", f"must be a positive integer, got {engine.get('devices')!r}")
    nodes = engine.get("nodes", 1)
    if not _positive_int(nodes):
        bad("engine.nodes", f"must be a positive integer, got {nodes!r}")
    elif nodes > 1 and engine.get("executor") != "slurm":
        # the local executor starts every process on this machine: other machines need SLURM to start them
        bad("engine.nodes", f"{nodes} nodes need engine.executor=slurm (the local executor trains on this machine only)")
    problems += _training_problems(engine, task)
    problems += logger_problems(engine)  # unknown names, missing packages (so --dry-run finds them)
    for name in engine.get("test_checkpoints", []):
        if name not in ("best", "last"):
            bad("engine.test_checkpoints", f"entries must be best or last, got {name!r}")
    from framework.config.schedules import schedule_problems

    # Checked now so that --dry-run reports it. A run takes at most max_steps steps (exactly, without
    # max_epochs), and a warm-up too long for max_steps is too long for fewer; by epochs the length is
    # known only once the data is read, and the run checks it then.
    problems += schedule_problems(config["schedule"], steps if _positive_int(steps) else None)
    target = evaluation.get("target")
    if target is not None and (isinstance(target, bool) or not isinstance(target, (int, float)) or target != target):  # NaN: never reached
        bad("evaluation.target", f"must be a number (a value of {task.get('target_metric')}) or null, got {target!r}")
    problems += _selection_problems(task, evaluation)
    limits = evaluation["plot"].get("limits")
    if limits is not None and (not isinstance(limits, (list, tuple)) or len(limits) != 2 or not all(isinstance(v, (int, float)) for v in limits)):
        bad("evaluation.plot.limits", f"must be [low, high] or null, got {limits!r}")
    return problems

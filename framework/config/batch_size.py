"""The batch size rule, written once (light: no torch, so config validation can use it).

`task.batch_size` is the global batch size of ONE OPTIMIZER STEP, whatever runs it. The step's samples
are spread over the run's processes (`engine.devices` on each of `engine.nodes` machines) and
`engine.accumulate_grad_batches` micro-batches per device, so each data loader yields

    micro-batch = task.batch_size / (engine.devices * engine.nodes * engine.accumulate_grad_batches)

samples. Changing the number of GPUs or the accumulation therefore never changes what one optimizer
step sees (nor the learning rate it was tuned for); it must divide evenly, or the run is refused.
"""

from __future__ import annotations


def processes(engine) -> int:
    """Training processes (DDP ranks) of one run: `engine.devices` on each of `engine.nodes` machines.
    A configuration written before engine.nodes existed (an old checkpoint's) ran on one node."""
    return int(engine["devices"]) * int(engine.get("nodes", 1))


def micro_batch_problem(batch_size: int, devices: int, accumulate: int, nodes: int = 1) -> str | None:
    """Why `batch_size` cannot be split over `devices` x `nodes` x `accumulate`, or None when it can."""
    parts = devices * nodes * accumulate
    if batch_size % parts == 0:
        return None
    factors = (f"engine.devices x engine.nodes x engine.accumulate_grad_batches = {devices} x {nodes} x {accumulate}"
               if nodes != 1 else f"engine.devices x engine.accumulate_grad_batches = {devices} x {accumulate}")
    return (
        f"task.batch_size={batch_size} is the global batch size of one optimizer step and must be divisible by "
        f"{factors} = {parts}; choose a multiple of {parts} (e.g. {max(parts, batch_size // parts * parts)})"
    )


def micro_batch_size(batch_size: int, devices: int, accumulate: int, nodes: int = 1) -> int:
    """Samples per data-loader batch on each device (see the module docstring); ValueError if uneven."""
    problem = micro_batch_problem(batch_size, devices, accumulate, nodes)
    if problem:
        raise ValueError(problem)
    return batch_size // (devices * nodes * accumulate)

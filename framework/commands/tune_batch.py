"""`framework tune-batch TASK [KEY=VALUE ...]`: the largest micro-batch that fits and the one with the best
throughput, measured through the task's real training step on this device."""

from __future__ import annotations

import argparse
import sys

from framework.commands.common import table

EPILOG = """\
examples:
  framework tune-batch digits
  framework tune-batch coco_panoptic task.crop_size=128 --max-batch 64 --steps 3
  framework tune-batch classification optimizers=sgd_baseline engine.precision=bf16-mixed

Trains micro-batches start, 2 x start, 4 x start, ... for 5 warm-up + --steps steps each (a short fit on
one device: the task's model, data, optimizer and precision) until one does not fit: on a GPU, memory
runs out; on a CPU, the next size would pass --max-batch (default 1024). Sizes above the training set's
length are not tried. Prints each size's step time, samples/s and (GPU) peak memory, the largest size
that fits and the one with the best throughput.

task.batch_size is the global batch of one optimizer step: a run's micro-batch is task.batch_size /
(engine.devices x engine.accumulate_grad_batches), so the table gives both. A new batch size usually
needs its learning rate tuned again. Nothing is written to run directories.
"""


def register(commands) -> None:
    parser = commands.add_parser(
        "tune-batch", help="find the largest batch that fits and the batch with the best samples/s",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("task", metavar="TASK", help="the task to measure (see `framework tasks`)")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                        help="settings as for `framework run` (one configuration: no sweeps)")
    parser.add_argument("--start", type=int, default=1, help="first micro-batch tried (default 1)")
    parser.add_argument("--max-batch", type=int, default=None,
                        help="largest micro-batch tried (default: 1024 on a CPU, none on a GPU)")
    parser.add_argument("--steps", type=int, default=10, help="timed steps per size (default 10, after 5 warm-up)")
    parser.set_defaults(handler=handler)


def _one_run(args: argparse.Namespace):
    """The single run the task and overrides describe, and the registry; FrameworkError otherwise."""
    from framework.config import combine, parse_overrides
    from framework.config.grid import expand
    from framework.config.registry import Registry
    from framework.errors import FrameworkError

    if args.steps < 1:
        raise FrameworkError(f"--steps must be at least 1, got {args.steps}")
    if args.start < 1:
        raise FrameworkError(f"--start must be at least 1, got {args.start}")
    if args.max_batch is not None and args.max_batch < args.start:
        raise FrameworkError(f"--max-batch {args.max_batch} is below --start {args.start}; raise --max-batch")
    if any(o.split("=", 1)[0] == "tasks" for o in args.overrides):
        raise FrameworkError("give the task as TASK, not tasks=... (e.g. framework tune-batch digits)")
    registry = Registry()
    request = combine(parse_overrides([f"tasks={args.task}"]), parse_overrides(list(args.overrides)))
    runs = expand(request, registry)
    if len(runs) > 1:
        raise FrameworkError(f"the overrides describe {len(runs)} different runs; tune-batch measures one "
                             "configuration: give single values, no sweeps (a,b) or several optimizers")
    return runs[0], registry


def handler(args: argparse.Namespace) -> int:
    from framework.errors import FrameworkError
    from framework.training.batch_tuning import best, rows, search
    from framework.training.trainer_options import device_type

    spec, registry = _one_run(args)
    engine = spec.config["engine"]
    cuda = device_type(engine["accelerator"]) == "cuda"
    max_batch = args.max_batch if args.max_batch is not None or cuda else 1024
    trials = search(spec, registry, args.start, max_batch, args.steps,
                    report=lambda line: print(line, file=sys.stderr, flush=True))
    if not trials:
        raise FrameworkError(f"--start {args.start} is above the training set's length: lower --start")
    header, body = rows(trials)
    print(table(header, body))
    fitting = [t for t in trials if t.fits]
    if not fitting:
        raise FrameworkError(f"micro-batch {args.start} does not fit on this device: lower --start or "
                             "engine.precision, or choose a smaller model")
    parts = f"engine.devices={engine['devices']} x engine.accumulate_grad_batches={engine['accumulate_grad_batches']}"
    top = best(trials)
    reason = "out of memory beyond it" if not trials[-1].fits else "the cap: --max-batch or the training set"
    print(f"largest that fits: micro-batch {fitting[-1].micro_batch} ({reason})")
    if top is not None:
        print(f"best throughput: micro-batch {top.micro_batch} ({top.samples_per_s:.4g} samples/s): "
              f"set task.batch_size={top.task_batch_size} ({parts})")
    return 0

# python benchmarks/panoptic_step_time.py --epochs 3 --repeats 5 --output docs/benchmarks.md
"""Training-step time of coco_panoptic (tiny Mask2Former, bundled scenes): `framework run` against a
hand-written PyTorch loop over the same model, batches and optimizer.

Both sides train the same thing: the task's Mask2Former (tiny preset) and its adapter, the data module's
training loader (bundled 128x128 scenes: flip, large-scale jitter and a 128x128 crop, batch 16, shuffled
by (seed, epoch)), AdamW with the optimizer plugin's parameter groups and the task's step schedule stepped after
every step, and the recipe's gradient clipping (global norm 5.0). The reference loop is plain PyTorch:
inputs, forward (the model computes its loss), zero_grad, backward, clip, step, scheduler step; no
callbacks, no logging, no validation.

Time per step as in benchmarks/digits_step_time.py: wall time of the training epochs (validation
excluded) over the optimizer steps; the framework's number is the run's own `train.step_time_ms`. Each
round runs both sides in fresh processes with the same torch threads, in alternating order; the medians
are compared.
"""

from __future__ import annotations

import sys
from datetime import date

from common import machine, publish
from vision_common import compare_step_times, hand_loop_ms, ratio_table, step_time_arguments

# the bundled scenes' sizes (the recipe's 1024 crops take minutes per step on a CPU) and a larger lr,
# as in the task README's CPU command
OVERRIDES = ["tasks=coco_panoptic", "optimizers=adamw_baseline", "task.crop_size=128", "task.eval_short=128",
             "task.eval_max_size=512", "optimizer.learning_rate=1e-3"]
SECTION = "panoptic_step_time"


def reference(epochs: int, device: str, threads: int) -> float:
    """The hand-written loop; returns milliseconds per training step."""
    return hand_loop_ms(OVERRIDES, epochs, device, threads)


def _markdown(args, rows: list[dict[str, float]], median: dict[str, float]) -> str:
    command = (f"python benchmarks/panoptic_step_time.py --epochs {args.epochs} --repeats {args.repeats} "
               f"--threads {args.threads} --device {args.device}")
    return "\n".join([
        f"Measured {date.today().isoformat()} with `{command}` on {machine()}; {args.threads} torch thread(s) "
        "on both sides. Times in ms per training step (batch 16).",
        "",
        *ratio_table(rows, median),
    ])


def main() -> int:
    args = step_time_arguments(__doc__.splitlines()[0], epochs=3, threads=2).parse_args()
    if args.child:
        print(reference(args.epochs, args.device, args.threads))
        return 0
    median, rows = compare_step_times(args, OVERRIDES, __file__)
    publish(_markdown(args, rows, median), args.output, SECTION)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`framework evaluate`: test a run's checkpoints again and check that they reproduce the saved scores."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from framework.commands.common import table

EPILOG = """\
examples:
  framework evaluate results/digits/adamw_baseline/1a2b3c4d5e6f            # best and last checkpoints
  framework evaluate results/digits/adamw_baseline/1a2b3c4d5e6f/checkpoints/last.ckpt
  framework evaluate RUN_DIR --checkpoint best --activations acts.pt       # also save activations

The task is rebuilt from the config stored in the checkpoint and scored on its validation and test data,
on one device, with weights-only (safe) loading. Where the run saved scores for the checkpoint, they are
compared: exit status 0 when all are reproduced within --tolerance, 1 when one is not.
"""


def register(commands) -> None:
    parser = commands.add_parser(
        "evaluate", help="test a run's checkpoint again and compare with its saved scores",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("path", metavar="RUN_DIR_OR_CHECKPOINT", help="a run directory or a .ckpt file")
    parser.add_argument("--checkpoint", choices=("best", "last", "both"), default="both",
                        help="which checkpoints of a run directory (default both)")
    parser.add_argument("--tolerance", type=float, default=1e-6,
                        help="largest absolute difference from a saved score that counts as reproduced (default 1e-6)")
    parser.add_argument("--accelerator", metavar="NAME", help="e.g. cpu; default: the run's engine.accelerator")
    parser.add_argument("--activations", metavar="FILE", type=Path,
                        help="save the task's activations of the first test batch (TaskModel.activations) to FILE")
    parser.add_argument("--plugin-path", action="append", default=[], metavar="DIR", help="extra plugin folder (repeatable)")
    parser.set_defaults(handler=handler)


def handler(args: argparse.Namespace) -> int:
    from framework.training.evaluate import evaluate, find_checkpoints

    which = ("best", "last") if args.checkpoint == "both" else (args.checkpoint,)
    status = 0
    found = find_checkpoints(args.path, which)
    for checkpoint, name, run_dir in found:
        activations = args.activations
        if activations is not None and len(found) > 1:  # one file per checkpoint: acts.best.pt, acts.last.pt
            activations = activations.with_name(f"{activations.stem}.{name}{activations.suffix}")
        result = evaluate(checkpoint, name, run_dir, args.plugin_path, args.accelerator, activations)
        print(f"{checkpoint} ({name})")
        rows = result.differences()
        if rows:
            print(table(["metric", "saved", "now", "difference"],
                        [[m, f"{a:.6g}", f"{b:.6g}", f"{d:.2g}"] for m, (a, b, d) in rows.items()]))
        else:
            print(table(["metric", "now"], [[m, f"{v:.6g}"] for m, v in result.scores.items()]))
        for note in result.notes:
            print(f"note: {note}")
        reproduced = result.reproduced(args.tolerance)
        if reproduced is True:
            print(f"reproduced: every saved score within {args.tolerance:g}")
        elif reproduced is False:
            print(f"NOT reproduced: a score differs by more than {args.tolerance:g} from the saved one", file=sys.stderr)
            status = 1
        else:
            print("no saved scores to compare with")
        print()
    return status

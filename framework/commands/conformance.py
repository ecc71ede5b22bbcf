"""`framework conformance FOLDER...`: the conformance suite on the plugins of plugin folders."""

from __future__ import annotations

import argparse
import os
import sys
import time

from framework.commands.common import table

EPILOG = """\
pairing: each task of a FOLDER trains with the bundled adamw_baseline, each optimizer with the bundled
digits task, each model with adamw_baseline on the bundled task of each kind it serves (classification,
semantic_segmentation, coco_detection, coco_instance; shown as task[model]), so a failure points at the
plugin under test. Without FOLDER: the folders in $FRAMEWORK_PLUGIN_PATH.

checks, per pair (on the CPU, a few seconds each; nothing is written outside a temporary folder):
  contract    what `framework run` checks before anything trains: task.py's get_task(optimizer, config)
              and get_datamodule(config), optimizer.py's configure_optimizers(model, config); get_task
              returns (TaskModel, data module); the optimizer puts every trainable parameter in exactly
              one group, at the group's weight decay (0 for no_decay) and lr multiplier; one validation
              and one test batch log task.target_metric, evaluation.select and evaluation.plot.metric
  step        one training step changes the parameters and logs a finite train_loss
  same_seed   the same seed gives the same first loss
  checkpoint  a checkpoint loads with weights_only=True into a new model and optimizer
  diverged    a NaN training loss stops the run as diverged

The same checks in your own pytest: `from framework.testing import parametrize_plugin_checks`.
Exit status: 0 when every check passes, 1 when a check fails, 2 for bad input (a missing folder, a broken
plugin, a plugin that breaks the contract: one line each; the other plugins are still checked).
"""


def register(commands) -> None:
    parser = commands.add_parser(
        "conformance", help="check the plugins of plugin folders: contract, a training step, seeds, checkpoints",
        description="Runs the conformance suite on every task, optimizer and model in the given plugin folders and prints "
                    "a pass/fail table.", epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("folders", nargs="*", metavar="FOLDER", help="plugin folder holding tasks/, optimizers/ and/or models/")
    parser.set_defaults(handler=handler)


def _folders(args: argparse.Namespace) -> list[str]:
    from framework.config.registry import PLUGIN_PATH_ENV
    from framework.errors import FrameworkError

    folders = list(args.folders) or [p for p in os.environ.get(PLUGIN_PATH_ENV, "").split(os.pathsep) if p]
    if not folders:
        raise FrameworkError(f"no plugin folder given: name one (framework conformance my_plugins) or set ${PLUGIN_PATH_ENV}")
    return folders


def handler(args: argparse.Namespace) -> int:
    from framework.config.registry import Registry
    from framework.errors import one_line
    from framework.training.conformance import CheckFailed, pair_checks, reference_pairs

    folders = _folders(args)
    registry = Registry([f for f in folders if os.path.isdir(f)])
    pairs, bad = reference_pairs(folders, registry)
    bad += [p for p in registry.problems if "does not exist" not in p]
    rows, failed, broken = [], 0, set()
    for task, optimizer, name, check in pair_checks(pairs, registry):
        if (task, optimizer) in broken:
            rows.append([task, optimizer, name, "skipped", "the contract failed"])
            continue
        start = time.perf_counter()
        try:
            check()
            result, detail, lines = "pass", "", []
        except CheckFailed as exc:
            result, detail, lines = "FAIL", " | ".join(exc.lines), exc.lines
        except Exception as exc:  # the plugin's own code raised: its failure, the other pairs go on
            result, detail, lines = "FAIL", one_line(exc, 300), []
        if result == "FAIL" and name == "contract":
            broken.add((task, optimizer))
            bad += lines or [f"{task} x {optimizer}: {detail}"]  # a contract that raised is broken too
        failed += result == "FAIL" and name != "contract"
        rows.append([task, optimizer, name, result, f"({time.perf_counter() - start:.1f}s) {detail}".strip()])
        print(f"{task} x {optimizer}: {name} {result}", flush=True)
    if rows:
        print()
        print(table(["task", "optimizer", "check", "result", "detail"], rows))
    for line in dict.fromkeys(bad):
        print(f"error: {line}", file=sys.stderr)
    print(f"{sum(r[3] == 'pass' for r in rows)} passed, {failed} failed, {len(broken)} pair(s) broke the contract"
          + (f", {len(bad)} bad input line(s)" if bad else ""))
    return 2 if bad else (1 if failed else 0)

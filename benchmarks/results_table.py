# python benchmarks/results_table.py [--runs 10000] [--repeats 3] [--keep DIR]
"""Time to load 10,000 run directories into the long-format results table (target: under 10 s).

Writes N synthetic run directories shaped like real ones (config.yaml/.json from the engine's own resolution of
the digits task, status.json, scores.json, env.json, logs/metrics.csv; 3 % failed, 2 % diverged), then
times, in alternating order:

- bytes (reference): open and read every file the loader reads, nothing parsed: the file-system floor;
- parse (reference): the same files parsed with `json.loads`, nothing else: what any loader of this
  layout must at least spend (each run writes its configuration as config.json beside config.yaml);
- load_table, first time: `framework.results.results_table.load_table` as `framework plot` and `framework report` call
  it on a folder without an index (every run directory parsed, by one worker process per CPU, then
  env.json and the long table; the folder's .runs-index.json is written);
- load_table, first time, 1 process: the same with every run parsed in this process;
- load_table, indexed: the same again, runs unchanged: their records come from .runs-index.json after
  one stat of each file (`framework.results.run_index`);
- write: `write_table` of that table (results.csv and results.parquet), reported apart.

Prints a Markdown table of the medians and the ratio load_table / parse. The page cache is warmed by
one untimed read of every file first, as it is when `framework plot` runs right after a grid.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

from framework.config import parse_overrides
from framework.config.file_io import dump_yaml
from framework.config.grid import expand
from framework.config.registry import Registry
from framework.results.results_table import load_table, write_table
from framework.results.run_folder import load_runs_parallel
from framework.results.run_index import INDEX_FILE
from framework.training.environment import capture

FILES = ("config.json", "status.json", "scores.json", "env.json")  # what the loader reads
LEARNING_RATES = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1, 1.0, 3.0)
WEIGHT_DECAYS = (0.0, 1e-5, 1e-4, 1e-3, 1e-2, 3e-2, 1e-1, 2e-1, 3e-1, 5e-1)


def _metrics_csv(rows: int) -> str:
    lines = ["epoch,step,train_loss,val_acc,val_loss"]
    lines += [f"{e},{20 * e + 19},{1 / (e + 1):.6f},{0.9 - 0.5 / (e + 2):.6f},{1 / (e + 2):.6f}" for e in range(rows)]
    return "\n".join(lines) + "\n"


def generate(root: Path, runs: int) -> None:
    """`runs` run directories under root/<task>/<optimizer>/<run_id>/ (plain writes: only speed matters)."""
    registry = Registry()
    env = json.dumps(capture({"accelerator": "cpu"}), indent=2)
    metrics = _metrics_csv(30)
    bases = {spec.optimizer: spec.config for spec in expand(parse_overrides(
        ["tasks=digits", "optimizers=adamw_baseline,sgd_baseline"]), registry)}
    tasks = [f"digits{i}" for i in range(max(1, runs // 2000))]
    # as many seeds as it takes to reach `runs` cells
    seeds = max(1, -(-runs // (len(tasks) * len(bases) * len(LEARNING_RATES) * len(WEIGHT_DECAYS))))
    cells = itertools.islice(itertools.product(tasks, sorted(bases), LEARNING_RATES, WEIGHT_DECAYS,
                                               range(1, seeds + 1)), runs)
    for index, (task, optimizer, lr, wd, seed) in enumerate(cells):
        config = json.loads(json.dumps(bases[optimizer]))
        config["task"]["name"] = task
        config["optimizer"].update(learning_rate=lr, weight_decay=wd)
        config["engine"]["seed"] = seed
        run_dir = root / task / optimizer / f"{index:012x}"
        (run_dir / "logs").mkdir(parents=True)
        state = "failed" if index % 33 == 0 else "diverged" if index % 50 == 1 else "done"
        status = {"task": task, "optimizer": optimizer, "run_id": run_dir.name, "state": state,
                  "sweep": {"optimizer.learning_rate": lr, "optimizer.weight_decay": wd, "engine.seed": seed},
                  "attempts": 1, "started": 1.7e9, "finished": 1.7e9 + 60, "host": "node", "pid": 1}
        if state != "done":
            status["error"] = "RuntimeError: synthetic failure" if state == "failed" else "training loss is nan at step 7"
            status["traceback"] = "Traceback (most recent call last):\n  ...\n" * 5
        (run_dir / "config.yaml").write_text(dump_yaml(config))
        (run_dir / "config.json").write_text(json.dumps(config, indent=2))  # as results.write_config
        (run_dir / "status.json").write_text(json.dumps(status, indent=2))
        (run_dir / "env.json").write_text(env)
        (run_dir / "logs" / "metrics.csv").write_text(metrics)
        if state == "done":
            score = 0.9 + (index % 97) / 1000
            scores = {checkpoint: {"val_loss": 0.3, "val_acc": score, "test_loss": 0.31, "test_acc": score - 0.01,
                                   **({"epoch": 29, "step": 600} if checkpoint == "best" else {})}
                      for checkpoint in ("best", "last")}
            scores["train"] = {"time_s": 1.3, "steps": 600, "step_time_ms": 2.2, "epochs": 30, "global_step": 600}
            (run_dir / "scores.json").write_text(json.dumps(scores, indent=2))


def _without_index(root: Path) -> Path:
    (root / INDEX_FILE).unlink(missing_ok=True)
    return root


def read_bytes(root: Path) -> int:
    total = 0
    for config in root.glob("*/*/*/config.yaml"):
        for name in FILES:
            try:
                total += len((config.parent / name).read_bytes())
            except FileNotFoundError:
                pass
    return total


def parse_plain(root: Path) -> int:
    parsed = 0
    for config in root.glob("*/*/*/config.yaml"):
        for name in FILES:
            try:
                json.loads((config.parent / name).read_text())
            except FileNotFoundError:
                continue
        parsed += 1
    return parsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--keep", metavar="DIR", help="write the run directories here and keep them")
    args = parser.parse_args()
    holder = None if args.keep else tempfile.TemporaryDirectory()
    root = Path(args.keep or holder.name)
    start = time.perf_counter()
    if not any(root.glob("*/*/*/config.yaml")):
        generate(root, args.runs)
    print(f"{args.runs} run directories in {root} ({time.perf_counter() - start:.1f} s to write)", file=sys.stderr)

    timings: dict[str, list[float]] = {name: [] for name in (
        "bytes (reference)", "parse (reference)", "load_table, first time", "load_table, first time, 1 process",
        "load_table, indexed", "write")}
    read_bytes(root)  # warm the page cache first: every side then reads from memory, as after a grid
    load_before = os.getloadavg()[0]
    rows = 0
    for repeat in range(args.repeats):
        order = [("bytes (reference)", lambda: read_bytes(root)), ("parse (reference)", lambda: parse_plain(root)),
                 ("load_table, first time, 1 process",
                  lambda: load_table(root, runs=load_runs_parallel(_without_index(root), workers=1))),
                 ("load_table, first time", lambda: load_table(_without_index(root))),
                 ("load_table, indexed", lambda: load_table(root))]  # right after (or before) the one that indexes
        for name, work in order if repeat % 2 == 0 else order[::-1]:
            t = time.perf_counter()
            result = work()
            timings[name].append(time.perf_counter() - t)
            if name == "load_table, indexed":
                table, rows = result, len(result)
        with tempfile.TemporaryDirectory() as out:
            t = time.perf_counter()
            written = write_table(table, out)
            timings["write"].append(time.perf_counter() - t)
            sizes = {p.name: p.stat().st_size for p in written}
    medians = {name: statistics.median(values) for name, values in timings.items()}
    print(f"Measured {time.strftime('%Y-%m-%d')} with `python benchmarks/results_table.py --runs {args.runs} "
          f"--repeats {args.repeats}` on {capture({'accelerator': 'cpu'})['device']}, "
          f"Python {platform.python_version()}; {rows:,} table rows x {table.shape[1]} columns; load average "
          f"{load_before:.1f} before and {os.getloadavg()[0]:.1f} after (the other users of the machine). "
          f"Seconds:\n")
    print("| step | " + " | ".join(f"run {i + 1}" for i in range(args.repeats)) + " | median |")
    print("|---|" + "---|" * (args.repeats + 1))
    for name, values in timings.items():
        print(f"| {name} | " + " | ".join(f"{v:.2f}" for v in values) + f" | **{medians[name]:.2f}** |")
    first, indexed = medians["load_table, first time"], medians["load_table, indexed"]
    print(f"\nload_table / parse reference: first time **{first / medians['parse (reference)']:.2f}x**, indexed "
          f"**{indexed / medians['parse (reference)']:.2f}x**; per run: {1000 * first / args.runs:.2f} ms first, "
          f"{1000 * indexed / args.runs:.2f} ms indexed. "
          f"Files: " + ", ".join(f"{name} {size / 1e6:.1f} MB" for name, size in sizes.items()) + ".")
    if holder:
        holder.cleanup()


if __name__ == "__main__":
    main()

# python benchmarks/cli_latency.py [--repeats 5]
"""Wall time of the commands that must feel instant: `framework --help`, `framework tasks` and the
`--dry-run` of a 1000-run grid (target: each under 1 s). The reference in the same run is a bare
`python -c pass`, so the ratio shows what the framework adds to the interpreter's own start-up."""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time

GRID_1000 = [
    "run", "tasks=digits", "optimizers=adamw_baseline,sgd_baseline",
    "optimizer.learning_rate=1e-5,3e-5,1e-4,3e-4,1e-3,3e-3,1e-2,3e-2,1e-1,3e-1",
    "optimizer.weight_decay=0,1e-5,1e-4,1e-3,1e-2,3e-2,1e-1,2e-1,3e-1,5e-1",
    "engine.seed=1,2,3,4,5", "--dry-run",
]
COMMANDS = {
    "python -c pass (reference)": [sys.executable, "-c", "pass"],
    "framework --help": [sys.executable, "-m", "framework", "--help"],
    "framework tasks": [sys.executable, "-m", "framework", "tasks"],
    "framework run <1000 runs> --dry-run": [sys.executable, "-m", "framework", *GRID_1000],
}


def median_seconds(command: list[str], repeats: int, cwd: str) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(command, cwd=cwd, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as cwd:
        results = {name: median_seconds(cmd, args.repeats, cwd) for name, cmd in COMMANDS.items()}
    reference = results["python -c pass (reference)"]
    print("| command | median wall time (s) | x python start-up |")
    print("| --- | --- | --- |")
    for name, seconds in results.items():
        print(f"| `{name}` | {seconds:.3f} | {seconds / reference:.1f} |")


if __name__ == "__main__":
    main()

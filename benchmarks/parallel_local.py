# python benchmarks/parallel_local.py [--cells 8] [--epochs 100]
"""Speed-up of the local executor's worker processes: the same grid of CPU cells (digits) run with
`engine.workers=1` and with `engine.workers=2`, in one go, each into a fresh output folder, through the
`framework` command as a user runs it. Target: >= 1.8x on 2 cores. Both timings include the workers'
start-up (each worker imports torch and Lightning once, not once per cell)."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time


def grid(cells: int, epochs: int) -> list[str]:
    seeds = ",".join(str(seed) for seed in range(1, cells // 2 + 1))
    return ["run", "tasks=digits", "optimizers=adamw_baseline", "optimizer.learning_rate=1e-3,1e-2",
            f"engine.seed={seeds}", f"task.max_epochs={epochs}"]


def wall_seconds(args: list[str], workers: int, folder: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "framework", *args, f"engine.workers={workers}", "-o", f"{folder}/w{workers}"],
                   cwd=folder, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cells", type=int, default=8, help="grid cells (even)")
    parser.add_argument("--epochs", type=int, default=100, help="digits epochs per cell (about 0.1 s each)")
    options = parser.parse_args()
    args = grid(options.cells, options.epochs)
    load = os.getloadavg()[0]  # other work on the machine skews both timings: say how busy it was
    with tempfile.TemporaryDirectory() as folder:
        one = wall_seconds(args, 1, folder)
        two = wall_seconds(args, 2, folder)
    print(f"{options.cells} digits cells x {options.epochs} epochs "
          f"(load average {load:.1f} before, {os.getloadavg()[0]:.1f} after, {os.cpu_count()} CPUs)")
    print(f"engine.workers=1: {one:.1f} s")
    print(f"engine.workers=2: {two:.1f} s")
    print(f"speed-up: {one / two:.2f}x (target >= 1.8x on 2 cores)")


if __name__ == "__main__":
    main()

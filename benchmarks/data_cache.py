# python benchmarks/data_cache.py --rounds 5 --output docs/benchmarks.md
"""Epoch time of coco_panoptic's training data pipeline with `task.cache` none, memory and disk.

The pipeline is the task's own: its data module (`get_datamodule`) on the bundled 128x128 scenes (256
training images) with the README's CPU sizes (task.crop_size=128), its training loader (batch 16,
shuffled per epoch), decoding (JPEG + panoptic PNG), flip, scale jitter, crop, normalise, pad and collate.
Each round builds a fresh data module (a new process's memory cache is empty) and empties the disk
cache folder ($FRAMEWORK_DATA_DIR is pointed at a temporary folder, where the bundled scenes are
generated once), then loads two epochs: the first fills the cache, the second reads it. Sides alternate
per round; medians compared. Every side must give the same batches (checked by a checksum of each
epoch's images and panoptic maps), or the benchmark fails.

One process, one torch thread, engine.data_workers=0 by default (--workers N to load in N workers:
each worker then has its own memory cache, and a shuffled second epoch finds only the samples its
worker read the first time).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from datetime import date
from pathlib import Path

from common import ROOT, machine, median_rounds, publish

MODES = ("none", "memory", "disk")


def _data_module(mode: str, workers: int):
    from framework.config import Node, parse_overrides
    from framework.config.grid import expand
    from framework.config.registry import Registry

    registry = Registry()
    overrides = ["tasks=coco_panoptic", "task.crop_size=128", "task.eval_short=128", "task.eval_max_size=512",
                 f"task.cache={mode}", f"engine.data_workers={workers}"]
    config = Node(dict(expand(parse_overrides(overrides), registry)[0].config))
    return registry.get("task", "coco_panoptic").load().get_datamodule(config)


def _epochs(mode: str, workers: int, cache_dir: Path, checksums: dict[str, list[float]]) -> tuple[float, float]:
    """Seconds of the first and the second epoch of a fresh data module."""
    import torch

    shutil.rmtree(cache_dir / "decoded", ignore_errors=True)
    datamodule = _data_module(mode, workers)
    datamodule.prepare_data()
    datamodule.setup("fit")
    loader = datamodule.train_dataloader()
    times, sums = [], []
    for epoch in range(2):
        loader.sampler.set_epoch(epoch)
        torch.manual_seed(epoch)  # the augmentation's draws (workers=0: the global generator)
        start = time.perf_counter()
        total = 0.0
        for batch in loader:
            total += float(batch.images.double().sum()) + sum(float(t.panoptic.sum()) for t in batch.targets)
        times.append(time.perf_counter() - start)
        sums.append(total)
    reference = checksums.setdefault("none", sums)  # the first call loads without a cache
    if sums != reference:
        raise SystemExit(f"task.cache={mode} gave other batches than task.cache=none: {sums} vs {reference}")
    return times[0], times[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--output", default=str(ROOT / "docs" / "benchmarks.md"), help="'-' prints only")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    cache_dir = Path(tempfile.mkdtemp(prefix="data_cache_bench_"))
    os.environ["FRAMEWORK_DATA_DIR"] = str(cache_dir)
    first: dict[str, list[float]] = {mode: [] for mode in MODES}
    checksums: dict[str, list[float]] = {}
    _epochs("none", args.workers, cache_dir, checksums)  # generates the bundled scenes; warms imports

    def second_epoch(mode: str):
        def side() -> float:
            one, two = _epochs(mode, args.workers, cache_dir, checksums)
            first[mode].append(one)
            return two
        return side

    print("second-epoch seconds per side", flush=True)
    medians, rows = median_rounds({mode: second_epoch(mode) for mode in MODES}, args.rounds)
    shutil.rmtree(cache_dir, ignore_errors=True)
    ratio = {mode: medians["none"] / medians[mode] for mode in MODES}
    first_median = {mode: statistics.median(v) for mode, v in first.items()}
    snippet = "\n".join([
        f"Measured {date.today().isoformat()} with `python benchmarks/data_cache.py --rounds {args.rounds} "
        f"--workers {args.workers}` on {machine()}; one torch thread, engine.data_workers={args.workers}. The machine "
        "has 2 CPUs shared with other jobs, so absolute times vary between rounds; the sides alternate per round. "
        "Epoch time of coco_panoptic's training loader (256 bundled 128x128 scenes, crop 128, batch 16), seconds "
        "(lower is better).",
        "",
        "| round | none | memory | disk | none / memory | none / disk |",
        "|---|---|---|---|---|---|",
        *(f"| {i} | {r['none']:.3f} | {r['memory']:.3f} | {r['disk']:.3f} | {r['none'] / r['memory']:.2f} | "
          f"{r['none'] / r['disk']:.2f} |" for i, r in enumerate(rows, 1)),
        f"| **median, 2nd epoch** | **{medians['none']:.3f}** | **{medians['memory']:.3f}** | **{medians['disk']:.3f}** "
        f"| **{ratio['memory']:.2f}** | **{ratio['disk']:.2f}** |",
        f"| median, 1st epoch (fills the cache) | {first_median['none']:.3f} | {first_median['memory']:.3f} | "
        f"{first_median['disk']:.3f} | {first_median['none'] / first_median['memory']:.2f} | "
        f"{first_median['none'] / first_median['disk']:.2f} |",
        "",
        f"Second epoch, no cache / cache (medians): memory **{ratio['memory']:.2f}x**, disk **{ratio['disk']:.2f}x** "
        "(target >= 1.5x). Every side gave the same batches (checksums of images and panoptic maps).",
    ])
    publish(snippet, args.output, "data_cache")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

# (imported by benchmarks/panoptic_quality.py and benchmarks/panoptic_pipeline.py; not run by itself)
"""What the vision benchmarks share: the machine's description, writing a marked section of
docs/benchmarks.md, and synthetic panoptic predictions written as COCO-format files."""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Callable

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def machine() -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{cpu} ({os.cpu_count()} CPUs), Python {platform.python_version()}, torch {torch.__version__}"


def write_section(path: Path, name: str, snippet: str) -> None:
    """Replace the section between `<!-- name: begin -->` and `<!-- name: end -->` (or append it)."""
    begin, end = f"<!-- {name}: begin -->", f"<!-- {name}: end -->"
    body = f"{begin}\n{snippet.strip()}\n{end}"
    text = path.read_text() if path.exists() else ""
    if begin in text and end in text:
        text = text[: text.index(begin)] + body + text[text.index(end) + len(end):]
    else:
        text = (text.rstrip("\n") + "\n\n" if text else "") + body + "\n"
    path.write_text(text)


def median_rounds(sides: dict[str, Callable[[], float]], rounds: int) -> tuple[dict[str, float], list[dict[str, float]]]:
    """Each side's result per round, the sides in alternating order (a slow spell of a shared machine
    then hits every side alike), and the medians."""
    rows = []
    names = list(sides)
    for index in range(rounds):
        order = names if index % 2 == 0 else names[::-1]
        row = {name: sides[name]() for name in order}
        rows.append({name: row[name] for name in names})
        print("  ".join(f"{name} {value:.3f}" for name, value in rows[-1].items()), flush=True)
    return {name: statistics.median(r[name] for r in rows) for name in names}, rows


def seconds(work: Callable[[], object]) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def write_predictions(root: Path, split: str, out: Path, seed: int = 0) -> Path:
    """COCO-format panoptic predictions for the ground truth of `root`/`split`, written to `out` (json
    + PNGs): the ground truth shifted by a few pixels, a fifth of the things given another thing class,
    an occasional thing dropped, a false square added, void filled by a neighbouring segment. Every
    predicted pixel belongs to a segment (torchmetrics counts unassigned prediction pixels differently
    from COCO, see framework/vision/metrics/panoptic.py)."""
    from PIL import Image

    from framework.vision.coco import panoptic_dir, panoptic_file
    from framework.vision.images import id_to_rgb, read_panoptic_png

    rng = np.random.default_rng(seed)
    gt = json.loads(panoptic_file(root, split).read_text())
    things = [c["id"] for c in gt["categories"] if c["isthing"]]
    (out / "pred").mkdir(parents=True, exist_ok=True)
    annotations = []
    for ann in gt["annotations"]:
        ids = read_panoptic_png(panoptic_dir(root, split) / ann["file_name"])
        shift = tuple(int(v) for v in rng.integers(-3, 4, 2))
        pred = np.roll(ids, shift, axis=(0, 1))
        # void takes the id of the pixel above it (or of the first segment at the top)
        for row in range(pred.shape[0]):
            hole = pred[row] == 0
            pred[row, hole] = pred[row - 1, hole] if row else ann["segments_info"][0]["id"]
        segments = []
        for segment in ann["segments_info"]:
            category = segment["category_id"]
            if category in things and rng.random() < 0.1:
                pred[pred == segment["id"]] = ann["segments_info"][0]["id"]  # dropped: a miss
                continue
            if category in things and rng.random() < 0.2:
                category = int(rng.choice(things))
            segments.append({"id": segment["id"], "category_id": category})
        y, x = (int(v) for v in rng.integers(0, min(pred.shape) - 12, 2))
        pred[y : y + 12, x : x + 12] = 1  # a false square with its own id
        segments.append({"id": 1, "category_id": int(rng.choice(things))})
        segments = [s for s in segments if (pred == s["id"]).any()]
        Image.fromarray(id_to_rgb(pred)).save(out / "pred" / ann["file_name"])
        annotations.append({"image_id": ann["image_id"], "file_name": ann["file_name"], "segments_info": segments})
    path = out / "pred.json"
    path.write_text(json.dumps({"annotations": annotations, "categories": gt["categories"]}))
    return path

# python -m pytest tests/test_gpu_check.py
"""benchmarks/gpu_check.py's own code on the CPU: the tiny presets through the same steps that time the
real-size models on a GPU, and its section of the markdown file."""

from __future__ import annotations

import importlib
import os
import sys

from tests.conftest import REPO


def test_the_tiny_check_measures_every_case_and_writes_its_section(tmp_path):
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        gpu_check = importlib.import_module("gpu_check")
    finally:
        sys.path.remove(str(REPO / "benchmarks"))
    output = tmp_path / "estimation.md"
    output.write_text("# Estimated cost\n\nkept\n")
    assert gpu_check.main(["--tiny", "--steps", "2", "--pipeline-batches", "1", "--output", str(output)]) == 0
    text = output.read_text()
    assert text.startswith("# Estimated cost\n\nkept\n") and "<!-- gpu-check: begin -->" in text
    rows = [line.split(" | ") for line in text.splitlines() if line.startswith("| coco_") or line.startswith("| semantic")
            or line.startswith("| classification")]
    assert [r[0].strip("| ") for r in rows] == ["coco_panoptic", "coco_detection", "semantic_segmentation", "classification"]
    for row in rows:  # step ms, samples/s, pipeline samples/s per core, cores: measured, positive
        assert all(float(row[i]) > 0 for i in (5, 6, 8)) and float(row[9].strip(" |")) > 0
    # the real-size cases are the ones the issue names, at the recipe's sizes
    assert [(c.model, c.batch) for c in gpu_check.CASES] == [("mask2former-swin-tiny", 8), ("detr-r50", 8),
                                                             ("segformer-b0", 16), ("vit-b16", 64)]


def test_the_shell_wrapper_runs_the_python_script_under_a_time_limit():
    script = REPO / "benchmarks" / "gpu_check.sh"
    assert os.access(script, os.X_OK)
    assert "timeout 480 python benchmarks/gpu_check.py" in script.read_text()

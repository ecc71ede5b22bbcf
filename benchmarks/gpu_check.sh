#!/usr/bin/env bash
# benchmarks/gpu_check.sh [--steps N] [--output FILE]
# One GPU, four real-size models (Mask2Former Swin-T 1024 px bf16 batch 8, DETR-R50, SegFormer-B0,
# ViT-B/16), 100 steps each: step time, samples/s, peak memory and the input pipeline's samples/s per CPU
# core, written into docs/estimation.md's "GPU check" section (benchmarks/gpu_check.py says how).
# Under 8 minutes on one GPU; the timeout stops it from holding a node longer.
set -euo pipefail
cd "$(dirname "$0")/.."
exec timeout 480 python benchmarks/gpu_check.py "$@"

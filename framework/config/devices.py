"""Which device a run trains on and in which precision, decided without training anything.

Two users: the Trainer options (framework.training.trainer_options), which must pick what the run
really computes in, and the run_id (grid.py), which must name the same thing, so a CPU run and a GPU
run of one configuration never share a run directory. torch is imported only inside the functions:
importing the config package stays light (tests/test_config.py checks it).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

FULL_PRECISIONS = ("32-true", "64-true")  # every device has these; the others (config.PRECISIONS) may fall back
# sbatch options that ask SLURM for GPUs, by their long name with "-" written "_"
_GPU_OPTIONS = ("gpus", "gpus_per_node", "gpus_per_task", "gpus_per_socket", "gpu_bind", "gpu_freq",
                "cpus_per_gpu", "mem_per_gpu")


def device_type(accelerator: str) -> str:
    """The kind of device Lightning will pick for `engine.accelerator`: cuda, mps or cpu (or the name given)."""
    if accelerator in ("auto", "gpu"):
        import torch

        if torch.cuda.is_available():
            return "cuda"
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return "mps"
        return "cpu"
    return accelerator


def trained_precision(requested: str, device: str, bf16_supported: bool | None = None) -> str:
    """The precision a run on `device` actually trains in (pure: no warning). Half precision where the
    device cannot do it trains in 32-true: every half precision on a CPU (autocast there is slow and
    not what a GPU run computes), and bf16 on a CUDA GPU without bf16 (before Ampere), not fp16, which
    would need loss scaling the user did not ask for. `bf16_supported` None asks torch (on a GPU)."""
    if requested in FULL_PRECISIONS:
        return requested
    if device == "cpu":
        return "32-true"
    if device == "cuda" and requested.startswith("bf16"):
        if bf16_supported is None:
            import torch

            bf16_supported = torch.cuda.is_bf16_supported()
        if not bf16_supported:
            return "32-true"
    return requested


def resolve_precision(requested: str, device: str) -> str:
    """`trained_precision` on this machine, with a warning when it falls back: a grid written for GPUs
    still runs on a laptop rather than failing."""
    precision = trained_precision(requested, device)
    if precision != requested:
        warnings.warn(
            f"engine.precision={requested} is not supported on this {device}; training in {precision} (full precision). "
            f"The run_id records {precision}: this is the same run as one asked for in {precision}",
            stacklevel=2,
        )
    return precision


def _asks_for_gpus(sbatch_args: Mapping[str, Any]) -> bool:
    for key, value in sbatch_args.items():
        name = str(key).replace("-", "_")
        if name in _GPU_OPTIONS or (name in ("gres", "tres_per_task") and "gpu" in str(value)):
            return True
    return False


def identity_device(engine: Mapping[str, Any]) -> str:
    """The device kind a run's identity records (cuda, mps, cpu, or the accelerator named).

    `auto` and `gpu` are resolved where the run will train. With the local executor that is this
    machine (as Lightning will see it). With the slurm executor the grid is expanded on a login node
    that often has no GPU, so the rule reads the request instead: a cell that asks SLURM for GPUs
    (`engine.accelerator` gpu or cuda, or `engine.sbatch_args` gres=gpu..., gpus, gpus_per_node, ...)
    trains on cuda; one that asks for none trains on cpu.
    """
    accelerator = str(engine.get("accelerator", "auto"))
    if accelerator not in ("auto", "gpu"):
        return accelerator
    if engine.get("executor") != "slurm":
        return device_type(accelerator)
    # the slurm executor asks for engine.devices GPUs per cell itself when the accelerator is gpu
    return "cuda" if accelerator == "gpu" or _asks_for_gpus(engine.get("sbatch_args") or {}) else "cpu"


def identity_precision(engine: Mapping[str, Any], device: str) -> str:
    """The precision a run's identity records: what it trains in on `device`. Whether a CUDA GPU has
    bf16 is asked only when this machine has one and the run trains here: a login node cannot know
    which GPU a SLURM job gets, so there bf16 counts as supported (scores.json train.precision says
    what a run really trained in)."""
    requested = str(engine.get("precision", "32-true"))
    bf16_supported = None
    if device == "cuda" and (engine.get("executor") == "slurm" or device_type("auto") != "cuda"):
        bf16_supported = True
    return trained_precision(requested, device, bf16_supported)


__all__ = ["FULL_PRECISIONS", "device_type", "identity_device", "identity_precision", "resolve_precision",
           "trained_precision"]

"""Prodigy (Mishchenko & Defazio, 2024): Adam whose step size D is estimated on the fly, with the task's
schedule and per-group learning-rate multipliers."""

from __future__ import annotations

import contextlib
import io
from typing import Any

import torch

from framework.api import GroupedModel, build_scheduler, check_values

try:
    from prodigyopt import Prodigy
except ImportError as exc:  # the plugin is listed as broken with this hint instead of a bare import error
    raise ImportError("the prodigy optimizer needs prodigyopt: pip install prodigyopt") from exc


class GroupScaledProdigy(Prodigy):
    """Prodigy that honours each parameter group's learning rate.

    prodigyopt takes one step size for all groups and refuses groups whose lr differ (other than 0). So
    every group with a non-zero lr steps at the largest lr, as the library requires, and each group's
    update is then scaled by its lr over that largest: w <- w_old + (lr_group / lr_max) (w_stepped - w_old).
    Both parts of the update (the Adam-like step and the decoupled weight decay) are proportional to the
    lr, so this is the step the group would take at its own lr; the D estimate sees the distance the
    weights actually travelled. A group at lr 0 stays where it is (the library would still apply weight
    decay to it) and out of the D estimate (where the library leaves it).
    """

    def step(self, closure=None):
        loss = None
        if closure is not None:  # gradients first: the parameters that step are those with one
            with torch.enable_grad():
                loss = closure()
        peak = max(group["lr"] for group in self.param_groups)
        scaled = [(group, group["lr"]) for group in self.param_groups if group["lr"] < peak]
        with torch.no_grad():
            before = [[p.detach().clone() for p in group["params"] if p.grad is not None] for group, _ in scaled]
            try:
                for group, lr in scaled:
                    if lr > 0:  # lr 0 stays 0: the library leaves such groups out of the D estimate
                        group["lr"] = peak
                super().step()
            finally:
                for group, lr in scaled:
                    group["lr"] = lr
            for (group, lr), old in zip(scaled, before):
                stepped = [p for p in group["params"] if p.grad is not None]
                for p, p_old in zip(stepped, old):
                    p.lerp_(p_old, 1.0 - lr / peak)  # (lr / peak) * stepped + (1 - lr / peak) * old
        return loss


def configure_optimizers(model: GroupedModel, config: Any) -> dict[str, Any]:
    opt = config.optimizer
    ranges = {"learning_rate": "(0, inf)", "weight_decay": "[0, inf)", "beta1": "[0, 1)", "beta2": "[0, 1)",
              "eps": "(0, inf)", "d0": "(0, inf)", "d_coef": "(0, inf)"}
    if opt.beta3 is not None:  # null: the library uses sqrt(beta2)
        ranges["beta3"] = "[0, 1)"
    check_values(opt, ranges)
    with contextlib.redirect_stdout(io.StringIO()):  # the library prints a line per run when decay is decoupled
        optimizer = GroupScaledProdigy(
            model.param_groups(opt.learning_rate, opt.weight_decay),
            lr=opt.learning_rate,
            betas=(opt.beta1, opt.beta2),
            beta3=opt.beta3,
            eps=opt.eps,
            decouple=opt.decouple,
            use_bias_correction=opt.use_bias_correction,
            safeguard_warmup=opt.safeguard_warmup,
            d0=opt.d0,
            d_coef=opt.d_coef,
        )
    return {"optimizer": optimizer, "lr_scheduler": build_scheduler(optimizer, config.schedule, config.run.total_steps)}

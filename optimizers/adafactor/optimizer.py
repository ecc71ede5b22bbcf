"""Adafactor (Shazeer & Stern, 2018): factored second moments and steps relative to the weights' scale,
with the task's warm-up + decay schedule."""

from __future__ import annotations

from typing import Any

import torch

from framework.api import GroupedModel, build_scheduler, check_values

if not hasattr(torch.optim, "Adafactor"):  # listed as broken with this hint rather than failing each run
    raise ImportError(f"the adafactor optimizer needs torch.optim.Adafactor, which torch {torch.__version__} lacks: upgrade torch")


def configure_optimizers(model: GroupedModel, config: Any) -> dict[str, Any]:
    opt = config.optimizer
    ranges = {"learning_rate": "(0, inf)", "weight_decay": "[0, inf)", "beta2_decay": "(-inf, 0]",
              "eps2": "[0, inf)", "clip_threshold": "[1, inf)"}
    if opt.eps1 is not None:  # null: torch picks the machine epsilon of each parameter's dtype
        ranges["eps1"] = "[0, inf)"
    check_values(opt, ranges)
    # torch's Adafactor takes lr as the cap of the relative step size rho_t = min(lr, 1 / sqrt(t)); the
    # step itself is rho_t times the parameter's RMS. So the shared schedule and the groups' multipliers
    # scale it as they scale any other optimizer's lr. Weight decay is decoupled: w *= 1 - lr * wd.
    optimizer = torch.optim.Adafactor(
        model.param_groups(opt.learning_rate, opt.weight_decay),
        beta2_decay=opt.beta2_decay,
        eps=(opt.eps1, opt.eps2),
        d=opt.clip_threshold,
    )
    return {"optimizer": optimizer, "lr_scheduler": build_scheduler(optimizer, config.schedule, config.run.total_steps)}

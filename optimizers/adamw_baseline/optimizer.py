"""AdamW (Loshchilov & Hutter, 2019) with the task's warm-up + decay schedule: the benchmark's reference."""

from __future__ import annotations

from typing import Any

import torch

from framework.api import GroupedModel, build_scheduler, check_values


def configure_optimizers(model: GroupedModel, config: Any) -> dict[str, Any]:
    opt = config.optimizer
    # torch.optim.AdamW checks the values it is called with, not the groups' lr, weight decay: a negative
    # value would train.
    check_values(opt, {"learning_rate": "(0, inf)", "weight_decay": "[0, inf)", "beta1": "[0, 1)", "beta2": "[0, 1)",
                       "eps": "(0, inf)"})
    optimizer = torch.optim.AdamW(
        model.param_groups(opt.learning_rate, opt.weight_decay),
        betas=(opt.beta1, opt.beta2),
        eps=opt.eps,
    )
    return {"optimizer": optimizer, "lr_scheduler": build_scheduler(optimizer, config.schedule, config.run.total_steps)}

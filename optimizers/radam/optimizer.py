"""RAdam (Liu et al., 2020): Adam whose adaptive step is switched on only once its variance estimate is
reliable, with decoupled weight decay by default and the task's schedule."""

from __future__ import annotations

from typing import Any

import torch

from framework.api import GroupedModel, build_scheduler, check_values


def configure_optimizers(model: GroupedModel, config: Any) -> dict[str, Any]:
    opt = config.optimizer
    check_values(opt, {"learning_rate": "(0, inf)", "weight_decay": "[0, inf)", "beta1": "[0, 1)", "beta2": "[0, 1)",
                       "eps": "(0, inf)"})
    optimizer = torch.optim.RAdam(
        model.param_groups(opt.learning_rate, opt.weight_decay),
        betas=(opt.beta1, opt.beta2),
        eps=opt.eps,
        decoupled_weight_decay=opt.decoupled_weight_decay,
    )
    return {"optimizer": optimizer, "lr_scheduler": build_scheduler(optimizer, config.schedule, config.run.total_steps)}

"""NAdamW: Adam with Nesterov momentum (Dozat, 2016) and decoupled weight decay, with the task's schedule."""

from __future__ import annotations

from typing import Any

import torch

from framework.api import GroupedModel, build_scheduler, check_values


def configure_optimizers(model: GroupedModel, config: Any) -> dict[str, Any]:
    opt = config.optimizer
    check_values(opt, {"learning_rate": "(0, inf)", "weight_decay": "[0, inf)", "beta1": "[0, 1)", "beta2": "[0, 1)",
                       "eps": "(0, inf)", "momentum_decay": "[0, inf)"})
    optimizer = torch.optim.NAdam(
        model.param_groups(opt.learning_rate, opt.weight_decay),
        betas=(opt.beta1, opt.beta2),
        eps=opt.eps,
        momentum_decay=opt.momentum_decay,
        decoupled_weight_decay=True,  # the "W": decay shrinks weights by lr * wd, as in AdamW
    )
    return {"optimizer": optimizer, "lr_scheduler": build_scheduler(optimizer, config.schedule, config.run.total_steps)}

"""Adam (Kingma & Ba, 2015) with coupled L2 weight decay and the task's warm-up + decay schedule."""

from __future__ import annotations

from typing import Any

import torch

from framework.api import GroupedModel, build_scheduler, check_values


def configure_optimizers(model: GroupedModel, config: Any) -> dict[str, Any]:
    opt = config.optimizer
    check_values(opt, {"learning_rate": "(0, inf)", "weight_decay": "[0, inf)", "beta1": "[0, 1)", "beta2": "[0, 1)",
                       "eps": "(0, inf)"})
    # Adam adds weight_decay * w to the gradient (L2), so the decay is rescaled by the adaptive
    # denominator: the difference to adamw_baseline that this plugin exists to measure.
    optimizer = torch.optim.Adam(
        model.param_groups(opt.learning_rate, opt.weight_decay),
        betas=(opt.beta1, opt.beta2),
        eps=opt.eps,
        amsgrad=opt.amsgrad,
    )
    return {"optimizer": optimizer, "lr_scheduler": build_scheduler(optimizer, config.schedule, config.run.total_steps)}

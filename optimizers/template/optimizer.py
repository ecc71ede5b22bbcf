"""Template optimizer plugin: copy this folder to optimizers/<your_name>/ and edit it.

The contract is one function, `configure_optimizers(model, config)`, returning anything that
`LightningModule.configure_optimizers` may return. Run it with

    framework run tasks=digits optimizers=<your_name>

Checklist after copying:
1. rename `optimizer.name` in default.yaml to the new folder name;
2. add every hyperparameter your optimizer reads to default.yaml, with a comment saying why that
   default (the type of the default is the type the command line must give);
3. replace the first prose line of README.md: `framework optimizers` shows it.
"""

from __future__ import annotations

from typing import Any

# Heavy imports are fine here: the engine imports this file only when a run uses this optimizer.
import torch

from framework.api import GroupedModel, build_scheduler, check_values


def configure_optimizers(model: GroupedModel, config: Any) -> dict[str, Any]:
    """Build the optimizer and its learning-rate schedule.

    model:  the task's network wrapped in a GroupedModel. `model.param_groups(lr, weight_decay)`
            gives torch.optim-ready groups: the task's own groups (e.g. a backbone at 0.1x lr) split
            into decay / no_decay (biases, norms and embeddings get weight_decay 0). Use it rather
            than `model.parameters()`, so per-group multipliers and the decay split are respected.
    config: the run's frozen configuration. Your hyperparameters are in `config.optimizer`
            (from default.yaml, overridden by experiments and the command line); the task's
            learning-rate schedule is in `config.schedule`;
            `config.run.total_steps` is the number of optimizer steps of the whole run.
    """
    opt = config.optimizer
    # Check every value first: a bad one fails the run with one line naming its key
    # ("optimizer.beta1: must be in [0, 1), got 1.5"). torch.optim does not check the groups' lr and
    # weight decay, so a negative one would otherwise train.
    check_values(opt, {"learning_rate": "(0, inf)", "weight_decay": "[0, inf)", "beta1": "[0, 1)", "beta2": "[0, 1)",
                       "eps": "(0, inf)"})
    # Extra keywords to param_groups are copied into every group, e.g. per-group betas.
    groups = model.param_groups(opt.learning_rate, opt.weight_decay)
    # Plain Adam applies weight decay as an L2 term added to the gradient (not decoupled as in AdamW).
    optimizer = torch.optim.Adam(groups, betas=(opt.beta1, opt.beta2), eps=opt.eps)
    # The schedule is the task's recipe (config.schedule: name, warmup_steps, decay_milestones, ...), the
    # same for every optimizer: pass that section, never your own. Always return it (even for a constant
    # lr) so every run logs the same learning-rate trace.
    scheduler = build_scheduler(optimizer, config.schedule, config.run.total_steps)
    return {"optimizer": optimizer, "lr_scheduler": scheduler}

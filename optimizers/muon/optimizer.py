"""Muon (Jordan et al., 2024) on the hidden weight matrices and AdamW on every other parameter, as one
optimizer with the task's warm-up + decay schedule.

Which parameters go to Muon: the 2-D ones that get weight decay (GroupedModel's decay groups), i.e. the
weight matrices of linear layers. Biases, norms, embeddings and learned tokens (the no-decay groups),
convolution kernels (torch.optim.Muon takes 2-D parameters only) and the parameters named by
`optimizer.muon_exclude` (e.g. a classifier head) go to AdamW. Both parts keep each group's lr and
weight-decay multipliers.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from framework.api import NO_DECAY, GroupedModel, ParameterGroup, build_scheduler, check_values

if not hasattr(torch.optim, "Muon"):  # listed as broken with this hint rather than failing each run
    raise ImportError(f"the muon optimizer needs torch.optim.Muon, which torch {torch.__version__} lacks: upgrade torch")


class Combined(torch.optim.Optimizer):
    """Several torch optimizers stepped as one.

    Lightning's automatic optimization and the shared LambdaLR each take a single optimizer. This one's
    `param_groups` are the parts' own group dicts and its `state` is the one dict all parts write into,
    so the schedule's lr changes reach every part, and the base class's `state_dict` and
    `load_state_dict` save and restore all of them as one checkpoint entry.
    """

    def __init__(self, parts: Iterable[torch.optim.Optimizer]):
        self.parts = list(parts)
        super().__init__([group for part in self.parts for group in part.param_groups], defaults={})
        self._share()

    def _share(self) -> None:
        """Point every part at this optimizer's group dicts and state (again after loading a state dict,
        which replaces both)."""
        start = 0
        for part in self.parts:
            count = len(part.param_groups)
            part.param_groups = self.param_groups[start:start + count]
            part.state = self.state
            start += count

    def step(self, closure=None):
        loss = None
        if closure is not None:  # Lightning computes the loss and gradients in the closure: once, here
            with torch.enable_grad():
                loss = closure()
        for part in self.parts:
            part.step()
        return loss

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        self._share()


def _muon_parameters(model: GroupedModel, exclude: tuple[str, ...]) -> set[int]:
    """ids of the parameters Muon trains: 2-D, in a decay group, not under an excluded name prefix."""
    excluded = {id(p) for p in ParameterGroup.from_prefix(model.model, exclude).params} if exclude else set()
    chosen = set()
    for group in model.parameter_groups():
        if group.name.endswith("/" + NO_DECAY):
            continue
        for param in group.params:
            if param.ndim == 2 and id(param) not in excluded:
                chosen.add(id(param))
    return chosen


def configure_optimizers(model: GroupedModel, config: Any) -> dict[str, Any]:
    opt = config.optimizer
    check_values(
        opt,
        {"learning_rate": "(0, inf)", "weight_decay": "[0, inf)", "momentum": "[0, 1)", "ns_steps": "[1, 99]",
         "beta1": "[0, 1)", "beta2": "[0, 1)", "eps": "(0, inf)"},
        {"adjust_lr": ("match_rms_adamw", "original")},
    )
    exclude = tuple(str(e).rstrip(".") for e in opt.muon_exclude)
    names = [n for g in model.parameter_groups() for n in g.names]
    if unmatched := [e for e in exclude if not ParameterGroup.from_prefix(model.model, e).params]:
        raise ValueError(f"optimizer.muon_exclude: {', '.join(map(repr, unmatched))} matches no parameter "
                         f"(names look like {', '.join(names[:3])})")
    muon_ids = _muon_parameters(model, exclude)
    muon_groups, adamw_groups = [], []
    for group in model.param_groups(opt.learning_rate, opt.weight_decay):
        muon = [p for p in group["params"] if id(p) in muon_ids]
        adamw = [p for p in group["params"] if id(p) not in muon_ids]
        if muon:
            muon_groups.append({**group, "params": muon, "name": f"{group['name']}/muon"})
        if adamw:
            adamw_groups.append({**group, "params": adamw})
    parts = []
    if muon_groups:
        parts.append(torch.optim.Muon(
            muon_groups, momentum=opt.momentum, nesterov=opt.nesterov, ns_steps=opt.ns_steps, adjust_lr_fn=opt.adjust_lr,
        ))
    if adamw_groups:
        parts.append(torch.optim.AdamW(adamw_groups, betas=(opt.beta1, opt.beta2), eps=opt.eps))
    optimizer = Combined(parts)
    return {"optimizer": optimizer, "lr_scheduler": build_scheduler(optimizer, config.schedule, config.run.total_steps)}

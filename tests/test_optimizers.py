# python -m pytest tests/test_optimizers.py   (the digits runs are slow, a minute on an idle 2-CPU machine: -m "not slow" skips them)
"""The optimizer library: documented defaults, the learning rate and weight decay each parameter group
receives, and a short real training run on digits per optimizer."""

from __future__ import annotations

import copy
import re

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from framework.config import Node, parse_overrides
from framework.config.grid import expand
from framework.config.registry import Registry
from framework.config.schedules import schedule_from_config
from framework.training.optimizer_modes import has_modes
from framework.training.parameter_groups import GroupedModel, ParameterGroup

REGISTRY = Registry()
OPTIMIZERS = sorted(REGISTRY.optimizers)  # every discovered optimizer: a new plugin is checked at once
# The bundled library, with a learning rate that suits 400 steps of digits. Several defaults are set for
# longer runs of larger models: at their defaults Lion (1e-4), RAdam (1e-3) and Muon (1e-3) reach only
# 78 to 87 % test accuracy here, the others 93 to 99 %.
DIGITS_LR = {
    "adafactor": 3e-2, "adam": 3e-3, "adamw_baseline": 3e-3, "adamw_schedulefree": 2.5e-3, "lion": 1e-3,
    "muon": 1e-2, "nadamw": 3e-3, "prodigy": 1.0, "radam": 1e-2, "sgd_baseline": 0.1, "sgd_stepwise": 0.1,
}


def resolved(optimizer: str, *overrides: str, total_steps: int = 10) -> Node:
    """The run configuration of `optimizer` on digits, as the engine resolves it."""
    (spec,) = expand(parse_overrides(["tasks=digits", f"optimizers={optimizer}", *overrides]), REGISTRY)
    return Node({**spec.config, "run": {"total_steps": total_steps}})


def test_the_library_is_bundled():
    assert set(DIGITS_LR) <= set(REGISTRY.optimizers)


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_every_hyperparameter_says_why(optimizer):
    """Each key of an optimizer's default.yaml carries a comment (its value's source)."""
    lines = (REGISTRY.optimizers[optimizer].path / "default.yaml").read_text().splitlines()
    keys = [line for line in lines if re.match(r"^\s+[A-Za-z_][\w]*:", line)]  # indented: the hyperparameters
    assert keys, "no hyperparameters found"
    assert [line for line in keys if "#" not in line] == []


class Triplets(nn.Module):
    """Three copies of one linear layer, summed: every copy gets the same gradient, so after the first
    step their moves differ only by their groups' learning rates."""

    def __init__(self):
        super().__init__()
        layer = nn.Linear(6, 4).double()  # float64: the update ratios are exact to ~1e-15
        self.full, self.tenth, self.frozen = layer, copy.deepcopy(layer), copy.deepcopy(layer)

    def forward(self, x):
        return self.full(x) + self.tenth(x) + self.frozen(x)


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_each_group_gets_its_learning_rate_multiplier(optimizer):
    """Through the plugin's own configure_optimizers and the task's schedule (with a warm-up): every group's
    lr is base lr x its lr_multiplier x the schedule at every step; the first step moves the 0.1x copy by
    exactly a tenth of the 1x copy's move (weights and biases, weight decay included); the 0x copy never
    moves."""
    steps = 6
    config = resolved(optimizer, "schedule.warmup_steps=2", "optimizer.weight_decay=0.1", total_steps=steps)
    net = Triplets()
    model = GroupedModel(net, [ParameterGroup.from_prefix(net, "tenth", lr_multiplier=0.1),
                               ParameterGroup.from_prefix(net, "frozen", lr_multiplier=0.0)])
    configured = REGISTRY.get("optimizer", optimizer).load().configure_optimizers(model, config)
    opt, scheduler = configured["optimizer"], configured["lr_scheduler"]["scheduler"]
    if has_modes(opt):
        opt.train()  # what the engine's OptimizerModes does before the first step
    factor, base = schedule_from_config(config.schedule, steps), config.optimizer.learning_rate
    generator = torch.Generator().manual_seed(0)
    x, y = torch.randn(16, 6, generator=generator, dtype=torch.float64), torch.randn(16, 4, generator=generator, dtype=torch.float64)
    start = {name: p.detach().clone() for name, p in net.named_parameters()}

    def closure():  # as Lightning steps: the optimizer calls it for the loss and the gradients
        opt.zero_grad()
        loss = F.mse_loss(net(x), y)
        loss.backward()
        return loss

    assert {g["lr_multiplier"] for g in opt.param_groups} == {1.0, 0.1, 0.0}
    for step in range(steps):
        for group in opt.param_groups:
            assert group["lr"] == pytest.approx(base * group["lr_multiplier"] * factor(step), rel=1e-12), group["name"]
        opt.step(closure)
        scheduler.step()
        if step == 0:
            for kind in ("weight", "bias"):
                full = getattr(net.full, kind).detach() - start[f"full.{kind}"]
                tenth = getattr(net.tenth, kind).detach() - start[f"tenth.{kind}"]
                assert full.abs().max() > 0, f"the first step did not move full.{kind}"
                torch.testing.assert_close(tenth, 0.1 * full, rtol=1e-9, atol=1e-15)
        for kind in ("weight", "bias"):
            assert torch.equal(getattr(net.frozen, kind).detach(), start[f"frozen.{kind}"]), f"frozen.{kind} moved at lr 0"


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_a_reloaded_state_continues_identically(optimizer):
    """What a resumed run relies on: an optimizer and schedule rebuilt by the plugin and given the saved
    state dicts take exactly the steps the original takes."""
    config = resolved(optimizer, total_steps=8)
    plugin = REGISTRY.get("optimizer", optimizer).load()
    torch.manual_seed(0)
    # float32, as runs train: torch's NAdam casts its float32 step state to a float64 parameter's dtype on
    # loading, so in float64 a reloaded NAdam would differ in the last bits.
    nets = [nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 4))]
    nets.append(copy.deepcopy(nets[0]))
    generator = torch.Generator().manual_seed(1)
    batches = [(torch.randn(16, 6, generator=generator), torch.randn(16, 4, generator=generator)) for _ in range(6)]

    def build(net):
        configured = plugin.configure_optimizers(GroupedModel(net), config)
        return configured["optimizer"], configured["lr_scheduler"]["scheduler"]

    def train(net, opt, scheduler, steps):
        if has_modes(opt):
            opt.train()
        for x, y in steps:
            opt.zero_grad()
            F.mse_loss(net(x), y).backward()
            opt.step()
            scheduler.step()

    original = build(nets[0])
    train(nets[0], *original, batches[:3])
    nets[1].load_state_dict(nets[0].state_dict())
    resumed = build(nets[1])
    resumed[0].load_state_dict(copy.deepcopy(original[0].state_dict()))  # a copy, as a checkpoint file is
    resumed[1].load_state_dict(copy.deepcopy(original[1].state_dict()))
    train(nets[0], *original, batches[3:])
    train(nets[1], *resumed, batches[3:])
    for a, b in zip(nets[0].parameters(), nets[1].parameters()):
        assert torch.equal(a, b)


@pytest.mark.parametrize(
    ("optimizer", "override", "message"),
    [
        ("adam", "optimizer.beta1=1.5", "optimizer.beta1: must be in [0, 1), got 1.5"),
        ("lion", "optimizer.weight_decay=-0.1", "optimizer.weight_decay: must be in [0, inf), got -0.1"),
        ("adamw_schedulefree", "optimizer.beta1=0", "optimizer.beta1: must be in (0, 1), got 0.0"),
        ("prodigy", "optimizer.d_coef=0", "optimizer.d_coef: must be in (0, inf), got 0.0"),
        ("muon", "optimizer.adjust_lr=rms", "optimizer.adjust_lr: must be one of match_rms_adamw, original, got 'rms'"),
        ("muon", "optimizer.muon_exclude=[head]", "optimizer.muon_exclude: 'head' matches no parameter"),
        ("adafactor", "optimizer.clip_threshold=0.5", "optimizer.clip_threshold: must be in [1, inf), got 0.5"),
        ("adamw_baseline", "optimizer.beta2=1", "optimizer.beta2: must be in [0, 1), got 1.0"),
        ("sgd_baseline", "optimizer.momentum=1.5", "optimizer.momentum: must be in [0, 1), got 1.5"),
    ],
)
def test_bad_values_fail_with_one_line_naming_the_key(optimizer, override, message):
    net = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2))
    with pytest.raises(ValueError) as caught:
        REGISTRY.get("optimizer", optimizer).load().configure_optimizers(GroupedModel(net), resolved(optimizer, override))
    assert message in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize(("key", "interval"), [("weight_decay", "[0, inf)"), ("learning_rate", "(0, inf)")])
@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_every_optimizer_refuses_a_negative_value(optimizer, key, interval):
    """Every plugin (template included: copies of it are new plugins) checks its values: a negative weight
    decay or learning rate fails with one line naming the key, not a silent run or torch's keyless message."""
    net = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2))
    with pytest.raises(ValueError) as caught:
        REGISTRY.get("optimizer", optimizer).load().configure_optimizers(
            GroupedModel(net), resolved(optimizer, f"optimizer.{key}=-0.1"))
    assert f"optimizer.{key}: must be in {interval}, got -0.1" in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.slow
@pytest.mark.parametrize("optimizer", sorted(DIGITS_LR))
def test_a_few_hundred_steps_learn_digits(optimizer, tmp_path):
    """A real run through the engine (fit, then the best and last checkpoints validated and tested)."""
    from framework.training.run import execute

    (spec,) = expand(parse_overrides([
        "tasks=digits", f"optimizers={optimizer}", f"optimizer.learning_rate={DIGITS_LR[optimizer]}",
        "task.max_epochs=20", f"engine.output_dir={tmp_path}",
    ]), REGISTRY)
    outcome = execute(spec, REGISTRY)
    assert outcome.state == "done", outcome.error
    assert outcome.scores["train"]["global_step"] == 400  # 20 epochs of 20 batches
    accuracy = outcome.scores["last"]["test_acc"]
    print(f"{optimizer}: test_acc {accuracy:.4f} (best checkpoint {outcome.scores['best']['test_acc']:.4f})")
    assert accuracy >= 0.9, f"{optimizer} reached only {accuracy:.3f} test accuracy on digits after 400 steps"


class Mixed(nn.Module):
    """One parameter of every kind the weight-decay split knows: a linear weight and bias, a convolution
    kernel (3-D: Muon leaves it to its AdamW part) and bias, a LayerNorm's scale and shift, an embedding."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(10, 6)
        self.conv = nn.Conv1d(6, 6, 3, padding=1)
        self.linear = nn.Linear(6, 4)
        self.norm = nn.LayerNorm(4)


# What each parameter must get, written out rather than asked of GroupedModel: the split is what is tested.
DECAYED = {"conv.weight", "linear.weight"}
NOT_DECAYED = {"embed.weight", "conv.bias", "linear.bias", "norm.weight", "norm.bias"}


def _decay_by_parameter(opt: torch.optim.Optimizer, net: nn.Module) -> dict[str, float]:
    """Each parameter's weight decay, read from the torch group that holds it."""
    name_of = {id(p): n for n, p in net.named_parameters()}
    decay: dict[str, float] = {}
    for group in opt.param_groups:
        for param in group["params"]:
            assert name_of[id(param)] not in decay, f"{name_of[id(param)]} is in two groups"
            decay[name_of[id(param)]] = group["weight_decay"]
    return decay


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_no_decay_parameters_get_no_weight_decay(optimizer):
    """Through the plugin's own configure_optimizers: every torch parameter group (of every part, for an
    optimizer made of several, like Muon's Muon + AdamW) holds each weight matrix or kernel at the
    configured weight decay and each bias, norm parameter and embedding at 0. Then what the decay does:
    one step from the same weights with the same small gradients, once with weight decay and once
    without: the no-decay parameters land exactly where they land without decay, the decayed ones are
    pulled towards zero. (Not a step with zero gradients: Prodigy skips such a step altogether.)"""
    plugin = REGISTRY.get("optimizer", optimizer).load()
    torch.manual_seed(0)
    nets = {0.1: Mixed().double()}  # float64: Prodigy's first decay (d0 x lr x wd = 1e-7) is below float32's resolution
    nets[0.0] = copy.deepcopy(nets[0.1])
    start = {name: p.detach().clone() for name, p in nets[0.1].named_parameters()}
    # small next to wd x weight, so even Adam's coupled L2 changes the sign of a first step's gradient
    gradients = {name: 1e-3 * torch.randn_like(p) for name, p in start.items()}
    for weight_decay, net in nets.items():
        config = resolved(optimizer, f"optimizer.weight_decay={weight_decay}", "schedule.warmup_steps=0")
        opt = plugin.configure_optimizers(GroupedModel(net), config)["optimizer"]
        assert _decay_by_parameter(opt, net) == {**dict.fromkeys(DECAYED, weight_decay), **dict.fromkeys(NOT_DECAYED, 0.0)}
        if has_modes(opt):
            opt.train()
        for name, param in net.named_parameters():
            param.grad = gradients[name].clone()
        opt.step()
    decayed, plain = dict(nets[0.1].named_parameters()), dict(nets[0.0].named_parameters())
    for name in NOT_DECAYED:
        assert torch.equal(decayed[name].detach(), plain[name].detach()), f"{name} was decayed"
    for name in DECAYED:
        pull = (plain[name] - decayed[name]).detach()  # what the decay added: a step towards zero
        assert torch.dot(pull.flatten(), start[name].flatten()) > 0, f"{name} was not decayed"

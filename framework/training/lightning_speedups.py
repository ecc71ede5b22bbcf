"""Two behaviour-identical shortcuts in Lightning's per-step machinery, applied by `run.build`.

Lightning's automatic optimization runs about a thousand Python calls per training step; on a small
model that is more than the model's own work. Two of them are pure waste and are patched here:

1. `is_param_in_hook_signature` runs `inspect.getfullargspec(training_step)` on every step to decide
   whether `training_step` takes `batch_idx` (and the evaluation loops do the same per batch). The answer
   depends only on the function's code, so it is cached per (function, code object, question).
2. `_call_callback_hooks` runs each of about six hook rounds a step over every callback, and for each
   one builds a profiler label (computing `callback.state_key`, which for `ModelCheckpoint` formats a
   dict of its settings) and enters a profiler context, even for hooks the callback does not define
   (the base `Callback` hooks are empty). When the Trainer's profiler records nothing
   (`PassThroughProfiler` or the engine's `NoProfiler`), the patched function skips the label, the
   context and the empty base hooks; with any other profiler it does exactly what Lightning does.

Checked against lightning 2.6.6. Each patch is applied only where the function it replaces has exactly
the source it was checked against (a hash of `inspect.getsource`): on any other Lightning version the
patch is skipped silently and Lightning runs unchanged. Applying twice is harmless.
"""

from __future__ import annotations

import dis
import hashlib
import inspect
import logging
import types
import weakref
from typing import Any, Callable, Optional

# sha256 of `inspect.getsource` of each replaced function in lightning 2.6.6 (first 16 hex digits)
_CHECKED = {
    "is_param_in_hook_signature": "6bd4f22c778d7ccc",
    "_call_callback_hooks": "c413fb9a6a9ce1a3",
}
_applied: set[str] = set()


def _source_matches(fn: Any, name: str) -> bool:
    try:
        source = inspect.getsource(fn)
    except (OSError, TypeError):
        return False
    return getattr(fn, "__name__", None) == name and hashlib.sha256(source.encode()).hexdigest()[:16] == _CHECKED[name]


def _does_nothing(fn: Any) -> bool:
    """Whether `fn` is a plain function whose body only returns None (a docstring at most)."""
    if type(fn) is not types.FunctionType:
        return False
    harmless = {"RESUME", "NOP", "LOAD_CONST", "RETURN_CONST", "RETURN_VALUE"}
    instructions = list(dis.get_instructions(fn))
    return all(i.opname in harmless for i in instructions) and all(
        i.argval is None for i in instructions if i.opname in ("LOAD_CONST", "RETURN_CONST")
    )


def _patch_signature_cache() -> None:
    """Cache `is_param_in_hook_signature` per function: it runs `inspect.getfullargspec` each step."""
    from lightning.pytorch.loops import evaluation_loop, prediction_loop, training_epoch_loop, utilities
    from lightning.pytorch.utilities import signature_utils

    original = signature_utils.is_param_in_hook_signature
    if "is_param_in_hook_signature" in _applied or not _source_matches(original, "is_param_in_hook_signature"):
        return
    cache: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def is_param_in_hook_signature(
        hook_fx: Callable, param: str, explicit: bool = False, min_args: Optional[int] = None
    ) -> bool:
        # Only plain functions and methods are cached; their argspec depends on the code object (part of
        # the key, in case it is swapped) unless `__wrapped__` or `__signature__` redirect it: those and
        # every other callable go to Lightning's function as before.
        fn = getattr(hook_fx, "__func__", hook_fx)
        if type(fn) is not types.FunctionType or hasattr(fn, "__wrapped__") or hasattr(fn, "__signature__"):
            return original(hook_fx, param, explicit, min_args)
        answers = cache.get(fn)
        if answers is None:
            answers = cache[fn] = {}
        key = (fn.__code__, param, explicit, min_args)
        if key not in answers:
            answers[key] = original(hook_fx, param, explicit, min_args)
        return answers[key]

    # the loops import the function by name: replace it where they look it up
    for module in (signature_utils, training_epoch_loop, evaluation_loop, prediction_loop, utilities):
        if getattr(module, "is_param_in_hook_signature", None) is original:
            module.is_param_in_hook_signature = is_param_in_hook_signature
    _applied.add("is_param_in_hook_signature")


def _patch_callback_hooks() -> None:
    """Skip profiler labels and empty base hooks in `_call_callback_hooks` when nothing is profiled."""
    from lightning.pytorch.callbacks import Callback, Checkpoint, EarlyStopping
    from lightning.pytorch.profilers import PassThroughProfiler
    from lightning.pytorch.trainer import call

    from framework.training.callbacks import NoProfiler

    original = call._call_callback_hooks
    if "_call_callback_hooks" in _applied or not _source_matches(original, "_call_callback_hooks"):
        return
    silent = (PassThroughProfiler, NoProfiler)  # profilers whose contexts record nothing
    # `Callback`'s hooks whose bodies do nothing (all of its `on_*` hooks, `setup` and `teardown`), by name
    empty_hooks = {name: fn for name, fn in vars(Callback).items() if _does_nothing(fn)}
    log = call.log

    def _call_callback_hooks(
        trainer: Any, hook_name: str, *args: Any, monitoring_callbacks: Optional[bool] = None, **kwargs: Any
    ) -> None:
        if type(trainer.profiler) not in silent:
            return original(trainer, hook_name, *args, monitoring_callbacks=monitoring_callbacks, **kwargs)
        # Below: Lightning 2.6.6's function, less the profiler context (which does nothing here) and the
        # calls of hooks that are still `Callback`'s own (whose bodies are empty).
        if log.isEnabledFor(logging.DEBUG):
            log.debug(f"{trainer.__class__.__name__}: calling callback hook: {hook_name}")

        pl_module = trainer.lightning_module
        if pl_module:
            prev_fx_name = pl_module._current_fx_name
            pl_module._current_fx_name = hook_name

        callbacks = trainer.callbacks
        if monitoring_callbacks is True:
            callbacks = [cb for cb in callbacks if isinstance(cb, (EarlyStopping, Checkpoint))]
        elif monitoring_callbacks is False:
            callbacks = [cb for cb in callbacks if not isinstance(cb, (EarlyStopping, Checkpoint))]

        empty = empty_hooks.get(hook_name)
        for callback in callbacks:
            fn = getattr(callback, hook_name)
            if callable(fn) and (empty is None or getattr(fn, "__func__", None) is not empty):
                fn(trainer, trainer.lightning_module, *args, **kwargs)

        if pl_module:
            pl_module._current_fx_name = prev_fx_name

    call._call_callback_hooks = _call_callback_hooks
    _applied.add("_call_callback_hooks")


def apply() -> set[str]:
    """Apply every patch that fits the installed Lightning; returns the names of those in effect."""
    for patch in (_patch_signature_cache, _patch_callback_hooks):
        try:
            patch()
        except (ImportError, AttributeError):  # another Lightning layout: leave it as it is
            pass
    return set(_applied)

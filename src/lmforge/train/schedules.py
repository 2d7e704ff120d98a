"""`lr_scheduler_kwargs` against the schedule's own parameters, before anything loads.

transformers passes them to the schedule function when training starts, so a missing or misspelt one failed
after the model had loaded, as a TypeError (or ValueError) from inside the Trainer.
"""

import difflib
import inspect
import json
import logging
from typing import Any

from transformers.optimization import TYPE_TO_SCHEDULER_FUNCTION
from transformers.trainer_utils import SchedulerType

from lmforge.errors import ConfigError

logger = logging.getLogger(__name__)

# the arguments transformers passes itself
PASSED_BY_TRANSFORMERS = {"optimizer", "num_warmup_steps", "num_training_steps", "last_epoch"}
# schedules that take none of lr_scheduler_kwargs (transformers drops them: a warning says so)
IGNORES_KWARGS = {SchedulerType.CONSTANT, SchedulerType.CONSTANT_WITH_WARMUP}
# schedules that need exactly one of two optional arguments
ONE_OF = {SchedulerType.COSINE_WITH_MIN_LR: ("min_lr", "min_lr_rate"),
          SchedulerType.COSINE_WARMUP_WITH_MIN_LR: ("min_lr", "min_lr_rate")}


def _as_dict(kwargs: dict[str, Any] | str | None) -> dict[str, Any]:
    if isinstance(kwargs, str):  # transformers reads a JSON string, as from a command line
        try:
            kwargs = json.loads(kwargs)
        except json.JSONDecodeError as err:
            raise ConfigError(f"`lr_scheduler_kwargs`: not a mapping nor JSON text ({err})") from None
    if kwargs is not None and not isinstance(kwargs, dict):
        raise ConfigError(f"`lr_scheduler_kwargs` is a mapping of the schedule's arguments, got {kwargs!r}")
    return dict(kwargs or {})


def check_lr_scheduler(name: str | None, kwargs: dict[str, Any] | str | None) -> None:
    """Refuse `lr_scheduler_kwargs` that `lr_scheduler_type`'s function (default linear) would refuse."""
    schedule = SchedulerType(name or "linear")
    given = _as_dict(kwargs)
    signature = inspect.signature(TYPE_TO_SCHEDULER_FUNCTION[schedule]).parameters
    parameters = {key: p for key, p in signature.items()
                  if key not in PASSED_BY_TRANSFORMERS and p.kind is not p.VAR_KEYWORD}
    takes_any = any(p.kind is p.VAR_KEYWORD for p in signature.values())
    where = f"`lr_scheduler_type: {schedule.value}`"
    if schedule in IGNORES_KWARGS:
        if given:
            logger.warning("%s takes no `lr_scheduler_kwargs`: %s not used", where, ", ".join(sorted(given)))
        return
    if not takes_any:
        for key in given.keys() - parameters.keys():
            close = difflib.get_close_matches(key, list(parameters), n=1)
            hint = f" (did you mean `{close[0]}`?)" if close else ""
            raise ConfigError(f"{where}: `lr_scheduler_kwargs.{key}` is not one of its arguments{hint}; it takes "
                              f"{', '.join(parameters) or 'none'}")
    missing = [key for key, p in parameters.items() if p.default is p.empty and key not in given]
    if missing:
        raise ConfigError(f"{where} needs {' and '.join(f'`lr_scheduler_kwargs.{key}`' for key in missing)} "
                          f"(its arguments: {', '.join(parameters)})")
    if schedule in ONE_OF and sum(given.get(key) is not None for key in ONE_OF[schedule]) != 1:
        first, second = ONE_OF[schedule]
        raise ConfigError(f"{where} needs exactly one of `lr_scheduler_kwargs.{first}` (the final learning rate) "
                          f"and `lr_scheduler_kwargs.{second}` (it as a share of `learning_rate`), e.g. "
                          f"`lr_scheduler_kwargs: {{{second}: 0.1}}`")

"""The user's own reward functions: `reward_funcs: path/to/rewards.py:my_reward`.

The function is called as trl calls a reward function: keyword arguments `prompts` (the rendered prompt
texts), `completions` (texts), `completion_ids`, `trainer_state`, `log_extra`, `log_metric`, and one list
per dataset column, one value per completion; it returns one float (or None: not applicable) per
completion. It must take `**kwargs`; the parameters it names without a default besides those are the
dataset columns it needs, checked before any model loads. A file, name or signature that does not fit,
and a function that raises on a row, fail with the file, the function and the row.
"""

import hashlib
import importlib.util
import inspect
import math
from numbers import Real
from pathlib import Path
from typing import Any

from lmforge.data.prompts import SOURCE_COLUMN
from lmforge.errors import RewardError
from lmforge.train.rewards import Reward, RewardFunc

# What trl passes to every reward function itself (not dataset columns).
GIVEN = frozenset({"prompts", "completions", "completion_ids", "trainer_state", "log_extra", "log_metric",
                   "environments"})


def _module(path: Path, entry: str) -> Any:
    name = "lmforge_user_rewards_" + hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise RewardError(f"`reward_funcs: {entry}`: {path} cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as err:  # the user's module: any error it raises is theirs to see, named
        raise RewardError(f"`reward_funcs: {entry}`: importing {path} failed: {type(err).__name__}: {err}") from err
    return module


def _columns(func: Any, where: str) -> tuple[str, ...]:
    """The dataset columns `func` needs; a signature trl cannot call fails with the fix."""
    try:
        parameters = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return ()
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        names = ", ".join(p.name for p in parameters)
        raise RewardError(f"{where}: a reward function is called with keyword arguments for every dataset column "
                          f"and must accept the ones it does not name: add `**kwargs` to its parameters ({names})")
    positional = [p.name for p in parameters if p.kind in (inspect.Parameter.POSITIONAL_ONLY,
                                                             inspect.Parameter.VAR_POSITIONAL)]
    if positional:
        raise RewardError(f"{where}: every argument is passed by keyword; {', '.join(positional)} cannot be "
                          "(remove `/` or `*args`)")
    return tuple(p.name for p in parameters if p.kind is not inspect.Parameter.VAR_KEYWORD
                 and p.default is inspect.Parameter.empty and p.name not in GIVEN)


def load_user_reward(entry: str) -> Reward:
    """`path/to/file.py:function` (the path relative to the working folder) as a checked `Reward`."""
    file, _, name = entry.rpartition(":")
    path = Path(file).expanduser()
    if not name.isidentifier():
        raise RewardError(f"`reward_funcs: {entry}`: write `path/to/file.py:function_name`")
    if not path.is_file():
        raise RewardError(f"`reward_funcs: {entry}`: file not found: {path.resolve()} (relative paths start at "
                          "the folder lmforge runs in)")
    module = _module(path, entry)
    func = getattr(module, name, None)
    where = f"{path}:{name}"
    if func is None:
        functions = sorted(n for n, value in vars(module).items() if inspect.isfunction(value)
                           and value.__module__ == module.__name__)
        raise RewardError(f"`reward_funcs: {entry}`: {path} has no `{name}`; its functions: "
                          f"{', '.join(functions) or 'none'}")
    if not callable(func):
        raise RewardError(f"`reward_funcs: {entry}`: `{name}` in {path} is a {type(func).__name__}, not a function")
    if inspect.iscoroutinefunction(func):
        raise RewardError(f"{where}: async reward functions are not supported by lmforge yet; make it a plain def")
    return Reward(name, _checked(func, name, path), _columns(func, where), f"{where}")


def _rows(kwargs: dict[str, Any], count: int, index: int) -> dict[str, Any]:
    """The keyword arguments of completion `index` alone (lists of one)."""
    return {key: value[index:index + 1] if isinstance(value, list) and len(value) == count else value
            for key, value in kwargs.items()}


def _checked(func: RewardFunc, name: str, path: Path) -> RewardFunc:
    """`func`, with a failure named by file, function and row, and its answer checked."""
    def reward(**kwargs: Any) -> list[float | None]:
        count = len(kwargs["completions"])
        sources = kwargs.get(SOURCE_COLUMN) or ["?"] * count
        try:
            scores = func(**kwargs)
        except Exception as err:  # the user's code: report it with the row that makes it fail
            for index in range(count):
                try:
                    func(**_rows(kwargs, count, index))
                except Exception as row_err:
                    raise RewardError(
                        f"{path}: reward function `{name}` raised {type(row_err).__name__}: {row_err} on row "
                        f"{sources[index]} (completion {kwargs['completions'][index]!r:.120})") from row_err
            raise RewardError(f"{path}: reward function `{name}` raised {type(err).__name__}: {err} on the batch of "
                              f"rows {', '.join(dict.fromkeys(sources))} (no row fails alone)") from err
        if not isinstance(scores, list | tuple) or len(scores) != count:
            got = f"{len(scores)} values" if isinstance(scores, list | tuple) else type(scores).__name__
            raise RewardError(f"{path}: reward function `{name}` returned {got} for {count} completions: return a "
                              "list with one float (or None) per completion")
        for index, score in enumerate(scores):
            if score is not None and not (isinstance(score, Real) and not isinstance(score, bool)
                                          and math.isfinite(score)):
                raise RewardError(f"{path}: reward function `{name}` returned {score!r} for row {sources[index]}: "
                                  "each reward must be a finite number or None")
        return [None if score is None else float(score) for score in scores]

    reward.__name__ = name
    return reward

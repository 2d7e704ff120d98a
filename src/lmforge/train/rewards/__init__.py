"""Rewards of the online RL stages: builtin rules, the user's own Python functions, a reward model.

A `reward_funcs` entry is a builtin name (a `BuiltinReward` registered by a module of this package) or
`path/to/file.py:function` (`user.py`); `reward_model` adds a scoring model (`model.py`). Each becomes a
`Reward`: a function trl's trainers call as `func(prompts=..., completions=..., completion_ids=...,
**columns)` with one value per completion (None: not applicable), and the dataset columns it needs, which
preflight checks before any model loads (`required_columns`).
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from lmforge.config.groups import RlGroup
from lmforge.data.templates.template import Template
from lmforge.errors import ConfigError, RewardError
from lmforge.registry import Registry

RewardFunc = Callable[..., list[float | None]]
USER_SEPARATOR = ".py:"  # `path/to/file.py:function`


@dataclass(frozen=True)
class RewardContext:
    """What a builtin reward may read besides the completions: the RL keys and the run's template."""

    rl: RlGroup
    template: Template


@dataclass(frozen=True)
class Reward:
    name: str  # logged as rewards/<name>/mean and /std
    func: RewardFunc
    columns: tuple[str, ...] = ()  # dataset columns it reads
    origin: str = ""  # where it comes from, for messages


@dataclass(frozen=True)
class BuiltinReward:
    name: str
    make: Callable[[RewardContext], RewardFunc]
    description: str
    columns: Callable[[RlGroup], tuple[str, ...]] = lambda rl: ()
    check: Callable[[RlGroup], str | None] = lambda rl: None  # a key this reward needs, or None


REWARDS: Registry[BuiltinReward] = Registry("reward", ConfigError, package=__name__)


def register_reward(reward: BuiltinReward, aliases: tuple[str, ...] = ()) -> BuiltinReward:
    return REWARDS.register(reward.name, reward, aliases)


def is_user_reward(entry: str) -> bool:
    return USER_SEPARATOR in entry


def builtin_problems(rl: RlGroup) -> list[str]:
    """Unknown builtin names and keys a builtin needs, without loading anything."""
    problems = []
    for entry in rl.reward_funcs or []:
        if is_user_reward(entry):
            continue
        try:
            builtin = REWARDS.get(entry)
        except ConfigError as err:
            problems.append(f"`reward_funcs`: {err} (or `path/to/file.py:function` for your own)")
            continue
        if message := builtin.check(rl):
            problems.append(message)
    count = len(rl.reward_funcs or []) + bool(rl.reward_model)
    if rl.reward_weights is not None and len(rl.reward_weights) != count:
        problems.append(f"`reward_weights` has {len(rl.reward_weights)} values for {count} rewards (reward_funcs "
                        "in order, then reward_model): give one weight per reward")
    return problems


def build_rewards(rl: RlGroup, template: Template, reward_model: Reward | None = None) -> list[Reward]:
    """The rewards `reward_funcs` names, in order, then the reward model (already loaded) when there is one."""
    from lmforge.train.rewards.user import load_user_reward

    ctx = RewardContext(rl, template)
    rewards = []
    for entry in rl.reward_funcs or []:
        if is_user_reward(entry):
            rewards.append(load_user_reward(entry))
        else:
            builtin = REWARDS.get(entry)
            rewards.append(Reward(builtin.name, _named(builtin.make(ctx), builtin.name), builtin.columns(rl),
                                  f"builtin reward `{builtin.name}`"))
    if reward_model is not None:
        rewards.append(reward_model)
    names = [reward.name for reward in rewards]
    if len(set(names)) != len(names):
        raise RewardError(f"two rewards share a name ({', '.join(names)}): their logs would mix; rename one")
    return rewards


def required_columns(rl: RlGroup) -> dict[str, list[str]]:
    """column -> the rewards of `reward_funcs` that read it (user functions are imported to read their
    signatures; nothing else loads)."""
    from lmforge.train.rewards.user import load_user_reward

    needed: dict[str, list[str]] = {}
    for entry in rl.reward_funcs or []:
        if is_user_reward(entry):
            reward = load_user_reward(entry)
            columns, origin = reward.columns, reward.origin
        else:
            columns, origin = REWARDS.get(entry).columns(rl), f"builtin reward `{entry}`"
        for column in columns:
            needed.setdefault(column, []).append(origin)
    return needed


def _named(func: RewardFunc, name: str) -> RewardFunc:
    func.__name__ = name  # trl logs a reward under its function's name
    return func


def completion_texts(completions: Sequence[Any]) -> list[str]:
    """Completions as plain text (trl passes strings for text prompts, message lists for conversations)."""
    return [item if isinstance(item, str) else item[0]["content"] for item in completions]

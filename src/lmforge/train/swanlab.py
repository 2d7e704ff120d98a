"""SwanLab experiment tracking (`use_swanlab`), through SwanLab's own transformers callback as in LLaMA-Factory.

The first process logs: the run starts when training does, with the Lark notifier among the run's callbacks
when `swanlab_lark_webhook_url` is set, and ends with the command (SwanLab finishes it at exit).
"""

from typing import Any

from transformers import TrainerCallback

from lmforge.config.swanlab import SwanlabGroup


def init_kwargs(group: SwanlabGroup) -> dict[str, Any]:
    """`swanlab.init`'s arguments from the keys (unset ones left to SwanLab)."""
    kwargs = {"project": group.swanlab_project, "workspace": group.swanlab_workspace,
              "experiment_name": group.swanlab_run_name, "mode": group.swanlab_mode, "log_dir": group.swanlab_logdir}
    return {key: value for key, value in kwargs.items() if value is not None}


def active_run() -> bool:
    import swanlab

    try:
        swanlab.get_run()  # raises when no run was started
    except RuntimeError:
        return False
    return True


class _StartRun(TrainerCallback):
    """Starts the run before SwanLab's callback would, so the Lark notifier is one of the run's callbacks
    (`swanlab.init` takes them; SwanLab's transformers callback starts a run without)."""

    def __init__(self, kwargs: dict[str, Any], notifiers: list[Any]) -> None:
        self.kwargs = kwargs
        self.notifiers = notifiers

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        import swanlab

        if state.is_world_process_zero and not active_run():
            swanlab.init(callbacks=self.notifiers, **self.kwargs)


def swanlab_callbacks(group: SwanlabGroup) -> list[TrainerCallback]:
    """The callbacks that log this run to SwanLab (log in first when `swanlab_api_key` is given)."""
    import swanlab
    from swanlab.integration.transformers import SwanLabCallback

    if group.swanlab_api_key:
        swanlab.login(api_key=group.swanlab_api_key)
    callbacks: list[TrainerCallback] = []
    if group.swanlab_lark_webhook_url:
        from swanlab.plugin.notification import LarkCallback

        notifier = LarkCallback(webhook_url=group.swanlab_lark_webhook_url, secret=group.swanlab_lark_secret)
        callbacks.append(_StartRun(init_kwargs(group), [notifier]))
    callbacks.append(SwanLabCallback(**init_kwargs(group)))
    return callbacks

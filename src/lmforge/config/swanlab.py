"""The SwanLab group: LLaMA-Factory's experiment tracking keys for SwanLab (`use_swanlab`, `swanlab_*`)."""

from typing import Literal

from pydantic import Field

from lmforge.config.groups_base import Group


class SwanlabGroup(Group):
    use_swanlab: bool = Field(
        False, description="Log the run's metrics and config to SwanLab (needs `pip install \"lmforge[swanlab]\"`).")
    swanlab_project: str = Field("llamafactory", description="SwanLab: the project the run belongs to.")
    swanlab_workspace: str | None = Field(
        None, description="SwanLab: the workspace (organisation) of the project; default your own.")
    swanlab_run_name: str | None = Field(None, description="SwanLab: the experiment's name; default one SwanLab makes.")
    swanlab_mode: Literal["cloud", "local", "offline", "disabled"] = Field(
        "cloud", description="SwanLab: `cloud` uploads as it trains, `local` for the self-hosted dashboard, "
                             "`offline` only writes `swanlab_logdir` (upload later with `swanlab sync`), `disabled`.")
    swanlab_logdir: str | None = Field(None, description="SwanLab: the folder of its local files; default ./swanlog.")
    swanlab_api_key: str | None = Field(
        None, description="SwanLab: log in with this key (else a previous `swanlab login` or SWANLAB_API_KEY).")
    swanlab_lark_webhook_url: str | None = Field(
        None, description="SwanLab: a Lark (Feishu) bot webhook told when the run ends or fails.")
    swanlab_lark_secret: str | None = Field(None, description="SwanLab: the Lark bot's signing secret.")

"""What every config group shares: extra keys forbidden, assignments validated, LLaMA-Factory's lists."""

from pydantic import BaseModel, ConfigDict


def split_list(value: object) -> object:
    """LLaMA-Factory writes lists as comma-separated strings (`dataset: a,b`); accept both."""
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


class Group(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=())

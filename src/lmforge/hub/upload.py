"""Uploads a run ends with (`push_to_hub` after training, `export_hub_model_id` after an export), checked before
any work: an offline machine or a missing login is told at once, not after hours of training or a merge."""

from lmforge.hub.resolve import hub_offline


def hub_upload_problem(setting: str, repo_id: str, folder: str, token: str | None) -> str | None:
    """Why the upload `setting` (the key as written) to `repo_id` cannot happen here, or None; `folder`: where the
    result stays when the key is removed; `token`: the one the config gives (else HF_TOKEN or the saved login)."""
    upload_later = f"then upload the folder where a hub is reachable (`hf upload {repo_id} {folder}`)"
    if hub_offline():
        return (f"{setting} uploads to the Hugging Face hub, and no hub is reachable (HF_HUB_OFFLINE=1): remove the "
                f"key to keep the result in {folder}, {upload_later}")
    from huggingface_hub import get_token

    if token is None and get_token() is None:
        return (f"{setting} uploads to the Hugging Face hub, and no login was found: `hf auth login`, HF_TOKEN or "
                f"`hf_hub_token`; or remove the key to keep the result in {folder}, {upload_later}")
    return None

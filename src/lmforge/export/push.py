"""`export_hub_model_id`: upload the verified export folder to the Hugging Face hub (LLaMA-Factory pushes its
export there too). Checked before any work (`hub/upload.py`), so an offline machine is told at once, not after the
merge."""

from pathlib import Path

from lmforge.errors import ExportError
from lmforge.hub.upload import hub_upload_problem


def check_push(repo_id: str | None, export_dir: str, token: str | None) -> None:
    if repo_id and (problem := hub_upload_problem(f"`export_hub_model_id: {repo_id}`", repo_id, export_dir, token)):
        raise ExportError(problem)


def push_export(export_dir: Path, repo_id: str, token: str | None) -> str:
    """Create the repository when it does not exist, upload the folder as one commit; returns its URL."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    api = HfApi(token=token)
    try:
        api.create_repo(repo_id, exist_ok=True)
        commit = api.upload_folder(folder_path=str(export_dir), repo_id=repo_id,
                                   commit_message="Export from lmforge (merged and verified)")
    except (HfHubHTTPError, OSError) as err:
        raise ExportError(f"`export_hub_model_id: {repo_id}`: the upload failed ({err}); the export in {export_dir} "
                          "is complete: log in (`hf auth login`, HF_TOKEN or `hf_hub_token`) and upload it with "
                          f"`hf upload {repo_id} {export_dir}`") from None
    return str(commit.commit_url)

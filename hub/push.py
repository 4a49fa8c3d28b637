"""`pite push`: upload a folder written by `pite export` to a Hub model repo (credentials: `hf auth login` or
HF_TOKEN)."""

from __future__ import annotations

import os

from .export import check_export_folder
from .files import require_directory


def push_to_hub(
    folder: str | os.PathLike,
    repo_id: str,
    private: bool = False,
    commit_message: str = "Upload PiTe checkpoint",
    create_pr: bool = False,
) -> str:
    """Check `folder` is a complete, portable export for `repo_id`, create the repo if needed, upload the folder.

    The README must load `repo_id` (export with `--repo-id`), so that the card's demo works once published.
    Returns the URL of the commit (or pull request).
    """
    from huggingface_hub import HfApi

    folder = require_directory(folder, "OUT_DIR").absolute()
    problems = check_export_folder(folder, forbidden=(folder,))
    readme = folder / "README.md"
    if readme.is_file() and f'"{repo_id}"' not in readme.read_text(encoding="utf-8"):
        problems.append(f"README.md does not load {repo_id!r}: export again with --repo-id {repo_id}")
    if problems:
        raise ValueError(f"{folder} is not ready to push:\n  " + "\n  ".join(problems))
    api = HfApi()
    api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
    commit = api.upload_folder(
        repo_id=repo_id,
        folder_path=os.fspath(folder),
        repo_type="model",
        commit_message=commit_message,
        create_pr=create_pr,
    )
    return str(getattr(commit, "pr_url", None) or getattr(commit, "commit_url", commit))

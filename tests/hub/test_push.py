"""`pite push`: everything up to the upload (the Hub calls themselves are replaced: no network here)."""

from __future__ import annotations

import shutil

import pytest
from huggingface_hub import HfApi

from pite.cli.main import main as pite_main
from pite.hub import push_to_hub

from .conftest import EXPORT_REPO_ID


class RecordedHub:
    """Stands in for HfApi.create_repo / upload_folder and records their arguments."""

    def __init__(self, monkeypatch):
        self.calls = []
        monkeypatch.setattr(
            HfApi, "create_repo", lambda api, repo_id, **kw: self.calls.append(("create_repo", repo_id, kw))
        )

        def upload_folder(api, **kw):
            self.calls.append(("upload_folder", kw["repo_id"], kw))
            return type(
                "CommitInfo", (), {"pr_url": None, "commit_url": f"https://hub.example/{kw['repo_id']}/commit/1"}
            )()

        monkeypatch.setattr(HfApi, "upload_folder", upload_folder)


def test_push_creates_the_repo_and_uploads_the_folder(exported_dir, monkeypatch, capsys):
    hub = RecordedHub(monkeypatch)
    assert pite_main(["push", str(exported_dir), "--repo-id", EXPORT_REPO_ID, "--private"]) == 0
    assert [name for name, _, _ in hub.calls] == ["create_repo", "upload_folder"]
    _, repo_id, create_kwargs = hub.calls[0]
    assert repo_id == EXPORT_REPO_ID and create_kwargs == {"repo_type": "model", "private": True, "exist_ok": True}
    upload = hub.calls[1][2]
    assert upload["folder_path"] == str(exported_dir) and upload["repo_type"] == "model"
    assert upload["commit_message"] == "Upload PiTe checkpoint" and upload["create_pr"] is False
    assert f"https://hub.example/{EXPORT_REPO_ID}/commit/1" in capsys.readouterr().out


def test_push_refuses_a_card_for_another_repo(exported_dir, monkeypatch, capsys):
    hub = RecordedHub(monkeypatch)
    assert pite_main(["push", str(exported_dir), "--repo-id", "other/pite"]) == 2
    assert "--repo-id other/pite" in capsys.readouterr().err and hub.calls == []


def test_push_refuses_incomplete_or_machine_specific_folders(exported_dir, tmp_path, monkeypatch):
    hub = RecordedHub(monkeypatch)
    folder = shutil.copytree(exported_dir, tmp_path / "copy")
    (folder / "notes.txt").write_text("features cached in /scratch/me/features\n")
    (folder / "processing_pite.py").unlink()
    (folder / "time_pite.py").unlink()
    with pytest.raises(ValueError) as error:
        push_to_hub(folder, EXPORT_REPO_ID)
    message = str(error.value)
    assert "notes.txt: absolute path" in message
    assert "processing_pite.PiTeProcessor but processing_pite.py is missing" in message
    assert "postprocessing_pite.py imports .time_pite but time_pite.py is missing" in message
    assert hub.calls == []

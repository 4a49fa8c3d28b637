"""`pite extract-features` under torchrun (2 CPU processes, gloo): disjoint parts merged into the one-process cache,
and a killed process's part resumes without redoing its finished files."""

import os
import shutil
import subprocess

import pytest
import torch

from pite.cli.main import main
from pite.data.feature_cache import INDEX_NAME, FeatureCache, part_directory

from .launching import TORCHRUN_TWO_PROCESSES, launch_and_kill_one, launch_env, pids_of_rank


def _extract_command(model: str, media: str, output: str) -> list[str]:
    return [
        "extract-features",
        "--model",
        model,
        "--media-dir",
        media,
        "--output-dir",
        output,
        "--batch-size",
        "1",
        "--shard-size",
        "1",
        "--no-progress",
    ]


def _shard_files(output) -> dict[str, tuple[int, int]]:
    """path -> (inode, mtime in ns) of every features shard under the cache folder."""
    found = {}
    for root, _, names in os.walk(output):
        for name in names:
            if name.startswith("features-"):
                stat = os.stat(os.path.join(root, name))
                found[os.path.relpath(os.path.join(root, name), output)] = (stat.st_ino, stat.st_mtime_ns)
    return found


def _indexed(directory) -> set[str]:
    if not os.path.isfile(os.path.join(directory, INDEX_NAME)):
        return set()
    return set(FeatureCache(directory).index["entries"])


@pytest.mark.slow
def test_two_processes_extract_the_one_process_cache_and_a_killed_part_resumes(base_checkpoint, world, tmp_path):
    media = tmp_path / "media"
    media.mkdir()
    for folder in (world["images"], world["videos"]):
        for name in sorted(os.listdir(folder)):
            shutil.copy(os.path.join(folder, name), media / name)
    keys = sorted(os.listdir(media))  # img0..3.jpg, vid0..3.mp4: process 1 takes img1, img3, vid1, vid3
    assert len(keys) == 8 and keys[3] == "img3.jpg"

    reference = tmp_path / "one_process"
    assert main(_extract_command(base_checkpoint, str(media), str(reference))) == 0

    # Process 1 blocks on its second file, a FIFO nobody writes to, after storing its first: then it is killed.
    shutil.move(media / "img3.jpg", tmp_path / "img3.jpg")
    os.mkfifo(media / "img3.jpg")
    output = tmp_path / "two_processes"
    command = [
        *TORCHRUN_TWO_PROCESSES,
        "-m",
        "pite.cli.main",
        *_extract_command(base_checkpoint, str(media), str(output)),
    ]
    part0, part1 = part_directory(output, 0, 2), part_directory(output, 1, 2)

    def stuck_process(launcher) -> int:
        stuck = pids_of_rank(launcher.pid, 1)
        assert len(stuck) == 1
        return stuck[0]

    launch_and_kill_one(
        command,
        launch_env(),
        lambda: _indexed(part0) == set(keys[0::2]) and _indexed(part1) == {"img1.jpg"},
        stuck_process,
    )
    assert not os.path.exists(output / INDEX_NAME), "no merged index before every part has finished"
    finished = _shard_files(output)
    assert len(finished) == 5  # 4 of process 0 (one file per shard), img1 of process 1

    os.unlink(media / "img3.jpg")
    shutil.move(tmp_path / "img3.jpg", media / "img3.jpg")
    result = subprocess.run(command, env=launch_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    assert "process 0 of 2: features of 0 file(s)" in result.stdout and "(4 already cached" in result.stdout
    assert "process 1 of 2: features of 3 file(s)" in result.stdout and "(1 already cached" in result.stdout
    after = _shard_files(output)
    assert {path: after[path] for path in finished} == finished, "finished files were extracted again"

    one, two = FeatureCache(reference), FeatureCache(output)
    metadata = [{k: v for k, v in cache.index.items() if k != "entries"} for cache in (one, two)]
    assert metadata[0] == metadata[1]
    assert sorted(one.index["entries"]) == sorted(two.index["entries"]) == keys
    for key in keys:
        assert torch.equal(one.load(key), two.load(key)), key


def test_a_one_process_run_merges_left_over_parts_and_refuses_another_models_part(
    make_model, processor, world, tmp_path
):
    from pite.data.feature_cache import extract_features, merge_feature_parts

    model, output = make_model(), tmp_path / "cache"
    keys = sorted(os.listdir(world["images"]))
    # batch_size 1 everywhere: features of one file then do not depend on which files share its forward pass.
    part = extract_features(model, processor, world["images"], output, part=(1, 2), progress=False, batch_size=1)
    assert (part.extracted, part.directory) == (2, part_directory(output, 1, 2))
    assert not os.path.exists(output / INDEX_NAME), "a part alone writes no main index"

    report = extract_features(model, processor, world["images"], output, progress=False, batch_size=1)
    assert (report.extracted, report.already_cached) == (2, 2), "the part's files are not extracted again"
    cache = FeatureCache(output)
    assert sorted(cache.index["entries"]) == keys
    assert {cache.index["entries"][key].startswith("parts/00001-of-00002/") for key in keys[1::2]} == {True}
    reference = tmp_path / "reference"
    extract_features(model, processor, world["images"], reference, progress=False, batch_size=1)
    for key in keys:
        assert torch.equal(cache.load(key), FeatureCache(reference).load(key)), key

    extract_features(make_model(seed=1), processor, world["images"], tmp_path / "other", part=(0, 3), progress=False)
    shutil.move(part_directory(tmp_path / "other", 0, 3), part_directory(output, 0, 3))
    with pytest.raises(ValueError, match="another vision tower"):
        merge_feature_parts(output)

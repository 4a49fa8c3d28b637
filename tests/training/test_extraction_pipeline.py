"""`pite extract-features` with DataLoader workers: the same features as reading in the main process, timings
reported, bad options and unreadable files named."""

import os
import shutil

import pytest
import torch

from pite.cli.main import main as pite_main
from pite.data.extraction_pipeline import ExtractionTimes, load_batches
from pite.modeling_pite import PiTeForConditionalGeneration
from pite.training import FeatureCache, extract_features


@pytest.fixture(scope="module")
def media(tmp_path_factory, world):
    """The world's videos and images in one folder, plus an unreadable video."""
    folder = tmp_path_factory.mktemp("media")
    for kind in ("videos", "images"):
        for name in os.listdir(world[kind]):
            shutil.copy(os.path.join(world[kind], name), folder / name)
    (folder / "broken.mp4").write_bytes(b"not a video")
    return str(folder)


def test_workers_give_the_features_of_the_main_process(base_checkpoint, processor, media, tmp_path):
    model = PiTeForConditionalGeneration.from_pretrained(base_checkpoint).eval()
    caches = {}
    for workers in (0, 2):
        caches[workers] = str(tmp_path / f"workers{workers}")
        report = extract_features(
            model,
            processor,
            media,
            caches[workers],
            batch_size=3,
            progress=False,
            skip_bad_records=True,
            num_workers=workers,
        )
        assert report.extracted == 8 and list(report.failed) == ["broken.mp4"]
        times = report.times
        assert times.files == 9 and times.frames == 4 * processor.num_frames + 4  # 4 videos, 4 images
        assert times.read_s > 0 and times.tower_s > 0 and times.wall_s >= times.tower_s
        assert times.frames_per_s == pytest.approx(times.frames / times.wall_s)
    serial, parallel = FeatureCache(caches[0]), FeatureCache(caches[2])
    assert sorted(serial.index["entries"]) == sorted(parallel.index["entries"])
    for key in serial.index["entries"]:
        assert torch.equal(serial.load(key), parallel.load(key)), key
    assert serial.failed == parallel.failed


def test_batches_come_in_order_with_their_errors(processor, media):
    batches = [["vid0.mp4", "broken.mp4"], ["img1.jpg"], ["vid3.mp4"]]
    times = ExtractionTimes()
    loaded = list(load_batches(processor, media, batches, num_workers=2, times=times))
    assert [[item.key for item in batch] for batch in loaded] == batches
    assert loaded[0][1].pixels is None and "broken.mp4" in str(loaded[0][1].error)
    assert loaded[0][0].error is None and loaded[0][0].pixels.shape[0] == processor.num_frames
    assert times.files == 4
    with pytest.raises(ValueError, match="num_workers must be an integer >= 0, got -1"):
        list(load_batches(processor, media, batches, num_workers=-1))


def test_cli_reports_frames_per_second_and_refuses_bad_options(base_checkpoint, media, tmp_path, capsys):
    def extract(output_dir, *options):
        common = ["extract-features", "--model", base_checkpoint, "--media-dir", media, "--output-dir", output_dir]
        return pite_main([*common, *options])

    run_options = ["--no-progress", "--device", "cpu"]
    code = extract(str(tmp_path / "cache"), *run_options, "--num-workers", "1", "--files", "vid0.mp4", "img0.jpg")
    assert code == 0
    assert "frames/s (reading" in capsys.readouterr().out
    code = extract(str(tmp_path / "cache"), "--num-workers", "-2")
    assert code == 2
    assert "--num-workers must be >= 0, got -2" in capsys.readouterr().err
    code = extract(str(tmp_path / "other"), *run_options, "--files", "broken.mp4")
    assert code == 2
    assert "broken.mp4" in capsys.readouterr().err

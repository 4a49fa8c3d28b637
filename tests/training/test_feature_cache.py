"""`pite extract-features` and training from cached features: same batches, same training as from pixels."""

import json
import os
import shutil

import pytest
import torch

from pite.cli.main import main as pite_main
from pite.data.extraction_pipeline import media_pixels
from pite.modeling_pite import PiTeForConditionalGeneration
from pite.training import (
    BadRecordError,
    ExampleFeaturizer,
    FeatureCache,
    PiTeDataCollator,
    extract_features,
    load_stage_examples,
    run_stage,
)


@pytest.fixture(scope="module")
def caches(tmp_path_factory, base_checkpoint, world):
    """Feature caches of the world's images and videos, written by the `pite extract-features` command."""
    root = tmp_path_factory.mktemp("caches")
    out = {}
    for kind in ("images", "videos"):
        out[kind] = str(root / kind)
        code = pite_main(
            [
                "extract-features",
                "--model",
                base_checkpoint,
                "--media-dir",
                world[kind],
                "--output-dir",
                out[kind],
                "--batch-size",
                "3",
                "--no-progress",
                "--device",
                "cpu",
            ]
        )
        assert code == 0
    return out


def test_cache_holds_the_towers_features_of_every_file(caches, base_checkpoint, processor, world):
    model = PiTeForConditionalGeneration.from_pretrained(base_checkpoint).eval()
    cache = FeatureCache(caches["videos"])
    assert len(cache) == 4 and sorted(cache.index["entries"]) == [f"vid{i}.mp4" for i in range(4)]
    pixels = media_pixels(processor, os.path.join(world["videos"], "vid2.mp4"), "video")
    with torch.no_grad():
        expected = model.get_video_features(pixels[None]).pooler_output[0]
    torch.testing.assert_close(cache.load("vid2.mp4"), expected, rtol=0, atol=1e-6)
    assert FeatureCache(caches["images"]).load("img1.jpg").shape == (1, model.config.vision_feature_dim)


@pytest.mark.parametrize("stage, kind", [(1, "images"), (2, "videos")])
def test_cached_features_train_exactly_like_pixels(
    stage, kind, caches, base_checkpoint, processor, stage_data, tmp_path, cpu_overrides
):
    files, media = stage_data[stage]
    collator = PiTeDataCollator(pad_token_id=processor.tokenizer.pad_token_id)
    model = PiTeForConditionalGeneration.from_pretrained(base_checkpoint).eval()
    batches = {}
    for name, cache in (("pixels", None), ("cached", FeatureCache(caches[kind]))):
        featurizer = ExampleFeaturizer(processor, 3, 256, cache)
        examples, _ = load_stage_examples(stage, files, [media], featurizer)
        batches[name] = collator([featurizer(e) for e in examples[:2]])
    assert "video_features" in batches["cached"] and "video_features" not in batches["pixels"]
    with torch.no_grad():
        from_pixels, from_cache = (model(**batches[name]) for name in ("pixels", "cached"))
    torch.testing.assert_close(from_cache.logits, from_pixels.logits, rtol=0, atol=1e-5)
    torch.testing.assert_close(from_cache.loss, from_pixels.loss, rtol=0, atol=1e-6)

    trained = {}
    for name, cache_dir in (("pixels", None), ("cached", caches[kind])):
        run = run_stage(
            stage,
            base_checkpoint,
            str(tmp_path / name),
            files,
            media,
            overrides={**cpu_overrides, "max_steps": 3, "feature_cache_dir": cache_dir},
        )
        trained[name] = run.model.state_dict()
    for key, value in trained["pixels"].items():
        torch.testing.assert_close(trained["cached"][key], value, rtol=0, atol=1e-5, msg=key)


def test_cache_of_another_tower_is_refused(caches, make_model, processor, stage_data, tmp_path, cpu_overrides):
    other = make_model(seed=1)
    files, media = stage_data[2]
    with pytest.raises(ValueError, match="different vision tower"):
        run_stage(
            2,
            other,
            str(tmp_path / "out"),
            files,
            media,
            processor=processor,
            overrides={**cpu_overrides, "feature_cache_dir": caches["videos"]},
        )


def test_extraction_resumes_after_a_failure_and_can_skip_bad_files(
    base_checkpoint, processor, world, tmp_path, stage_data
):
    model = PiTeForConditionalGeneration.from_pretrained(base_checkpoint)
    videos = tmp_path / "videos"
    shutil.copytree(world["videos"], videos)
    (videos / "vid2.mp4").write_bytes(b"\x00" * 64)
    cache_dir = str(tmp_path / "cache")
    with pytest.raises(ValueError, match=r"cannot extract features of .*vid2.mp4"):
        extract_features(model, processor, videos, cache_dir, batch_size=1, shard_size=1, progress=False)
    assert sorted(FeatureCache(cache_dir).index["entries"]) == ["vid0.mp4", "vid1.mp4"]  # finished shards survive
    assert not [n for n in os.listdir(cache_dir) if n.startswith(".tmp")]

    report = extract_features(
        model, processor, videos, cache_dir, batch_size=2, shard_size=1, skip_bad_records=True, progress=False
    )
    assert (report.already_cached, report.extracted, list(report.failed)) == (2, 1, ["vid2.mp4"])
    cache = FeatureCache(cache_dir)
    assert sorted(cache.index["entries"]) == ["vid0.mp4", "vid1.mp4", "vid3.mp4"] and "vid2.mp4" in cache.failed
    with open(os.path.join(cache_dir, "index.json"), encoding="utf-8") as handle:
        assert len(set(json.load(handle)["entries"].values())) == 3  # one shard per file (shard_size=1)

    featurizer = ExampleFeaturizer(processor, 3, 256, cache)
    with pytest.raises(
        BadRecordError, match=r"\(video_id 'vid2'\): 'vid2.mp4' is not in the feature cache .*extraction failed"
    ):
        load_stage_examples(2, stage_data[2][0], [str(videos)], featurizer)

    shutil.copy(os.path.join(world["videos"], "vid2.mp4"), videos / "vid2.mp4")
    report = extract_features(model, processor, videos, cache_dir, progress=False)
    assert (report.already_cached, report.extracted, report.failed) == (3, 1, {})
    assert len(FeatureCache(cache_dir)) == 4 and not FeatureCache(cache_dir).failed


def test_one_cache_serves_every_stage_of_a_model(caches, base_checkpoint, stage_data, tmp_path, cpu_overrides):
    """The tower is frozen and the processor is saved with each stage, so stage 1's output still matches the cache."""
    from pite.core.loading import load_pite
    from pite.training import feature_fingerprint

    files, media = stage_data[1]
    run_stage(
        1,
        base_checkpoint,
        str(tmp_path / "s1"),
        files,
        media,
        overrides={**cpu_overrides, "max_steps": 1, "feature_cache_dir": caches["images"]},
    )
    model, processor = load_pite(str(tmp_path / "s1"))
    assert feature_fingerprint(model, processor) == FeatureCache(caches["videos"]).fingerprint

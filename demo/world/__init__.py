"""`pite.demo.world`: a deterministic synthetic world of moving coloured shapes, written in the real data formats.

`generate_world(out_dir, ...)` writes, under `out_dir`:

| path | format (DESIGN.md "Data files", docs/FORMATS.md) |
|---|---|
| `stage1/localized_narratives.jsonl`, `stage1/images/{image_id}.jpg` | Localized Narratives |
| `stage2/pite_train.jsonl`, `videos/train/{video_id}.mp4` | PiTe-143k style (events, spans, (P, N, 2) trajectories) |
| `stage3/valley_instruct.json`, `stage3/videoinstruct_100k.json` | Valley-Instruct, VideoInstruct-100K |
| `eval/videos/v_{name}.mp4` | held-out videos, ActivityNet naming |
| `eval/activitynet_captions/val_1.json` | ActivityNet Captions (grounding, dense captioning) |
| `eval/activitynet_qa/test_q.json`, `test_a.json` | ActivityNet-QA (`video_name` without `v_`, as published) |
| `eval/trajectories.jsonl` | PiTe-143k style ground truth of the held-out videos (`video` relative to `eval/videos`) |
| `world.json` | the manifest (`WorldManifest`, paths relative to `out_dir`) |

Every video, image and held-out video draws from its own generator `np.random.default_rng([seed, split, index])`:
splits never share a stream, and a video does not change when more are generated. Files are written atomically.
`world_corpus()` lists every text the demo will tokenize (for `pite.demo.tokenizer.train_llama_tokenizer`).
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pite.core.file_writing import write_json, write_jsonl

from .image import ImageScene, localized_narrative, render_image, sample_image_scene
from .io import available_video_codec, write_jpeg, write_mp4
from .scene import COLOURS, SHAPES, VideoScene, WorldConfig, render_video, sample_video_scene
from .text import (
    QA_TYPE_CODES,
    VideoQuestion,
    answer_vocabulary,
    temporal_instructions,
    video_questions,
    world_corpus,
)
from .track import event_trajectory, object_key_points

SPLIT_CODES = {"train": 0, "eval": 1, "image": 2}
MANIFEST_NAME = "world.json"
TRAJECTORY_DECIMALS = 5


@dataclass
class SyntheticVideo:
    """One rendered video and its ground truth.

    frames (T, H, W, 3) uint8; labels (T, H, W) int8 object index or -1; key_points (K, T, P, 2) normalised (x, y),
    NaN where the object is absent; visible (K, T, P) bool.
    """

    scene: VideoScene
    frames: np.ndarray
    labels: np.ndarray
    key_points: np.ndarray
    visible: np.ndarray

    def trajectories(self, num_frames: int | None = None) -> list[np.ndarray]:
        """Per event (in `scene.events` order), its object's (P, N, 2) trajectory, -1 where absent/untracked."""
        return [
            event_trajectory(self.scene, self.key_points, self.visible, event, num_frames)
            for event in self.scene.events
        ]


def _rng(seed: int, split: str, index: int) -> np.random.Generator:
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    return np.random.default_rng([int(seed), SPLIT_CODES[split], int(index)])


def video_id_for(split: str, index: int) -> str:
    """`synth_train_00003` for training videos; `v_synth_eval_00003` (ActivityNet style) for held-out ones."""
    if split == "train":
        return f"synth_train_{index:05d}"
    if split == "eval":
        return f"v_synth_eval_{index:05d}"
    raise ValueError(f"video split must be 'train' or 'eval', got {split!r}")


def make_video(config: WorldConfig, seed: int, split: str, index: int) -> SyntheticVideo:
    """Sample, render and annotate video `index` of `split` ("train" or "eval")."""
    rng = _rng(seed, split, index)
    scene = sample_video_scene(rng, config, video_id_for(split, index))
    frames, labels = render_video(scene)
    key_points, visible = object_key_points(scene, labels, rng)
    return SyntheticVideo(scene, frames, labels, key_points, visible)


def make_image(config: WorldConfig, seed: int, index: int) -> tuple[ImageScene, np.ndarray, np.ndarray, dict]:
    """(scene, image (H, W, 3) uint8, labels (H, W) int8, Localized Narratives record) of image `index`."""
    rng = _rng(seed, "image", index)
    scene = sample_image_scene(rng, config, f"synth_image_{index:05d}")
    image, labels = render_image(scene)
    return scene, image, labels, localized_narrative(scene, rng)


def pite_record(video: SyntheticVideo, num_frames: int | None = None) -> dict:
    """The video's PiTe-143k-style annotation line (DESIGN.md stage 2)."""
    scene = video.scene
    events = []
    for event, trajectory in zip(scene.events, video.trajectories(num_frames)):
        obj = {
            "phrase": event.phrase,
            "span": list(event.span),
            "trajectory": np.round(trajectory, TRAJECTORY_DECIMALS).tolist(),
        }
        events.append({"caption": event.caption, "start": event.start, "end": event.end, "objects": [obj]})
    return {"video_id": scene.video_id, "video": f"{scene.video_id}.mp4", "duration": scene.duration, "events": events}


@dataclass
class WorldManifest:
    """What `generate_world` wrote: absolute paths of every file and folder, counts, and the settings used."""

    root: str
    seed: int
    config: dict
    video_codec: str
    stage1_annotations: str
    stage1_images_dir: str
    stage2_annotations: str
    train_videos_dir: str
    valley_instruct: str
    videoinstruct: str
    eval_videos_dir: str
    eval_captions: str
    eval_qa_questions: str
    eval_qa_answers: str
    eval_trajectories: str
    manifest: str
    train_videos: list[str] = field(default_factory=list)
    eval_videos: list[str] = field(default_factory=list)
    images: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    def world_config(self) -> WorldConfig:
        """The `WorldConfig` the world was generated with."""
        return WorldConfig.from_dict(self.config)

    def files(self) -> list[str]:
        """Every file written, the manifest included."""
        singles = [
            self.stage1_annotations,
            self.stage2_annotations,
            self.valley_instruct,
            self.videoinstruct,
            self.eval_captions,
            self.eval_qa_questions,
            self.eval_qa_answers,
            self.eval_trajectories,
            self.manifest,
        ]
        return singles + self.train_videos + self.eval_videos + self.images

    def to_json(self) -> dict:
        """The manifest with paths relative to `root` (what `world.json` holds)."""
        root = Path(self.root)

        def relative(value: object) -> object:
            if isinstance(value, str) and os.path.isabs(value):
                return os.path.relpath(value, root)
            if isinstance(value, list):
                return [relative(v) for v in value]
            return value

        data = {k: relative(v) for k, v in dataclasses.asdict(self).items() if k != "root"}
        return data

    @classmethod
    def load(cls, out_dir: str | os.PathLike) -> WorldManifest:
        """Read `out_dir/world.json` back, with absolute paths."""
        root = Path(out_dir).resolve()
        path = root / MANIFEST_NAME
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise FileNotFoundError(f"{path}: no world manifest; run generate_world({str(out_dir)!r}) first") from None
        path_fields = {f.name for f in dataclasses.fields(cls)} - {"root", "seed", "config", "video_codec", "counts"}
        for name in path_fields:
            value = data[name]
            data[name] = [str(root / v) for v in value] if isinstance(value, list) else str(root / value)
        return cls(root=str(root), **data)


def generate_world(
    out_dir: str | os.PathLike,
    num_train_videos: int = 60,
    num_eval_videos: int = 20,
    num_images: int = 100,
    num_frames: int = 100,
    seed: int = 0,
    config: WorldConfig | None = None,
    eval_questions_per_video: int | None = None,
    progress: bool = False,
) -> WorldManifest:
    """Generate the world into `out_dir` and return its manifest (also written to `out_dir/world.json`).

    Args:
        num_frames: N, the frames sampled per video for trajectories (overrides `config.num_frames`).
        config: frame size, fps, durations, probabilities... (`WorldConfig()` by default).
        eval_questions_per_video: held-out questions kept per video, one kind each in a random kind order
            (None: all of them).
        progress: show a progress bar per split.
    Existing files of the same names are replaced; other files in `out_dir` are left alone.
    """
    for name, value in (
        ("num_train_videos", num_train_videos),
        ("num_eval_videos", num_eval_videos),
        ("num_images", num_images),
    ):
        if not isinstance(value, (int, np.integer)) or value < 0:
            raise ValueError(f"generate_world: {name} must be a non-negative int, got {value!r}")
    config = dataclasses.replace(config or WorldConfig(), num_frames=num_frames)
    _rng(seed, "train", 0)  # validates the seed before anything is written
    root = Path(out_dir).resolve()
    codec = available_video_codec()
    paths = {
        "stage1_annotations": root / "stage1" / "localized_narratives.jsonl",
        "stage1_images_dir": root / "stage1" / "images",
        "stage2_annotations": root / "stage2" / "pite_train.jsonl",
        "train_videos_dir": root / "videos" / "train",
        "valley_instruct": root / "stage3" / "valley_instruct.json",
        "videoinstruct": root / "stage3" / "videoinstruct_100k.json",
        "eval_videos_dir": root / "eval" / "videos",
        "eval_captions": root / "eval" / "activitynet_captions" / "val_1.json",
        "eval_qa_questions": root / "eval" / "activitynet_qa" / "test_q.json",
        "eval_qa_answers": root / "eval" / "activitynet_qa" / "test_a.json",
        "eval_trajectories": root / "eval" / "trajectories.jsonl",
        "manifest": root / MANIFEST_NAME,
    }
    for folder in ("stage1_images_dir", "train_videos_dir", "eval_videos_dir"):
        paths[folder].mkdir(parents=True, exist_ok=True)
    manifest = WorldManifest(
        root=str(root),
        seed=int(seed),
        config=json.loads(json.dumps(dataclasses.asdict(config))),
        video_codec=codec,
        **{k: str(v) for k, v in paths.items()},
    )

    # Stage 2 + stage 3 on the training videos.
    stage2, valley, videoinstruct, temporal_count = [], [], [], 0
    for index in _progress(range(num_train_videos), progress, "train videos"):
        video = make_video(config, seed, "train", index)
        scene = video.scene
        manifest.train_videos.append(
            str(write_mp4(paths["train_videos_dir"] / f"{scene.video_id}.mp4", video.frames, config.fps, codec))
        )
        stage2.append(pite_record(video))
        for number, qa in enumerate(video_questions(scene)):
            if (index + number) % 2 == 0:  # split the questions between the two instruction formats
                valley.append(
                    {
                        "id": f"{scene.video_id}_{number}",
                        "source": "pite_demo",
                        "v_id": scene.video_id,
                        "video": f"{scene.video_id}.mp4",
                        "conversations": [
                            {"from": "human", "value": f"<video>\n{qa.question}"},
                            {"from": "gpt", "value": qa.answer},
                        ],
                    }
                )
            else:
                videoinstruct.append({"video_id": scene.video_id, "q": qa.question, "a": qa.answer})
        for number, (question, answer) in enumerate(temporal_instructions(scene, config.num_frames)):
            videoinstruct.append({"video_id": scene.video_id, "q": question, "a": answer})
            temporal_count += 1
    write_jsonl(paths["stage2_annotations"], stage2)
    write_json(paths["valley_instruct"], valley)
    write_json(paths["videoinstruct"], videoinstruct)

    # Held-out videos: captions, QA and trajectories.
    captions, questions, answers, eval_trajectories = {}, [], [], []
    for index in _progress(range(num_eval_videos), progress, "held-out videos"):
        video = make_video(config, seed, "eval", index)
        scene = video.scene
        manifest.eval_videos.append(
            str(write_mp4(paths["eval_videos_dir"] / f"{scene.video_id}.mp4", video.frames, config.fps, codec))
        )
        captions[scene.video_id] = {
            "duration": scene.duration,
            "timestamps": [[event.start, event.end] for event in scene.events],
            "sentences": [event.caption for event in scene.events],
        }
        eval_trajectories.append(pite_record(video))
        name = scene.video_id.removeprefix("v_")  # ActivityNet-QA names videos without the "v_" of the file
        for number, qa in enumerate(_held_out_questions(scene, seed, index, eval_questions_per_video)):
            question_id = f"{name}_{number}"
            questions.append({"video_name": name, "question": qa.question, "question_id": question_id})
            answers.append({"answer": qa.answer, "type": qa.type_code, "question_id": question_id})
    write_json(paths["eval_captions"], captions)
    write_json(paths["eval_qa_questions"], questions)
    write_json(paths["eval_qa_answers"], answers)
    write_jsonl(paths["eval_trajectories"], eval_trajectories)

    # Stage 1 images.
    narratives = []
    for index in _progress(range(num_images), progress, "images"):
        scene, image, _labels, record = make_image(config, seed, index)
        manifest.images.append(str(write_jpeg(paths["stage1_images_dir"] / f"{scene.image_id}.jpg", image)))
        narratives.append(record)
    write_jsonl(paths["stage1_annotations"], narratives)

    manifest.counts = {
        "train_videos": num_train_videos,
        "eval_videos": num_eval_videos,
        "images": num_images,
        "train_events": sum(len(r["events"]) for r in stage2),
        "eval_events": sum(len(c["sentences"]) for c in captions.values()),
        "train_questions": len(valley) + len(videoinstruct),
        "train_temporal_instructions": temporal_count,
        "valley_records": len(valley),
        "videoinstruct_records": len(videoinstruct),
        "eval_questions": len(questions),
    }
    write_json(paths["manifest"], manifest.to_json())
    return manifest


def _held_out_questions(scene: VideoScene, seed: int, index: int, per_video: int | None) -> list[VideoQuestion]:
    """All of the video's questions, or `per_video` of them with distinct kinds (kind order drawn per video)."""
    every = video_questions(scene)
    if per_video is None:
        return every
    rng = np.random.default_rng([int(seed), SPLIT_CODES["eval"], int(index), 1])
    kinds = list(QA_TYPE_CODES)
    chosen = []
    for kind in (kinds[i] for i in rng.permutation(len(kinds))):
        options = [qa for qa in every if qa.kind == kind]
        if options and len(chosen) < per_video:
            chosen.append(options[int(rng.integers(len(options)))])
    return chosen


def _progress(items: range, enabled: bool, description: str):
    if not enabled:
        return items
    from tqdm.auto import tqdm

    return tqdm(items, desc=description, unit="item")


__all__ = [
    "COLOURS",
    "SHAPES",
    "SyntheticVideo",
    "WorldConfig",
    "WorldManifest",
    "answer_vocabulary",
    "generate_world",
    "make_image",
    "make_video",
    "pite_record",
    "video_id_for",
    "world_corpus",
]

"""`pite demo`: the synthetic world end to end on a laptop.

Phases (each with a progress bar), all through the package's real code paths:
1. data: `generate_world` writes every dataset format the real loaders read;
2. tokenizer + processor: a Llama-style tokenizer trained offline on the world's vocabulary, CLIP image processor;
3. frame encoder: a tiny CLIP tower briefly pretrained on training frames (see `vision_pretraining`), then frozen;
4. model: a tiny PiTe around that tower;
5. training stages 1 -> 2 -> 3 with `pite.training` (when available in this installation);
6. evaluation on held-out videos, report, visualisation and a hub-ready `DIR/model` folder.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

VIDEO_PROMPT = "This is a video with {num_frames} frames: <video>\n{question}"


@dataclass(frozen=True)
class DemoSettings:
    """Sizes of one demo run. `quick()` is the smoke-test variant (under 2 minutes on 2 cores)."""

    num_train_videos: int = 60
    num_eval_videos: int = 20
    num_images: int = 100
    num_frames: int = 100
    vocab_size: int = 600
    vision_steps: int = 300
    image_size: int = 64
    patch_size: int = 8
    vision_hidden: int = 64
    text_hidden: int = 128
    text_layers: int = 2
    seed: int = 0

    @classmethod
    def quick(cls) -> DemoSettings:
        return cls(num_train_videos=8, num_eval_videos=4, num_images=16, vision_steps=40)


def build_tiny_config(settings: DemoSettings, vocab_size: int, video_token_id: int, special_ids: dict[str, int]):
    from pite.modeling_pite import PiTeConfig

    return PiTeConfig(
        vision_config=dict(
            hidden_size=settings.vision_hidden, intermediate_size=4 * settings.vision_hidden,
            projection_dim=settings.vision_hidden, num_hidden_layers=2, num_attention_heads=4,
            image_size=settings.image_size, patch_size=settings.patch_size,
        ),
        text_config=dict(
            vocab_size=vocab_size, hidden_size=settings.text_hidden, intermediate_size=4 * settings.text_hidden,
            num_hidden_layers=settings.text_layers, num_attention_heads=4, num_key_value_heads=4,
            max_position_embeddings=1024, **special_ids,
        ),
        num_frames=settings.num_frames,
        video_token_id=video_token_id,
    )


def build_processor(settings: DemoSettings, corpus: list[str]):
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    from pite.demo.tokenizer import train_llama_tokenizer
    from pite.processing import PiTeProcessor

    tokenizer = train_llama_tokenizer(corpus, vocab_size=settings.vocab_size)
    size = settings.image_size
    image_processor = CLIPImageProcessorPil(size={"shortest_edge": size}, crop_size={"height": size, "width": size})
    return PiTeProcessor(image_processor=image_processor, tokenizer=tokenizer, num_frames=settings.num_frames)


def frame_encoder_data(settings: DemoSettings, manifest, processor) -> tuple[torch.Tensor, torch.Tensor]:
    """Training-split frames as the processor prepares them, with colour-position targets from the renderer."""
    from pite.demo.vision_pretraining import colour_position_targets
    from pite.demo.world import make_video
    from pite.demo.world_scene import WorldConfig

    config = WorldConfig.from_dict(manifest.config)
    pixels, targets = [], []
    for index in range(settings.num_train_videos):
        video = make_video(config, manifest.seed, "train", index)
        # Every 4th frame is plenty and keeps the step fast.
        frames = video.frames[::4]
        labels = video.labels[::4]
        pixels.append(processor.image_processor(list(frames), return_tensors="pt")["pixel_values"])
        colours = [obj.colour for obj in video.scene.objects]
        targets.append(torch.from_numpy(colour_position_targets(labels, colours, config.colours)))
    return torch.cat(pixels), torch.cat(targets)


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=float))
    os.replace(tmp, path)


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def run_demo(out_dir: str | os.PathLike, settings: DemoSettings | None = None) -> dict[str, Any]:
    """Run every phase into `out_dir`; returns the metrics also written to `out_dir/metrics.json`."""
    from pite.demo.world import generate_world
    from pite.demo.world_text import world_corpus
    from pite.modeling_pite import PiTeForConditionalGeneration
    from pite.demo.vision_pretraining import pretrain_frame_encoder

    settings = settings or DemoSettings()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(settings.seed)
    timings: dict[str, float] = {}
    phases = tqdm(total=5, desc="pite demo", unit="phase")

    start = time.perf_counter()
    phases.set_postfix_str("generating the synthetic world")
    manifest = generate_world(out / "data", num_train_videos=settings.num_train_videos,
                              num_eval_videos=settings.num_eval_videos, num_images=settings.num_images,
                              num_frames=settings.num_frames, seed=settings.seed, progress=True)
    timings["data_s"] = time.perf_counter() - start
    phases.update()

    start = time.perf_counter()
    phases.set_postfix_str("tokenizer and processor")
    from pite.demo.world_scene import WorldConfig

    processor = build_processor(settings, world_corpus(WorldConfig.from_dict(manifest.config)))
    tokenizer = processor.tokenizer
    timings["tokenizer_s"] = time.perf_counter() - start
    phases.update()

    start = time.perf_counter()
    phases.set_postfix_str("pretraining the frame encoder")
    special_ids = dict(pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
                       eos_token_id=tokenizer.eos_token_id)
    config = build_tiny_config(settings, len(tokenizer), processor.video_token_id, special_ids)
    pixels, targets = frame_encoder_data(settings, manifest, processor)
    bar = tqdm(total=settings.vision_steps, desc="frame encoder", leave=False)
    tower, tower_losses = pretrain_frame_encoder(
        config.vision_config, pixels, targets, steps=settings.vision_steps, seed=settings.seed,
        progress=lambda step, loss: (bar.update(), bar.set_postfix(loss=f"{loss:.3f}")),
    )
    bar.close()
    timings["frame_encoder_s"] = time.perf_counter() - start
    phases.update()

    start = time.perf_counter()
    phases.set_postfix_str("building the model")
    model = PiTeForConditionalGeneration(config)
    model.model.vision_tower.load_state_dict(tower.state_dict())
    model.model.apply_freezing()
    timings["model_s"] = time.perf_counter() - start
    phases.update()

    start = time.perf_counter()
    phases.set_postfix_str("held-out answer and export")
    example = answer_held_out_video(model, processor, manifest, out)
    model_dir = out / "model"
    model.save_pretrained(model_dir)
    processor.save_pretrained(model_dir)
    timings["answer_export_s"] = time.perf_counter() - start
    phases.update()
    phases.close()

    metrics = {
        "settings": dataclasses.asdict(settings),
        "world_counts": manifest.counts,
        "frame_encoder": tower_losses,
        "parameters": sum(p.numel() for p in model.parameters()),
        "timings": timings,
        "training": "not run: the three-stage trainers (pite.training, issue 4) are not wired into the demo yet",
        "example": example,
    }
    _write_json(out / "metrics.json", metrics)
    _write_text(out / "report.md", render_report(metrics))
    print(render_report(metrics))
    return metrics


@torch.no_grad()
def answer_held_out_video(model, processor, manifest, out: Path) -> dict[str, Any]:
    """Ask the model about the first held-out video; visualise its trajectories against the ground truth."""
    record = json.loads(Path(manifest.eval_trajectories).read_text().splitlines()[0])
    video_path = Path(manifest.eval_videos_dir) / record["video"]
    event = record["events"][0]
    question = f"During which frames can we see {event['caption']}?"
    prompt = processor.apply_chat_template(
        [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": question}]}],
        add_generation_prompt=True,
    )
    inputs = processor(text=prompt, videos=str(video_path))
    metadata = inputs.pop("video_metadata")
    output = model.eval().generate(**inputs, max_new_tokens=24, return_dict_in_generate=True)
    result = processor.post_process_generation(output, metadata, prompt_length=inputs["input_ids"].shape[1])[0]
    from pite.processing import read_video, save_contact_sheet, save_trajectory_gif

    frames = read_video(str(video_path), num_frames=model.config.num_frames).frames
    truth = np.asarray(event["objects"][0]["trajectory"]) if event["objects"] else None
    predicted = output.trajectory_predictions[0, 0].numpy()
    sheet = save_contact_sheet(frames, out / "trajectories.png", predicted=[predicted],
                               ground_truth=None if truth is None else [truth])
    gif = save_trajectory_gif(frames, out / "trajectories.gif", predicted=[predicted],
                              ground_truth=None if truth is None else [truth])
    return {"video": record["video"], "question": question, "answer": result["text"],
            "time_spans": result["time_spans"], "contact_sheet": Path(sheet).name, "gif": Path(gif).name}


def render_report(metrics: dict[str, Any]) -> str:
    settings = metrics["settings"]
    example = metrics["example"]
    lines = [
        "# PiTe demo report",
        "",
        f"World: {metrics['world_counts']}",
        f"Model: tiny PiTe, {metrics['parameters']:,} parameters, {settings['num_frames']} frames per video.",
        "",
        "## Frame encoder",
        "A randomly initialised frozen ViT pools away where objects are, so the tiny CLIP stand-in is pretrained for "
        f"{settings['vision_steps']} steps to predict colour presence and position from its pooled feature, then frozen "
        f"(loss {metrics['frame_encoder']['initial_loss']:.3f} -> {metrics['frame_encoder']['final_loss']:.3f}).",
        "",
        "## Training",
        metrics["training"],
        "",
        "## Held-out example",
        f"Video `{example['video']}`: {example['question']}",
        f"Answer: {example['answer']!r}; time spans (s): {example['time_spans']}",
        f"Trajectories: `{example['contact_sheet']}`, `{example['gif']}`",
        "",
        "## Timings (s)",
        " | ".join(f"{k} {v:.1f}" for k, v in metrics["timings"].items()),
    ]
    return "\n".join(lines) + "\n"

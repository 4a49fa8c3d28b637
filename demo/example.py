"""The demo report's held-out example: what the model generated, with the trajectories it predicted while generating.

The model is asked to caption the events of a held-out video with their time segments (the recipe's dense-captioning
question). `post_process_generation` reads the generated answer with the world's object phrases of that video: the
time spans it wrote, and, for the first object phrase it wrote, the trajectory predicted with the phrase's tokens
during generation (mean over the tokens, as the library reports a phrase). That trajectory is drawn over the frames
beside the ground truth of the first event naming the same object. The teacher-forced L1 of the same object on its
true caption, the quantity the trajectory metric averages, is reported beside it.
"""

from __future__ import annotations

from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
import torch

# Held-out videos tried in order until the model writes one of the video's object phrases.
MAX_VIDEOS_TRIED = 10
MAX_NEW_TOKENS = 64


def _normalised(trajectory_px: np.ndarray, width: int, height: int) -> np.ndarray:
    """(P, N, 2) pixels with NaN where absent -> normalised with the absent coordinate."""
    from pite.modeling_pite.losses_pite import ABSENT_COORDINATE

    scaled = trajectory_px / np.array([width, height], dtype=np.float64)
    return np.where(np.isnan(scaled), ABSENT_COORDINATE, scaled)


@torch.no_grad()
def teacher_forced_trajectory(model, processor, video_inputs, question: str, event: dict, target: dict) -> np.ndarray:
    """(P, N, 2) normalised: the model's trajectory for `target`'s phrase, teacher-forced on the event's caption."""
    from pite.data.targets import SpanTarget, build_training_features
    from pite.modeling_pite.losses_pite import ABSENT_COORDINATE

    truth = np.asarray(target["trajectory"])
    caption = event["caption"] if event["caption"].endswith(".") else event["caption"] + "."
    user = {"role": "user", "content": [{"type": "video"}, {"type": "text", "text": question}]}
    features = build_training_features(
        processor,
        [user, {"role": "assistant", "content": caption}],
        trajectory_targets=[SpanTarget(span=tuple(target["span"]), value=truth, turn=0, name=target["phrase"])],
        num_points=model.config.num_trajectory_points,
    )
    labels = np.asarray(features["trajectory_labels"])
    phrase_tokens = np.flatnonzero((labels != ABSENT_COORDINATE).any(axis=(1, 2, 3)))
    input_ids = torch.as_tensor(features["input_ids"])[None]
    outputs = model(input_ids=input_ids, pixel_values_videos=video_inputs["pixel_values_videos"])
    # the prediction at position t is for token t + 1
    return outputs.trajectory_predictions[0, phrase_tokens - 1].mean(dim=0).numpy()


@torch.no_grad()
def generated_example(model, processor, manifest, out: Path) -> dict[str, Any]:
    """Generate on held-out videos until the answer names an object of the video; draw that object's generated
    trajectory against the truth into `out/trajectories.png` and `.gif`. Returns what the report prints."""
    from pite.core.file_writing import atomic_write
    from pite.data.templates import DENSE_CAPTION_QUESTIONS
    from pite.demo.evaluation import trajectory_records
    from pite.eval.trajectory import trajectory_scores
    from pite.processing import format_time_span, read_video, save_contact_sheet, save_trajectory_gif

    question = DENSE_CAPTION_QUESTIONS[0]
    user = {"role": "user", "content": [{"type": "video"}, {"type": "text", "text": question}]}
    prompt = processor.apply_chat_template([user], add_generation_prompt=True)
    num_frames = model.config.num_frames
    # The first video that names an object; if none does, the first video asked, drawn teacher-forced.
    chosen, tried = None, 0
    for record in islice(trajectory_records(manifest.eval_trajectories), MAX_VIDEOS_TRIED):
        objects: dict[str, tuple[dict, dict]] = {}  # phrase -> its first event (the longest track) and object
        for event in record["events"]:
            for obj in event["objects"]:
                if (np.asarray(obj["trajectory"]) >= 0).all(axis=-1).any():
                    objects.setdefault(obj["phrase"], (event, obj))
        if not objects:
            continue
        video_path = str(Path(manifest.eval_videos_dir) / record["video"])
        inputs = processor(text=prompt, videos=video_path)
        metadata = inputs.pop("video_metadata")
        generated = model.generate(
            **inputs, max_new_tokens=MAX_NEW_TOKENS, do_sample=False, return_dict_in_generate=True
        )
        (result,) = processor.post_process_generation(
            generated, metadata, inputs["input_ids"].shape[1], phrases=sorted(objects, key=len, reverse=True)
        )
        tried += 1
        named = next((phrase for phrase in result["phrases"] if phrase["trajectory"] is not None), None)
        if chosen is None or named is not None:
            chosen = (record, objects, video_path, inputs, metadata, result, named)
        if named is not None:
            break
    if chosen is None:
        raise ValueError(f"{manifest.eval_trajectories}: no held-out video has a visible tracked object to draw")
    record, objects, video_path, inputs, metadata, result, phrase = chosen
    name = phrase["text"] if phrase is not None else next(iter(objects))
    event, target = objects[name]
    truth = np.asarray(target["trajectory"])

    def span(item: dict) -> str:
        return format_time_span(item["start"], item["end"], record["duration"], num_frames, clip=True)

    forced = teacher_forced_trajectory(model, processor, inputs, f"What is happening {span(event)}?", event, target)
    if phrase is not None:
        predicted = _normalised(np.asarray(phrase["trajectory"]), metadata[0]["width"], metadata[0]["height"])
    else:
        predicted = forced
    frames = read_video(video_path, num_frames=num_frames).frames
    drawn = {"predicted": [predicted], "ground_truth": [truth]}
    sheet = atomic_write(out / "trajectories.png", lambda path: save_contact_sheet(frames, path, **drawn))
    gif = atomic_write(out / "trajectories.gif", lambda path: save_trajectory_gif(frames, path, **drawn))
    return {
        "video": record["video"],
        "question": question,
        "answer": result["text"],
        "frame_index_spans": [list(pair) for pair in result["frame_index_spans"]],
        "true_events": [[e["caption"], span(e)] for e in record["events"]],
        "phrase": name,
        "drawn": "generated" if phrase is not None else "teacher-forced",
        "generated_L1": trajectory_scores(predicted, truth)["L1"] if phrase is not None else None,
        "teacher_forced_L1": trajectory_scores(forced, truth)["L1"],
        "videos_tried": tried,
        "contact_sheet": Path(sheet).name,
        "gif": Path(gif).name,
    }

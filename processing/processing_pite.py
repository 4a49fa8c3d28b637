"""`PiTeProcessor`: videos/images + text -> the model's inputs; generated ids -> text, trajectories and times.

This file is Hub remote code, saved next to the model's files by `save_pretrained` together with the sibling
files it imports (same-folder relative imports only; decord is imported lazily inside a try block).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from transformers import BatchFeature
from transformers.processing_utils import ProcessorMixin

from .chat_template_pite import (
    V1_CHAT_TEMPLATE,
    VIDEO_TOKEN,
    expand_video_tokens,
    tokenize_around_video,
    tokenize_conversation,
)
from .grounding_pite import SpanTarget, build_point_labels, build_trajectory_labels
from .postprocessing_pite import post_process_generation
from .video_reading_pite import (
    VIDEO_BACKENDS,
    SampledVideo,
    VideoInputError,
    flatten_visual_inputs,
    is_frame,
    is_single_video,
    read_image,
    read_video,
)
from .visualization_pite import save_contact_sheet, save_trajectory_gif


class PiTeProcessor(ProcessorMixin):
    """Processor of PiTe: a CLIP image processor for frames and a Llama tokenizer with a `<video>` special token.

    `processor(text=..., videos=...)` samples `num_frames` frames per video, expands each `<video>` placeholder to
    one `<video>` token per frame, and returns `input_ids`, `attention_mask` (B, L), `pixel_values_videos`
    (V, N, 3, H, W) (or `pixel_values` (I, 3, H, W) for `images=`, one token each) and `video_metadata`.
    """

    model_input_names = ["input_ids", "attention_mask", "pixel_values_videos", "pixel_values"]

    def __init__(
        self,
        image_processor: Any = None,
        tokenizer: Any = None,
        num_frames: int = 100,
        video_token: str = VIDEO_TOKEN,
        chat_template: str | None = None,
        video_backend: str = "auto",
        **kwargs: Any,
    ) -> None:
        if num_frames < 1:
            raise ValueError(f"num_frames must be >= 1, got {num_frames}")
        if video_backend not in VIDEO_BACKENDS:
            raise ValueError(f"video_backend must be one of {VIDEO_BACKENDS}, got {video_backend!r}")
        self.num_frames = int(num_frames)
        # "auto": PyAV where installed (faster for the same frames), else decord.
        self.video_backend = video_backend
        self.video_token = video_token
        super().__init__(image_processor, tokenizer, chat_template=chat_template or V1_CHAT_TEMPLATE, **kwargs)
        token_id = tokenizer.convert_tokens_to_ids(video_token)
        if token_id is None or token_id == tokenizer.unk_token_id or tokenizer.tokenize(video_token) != [video_token]:
            raise ValueError(f"the tokenizer has no special token {video_token!r}: add it with add_special_tokens first")
        self.video_token_id = int(token_id)

    # ------------------------------------------------------------------ inputs
    def read_videos(self, videos: Any, num_frames: int | None = None, video_fps: Any = None,
                    video_backend: str | None = None) -> list[SampledVideo]:
        """Sample N frames from each video (flattened in order); see `read_video` for accepted inputs.

        `video_backend` overrides the processor's ("auto", "decord" or "pyav") for this call."""
        flat = flatten_visual_inputs(videos, is_single_video, "video")
        fps_list = video_fps if isinstance(video_fps, (list, tuple)) else [video_fps] * len(flat)
        if len(fps_list) != len(flat):
            raise ValueError(f"got {len(fps_list)} video_fps values for {len(flat)} videos")
        backend = video_backend or self.video_backend
        return [read_video(video, num_frames or self.num_frames, fps, backend=backend) for video, fps in zip(flat, fps_list)]

    def _pixel_values(self, sampled: list[SampledVideo]) -> torch.Tensor:
        """CLIP-normalised frames of every sampled video, (V, N_v, 3, H, W) (all N_v equal)."""
        frames = [frame for video in sampled for frame in video.frames]
        pixels = self.image_processor(frames, return_tensors="pt")["pixel_values"]
        return pixels.reshape(len(sampled), -1, *pixels.shape[1:])

    def __call__(
        self,
        images: Any = None,
        text: str | Sequence[str] | None = None,
        videos: Any = None,
        num_frames: int | None = None,
        video_fps: float | Sequence[float] | None = None,
        video_backend: str | None = None,
        padding: bool | str = True,
        return_tensors: str | None = "pt",
        add_special_tokens: bool = True,
        audio: Any = None,
        **kwargs: Any,
    ) -> BatchFeature:
        """Prepare model inputs.

        Args:
            images: one image (PIL or uint8 (H, W, 3)) or a (nested) list of them; each is a one-frame video.
            text: one prompt or a batch; each video/image needs one `<video>` placeholder, filled in order.
            videos: one video or a (nested, per-sample) list of videos: paths, bytes, binary file objects,
                uint8 arrays (T, H, W, 3) or lists of frames.
            num_frames: override the processor's N for this call.
            video_fps: frame rate(s) of decoded-frame inputs, for their timestamps (encoded videos know theirs).
            video_backend: reader of encoded videos for this call ("auto", "decord", "pyav"; default: the processor's).
            padding: True/"longest" pads to the longest prompt on the tokenizer's padding side; False requires
                equal lengths when tensors are returned.
            return_tensors: "pt", "np" or None (lists).
            audio: accepted for `apply_chat_template`'s call signature; must be None.

        Returns:
            BatchFeature with `input_ids`, `attention_mask` (B, L) if text was given, `pixel_values_videos`
            (V, N, 3, H, W) or `pixel_values` (I, 3, H, W) if visual input was given, and `video_metadata`.
        """
        # apply_chat_template forwards this flag when num_frames/fps is given: PiTe always samples N frames.
        if kwargs.pop("do_sample_frames", True) is False:
            raise ValueError("PiTe always samples num_frames frames per video; do_sample_frames=False is unsupported")
        if audio is not None:
            raise ValueError("PiTe takes no audio input")
        if kwargs:
            raise TypeError(f"unexpected arguments for PiTeProcessor: {sorted(kwargs)}")
        if images is not None and videos is not None:
            raise ValueError("pass either videos or images, not both: their <video> placeholders would be ambiguous")
        if return_tensors not in ("pt", "np", None):
            raise ValueError(f"return_tensors must be 'pt', 'np' or None, got {return_tensors!r}")
        frames_per_item = int(num_frames or self.num_frames)
        sampled: list[SampledVideo] = []
        if videos is not None:
            sampled = self.read_videos(videos, frames_per_item, video_fps, video_backend)
        elif images is not None:
            if video_fps is not None:
                raise ValueError("video_fps applies to videos, not images")
            sampled = [read_image(image) for image in flatten_visual_inputs(images, is_frame, "image")]
            frames_per_item = 1
        data: dict[str, Any] = {}
        if sampled:
            pixels = self._pixel_values(sampled)
            if videos is not None:
                data["pixel_values_videos"] = pixels
            else:
                data["pixel_values"] = pixels[:, 0]  # an image is one frame: (I, 3, H, W)
            data["video_metadata"] = [video.metadata for video in sampled]
        if text is not None:
            data.update(self._tokenize(text, len(sampled), frames_per_item, padding, add_special_tokens))
        elif not sampled:
            raise ValueError("nothing to process: pass text, videos or images")
        return BatchFeature(data=self._convert(data, return_tensors))

    def _tokenize(
        self, text: str | Sequence[str], num_visual: int, frames_per_item: int, padding: bool | str, add_special_tokens: bool
    ) -> dict[str, Any]:
        texts = [text] if isinstance(text, str) else list(text)
        if not all(isinstance(sample, str) for sample in texts):
            raise ValueError("text must be a string or a list of strings")
        encoded = [
            tokenize_around_video(self.tokenizer, sample, self.video_token, add_special_tokens)[0] for sample in texts
        ]
        placeholders = [sum(1 for token in ids if token == self.video_token_id) for ids in encoded]
        if sum(placeholders) != num_visual:
            raise ValueError(
                f"the text holds {sum(placeholders)} {self.video_token} placeholder(s) (per sample: {placeholders}) "
                f"but {num_visual} video(s)/image(s) were given; put one {self.video_token} per video"
            )
        sequences = []
        for index, (ids, count) in enumerate(zip(encoded, placeholders)):
            expand = expand_video_tokens(ids, self.video_token_id, [frames_per_item] * count, source=f"text {index}")
            sequences.append(np.asarray(ids, dtype=np.int64)[expand])
        longest = max(len(ids) for ids in sequences)
        if padding in (False, "do_not_pad"):
            if len({len(ids) for ids in sequences}) > 1:
                raise ValueError(f"prompts differ in length {[len(ids) for ids in sequences]}; pass padding=True")
        elif padding not in (True, "longest"):
            raise ValueError(f"padding must be True, 'longest' or False, got {padding!r}")
        pad_id = self.tokenizer.pad_token_id
        if pad_id is None and len({len(ids) for ids in sequences}) > 1:
            raise ValueError("the tokenizer has no pad token; set tokenizer.pad_token to pad a batch")
        input_ids = np.full((len(sequences), longest), pad_id if pad_id is not None else 0, dtype=np.int64)
        attention_mask = np.zeros((len(sequences), longest), dtype=np.int64)
        for row, ids in enumerate(sequences):
            columns = slice(longest - len(ids), longest) if self.tokenizer.padding_side == "left" else slice(0, len(ids))
            input_ids[row, columns] = ids
            attention_mask[row, columns] = 1
        return {"input_ids": input_ids, "attention_mask": attention_mask}

    @staticmethod
    def _convert(data: dict[str, Any], return_tensors: str | None) -> dict[str, Any]:
        """Convert arrays/tensors to the requested type; `video_metadata` stays a list of dicts."""
        converted = {}
        for key, value in data.items():
            if key == "video_metadata":
                converted[key] = value
            elif return_tensors == "pt":
                converted[key] = torch.as_tensor(value)
            elif return_tensors == "np":
                converted[key] = value.numpy() if isinstance(value, torch.Tensor) else np.asarray(value)
            else:
                converted[key] = value.tolist()
        return converted

    # ------------------------------------------------------------------ training
    def build_training_features(
        self,
        messages: Sequence[dict[str, Any]],
        trajectory_targets: Sequence[SpanTarget] | None = None,
        point_targets: Sequence[SpanTarget] | None = None,
        num_points: int = 3,
    ) -> dict[str, np.ndarray]:
        """Token-level training arrays for one conversation (no pixels: training reads cached features).

        Returns `input_ids`, `labels` (L,) (-100 outside assistant turns), and if targets are given
        `trajectory_labels` (L, P, N, 2) and/or `point_labels` (L, 2), -1 where a token has no target.
        Target spans are character spans of the assistant answer named by `SpanTarget.turn`.
        """
        conversation = tokenize_conversation(self.tokenizer, messages, self.num_frames, self.chat_template, self.video_token)
        features = {"input_ids": conversation.input_ids, "labels": conversation.labels}
        if trajectory_targets is not None:
            features["trajectory_labels"] = build_trajectory_labels(
                conversation, trajectory_targets, num_points, self.num_frames
            )
        if point_targets is not None:
            features["point_labels"] = build_point_labels(conversation, point_targets)
        return features

    # ------------------------------------------------------------------ outputs
    def post_process_generation(
        self,
        generate_output: Any,
        video_metadata: Sequence[dict[str, Any]],
        prompt_length: int,
        phrases: Sequence[str] | Sequence[Sequence[str]] | None = None,
        **predictions: Any,
    ) -> list[dict[str, Any]]:
        """Decoded text, grounded phrases with pixel trajectories, and time spans in seconds, per sample.

        See `postprocessing_pite.post_process_generation` for the phrase rule and the output layout.
        """
        return post_process_generation(
            self.tokenizer, generate_output, video_metadata, prompt_length, phrases=phrases, **predictions
        )

    @staticmethod
    def save_contact_sheet(*args: Any, **kwargs: Any) -> str:
        """PNG grid of sampled frames with trajectories; see `visualization_pite.save_contact_sheet`."""
        return save_contact_sheet(*args, **kwargs)

    @staticmethod
    def save_trajectory_gif(*args: Any, **kwargs: Any) -> str:
        """Animated GIF of sampled frames with trajectories; see `visualization_pite.save_trajectory_gif`."""
        return save_trajectory_gif(*args, **kwargs)


PiTeProcessor.register_for_auto_class("AutoProcessor")

__all__ = ["PiTeProcessor", "VideoInputError"]

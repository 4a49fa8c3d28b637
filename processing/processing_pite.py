"""`PiTeProcessor`: videos/images + text -> the model's inputs; generated ids -> text, trajectories and times.

This file is Hub remote code, saved next to the model's files by `save_pretrained` together with the sibling
files it imports (same-folder relative imports only; decord is imported lazily inside a try block).
"""

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from transformers import BatchFeature
from transformers.image_utils import get_image_size, infer_channel_dimension_format
from transformers.processing_utils import MultiModalData, ProcessingKwargs, ProcessorMixin, Unpack

from .chat_template_pite import (
    V1_CHAT_TEMPLATE,
    VIDEO_TOKEN,
    expand_video_tokens,
    tokenize_around_video,
)
from .postprocessing_pite import post_process_generation
from .video_processing_pite import PiTeVideoMetadata, PiTeVideoProcessor, PiTeVideoProcessorKwargs, VideoProcessorMixin
from .video_reading_pite import SampledVideo, VideoInputError, describe_input
from .visualization_pite import save_contact_sheet, save_trajectory_gif

# Text kwargs the chunked tokenization implements; any other one given a non-default value is refused.
SUPPORTED_TEXT_KWARGS = {
    "add_special_tokens",
    "padding",
    "truncation",
    "max_length",
    "padding_side",
    "pad_to_multiple_of",
    "return_attention_mask",
    "return_tensors",
    "return_offsets_mapping",
    "return_text_replacement_offsets",
    "return_mm_token_type_ids",
}


class PiTeProcessorKwargs(ProcessingKwargs, total=False):
    """`ProcessingKwargs` with PiTe's video kwargs (`video_backend`, `video_fps`, `resize_backend`)."""

    videos_kwargs: PiTeVideoProcessorKwargs
    # Lowest-priority defaults: a batch of prompts pads to its longest (on the tokenizer's padding side) and the
    # metadata that post-processing needs is returned; the tokenizer's init kwargs and call kwargs override them.
    # `_defaults` rather than processor class attributes: transformers 5.17 reads only these (5.24 reads both).
    _defaults = {
        "text_kwargs": {"padding": True, "return_tensors": "pt"},
        "images_kwargs": {"return_tensors": "pt"},
        "videos_kwargs": {"return_tensors": "pt", "return_metadata": True},
    }


class PiTeProcessor(ProcessorMixin):
    """Processor of PiTe: `PiTeVideoProcessor` for videos, a CLIP image processor for images, and a Llama tokenizer
    with a `<video>` special token.

    `processor(text=..., videos=...)` samples `num_frames` frames per video (the release's rule), tokenizes each
    prompt as the release does (`tokenize_around_video`: the text on each side of `<video>` on its own, BOS once),
    puts one `<video>` id per frame where the placeholder was, and returns `input_ids`, `attention_mask` (B, L),
    `pixel_values_videos` (V, N, 3, H, W) (or `pixel_values` (I, 3, H, W) for `images=`, one token each) and
    `video_metadata` (one `PiTeVideoMetadata` per video or image; `return_metadata=False` leaves it out).

    Kwargs are merged as transformers' processors merge them (`_merge_kwargs`): flat (`max_length=`,
    `truncation=`, `padding_side=`, `num_frames=`, `crop_size=`, ...) or per modality (`text_kwargs=`,
    `images_kwargs=`, `videos_kwargs=`), over the tokenizer's own init kwargs, over `PiTeProcessorKwargs._defaults`.
    """

    valid_processor_kwargs = PiTeProcessorKwargs

    def __init__(
        self,
        image_processor: Any = None,
        video_processor: Any = None,
        tokenizer: Any = None,
        chat_template: str | None = None,
        video_token: str = VIDEO_TOKEN,
        **kwargs: Any,
    ) -> None:
        """Without `video_processor`, one is built from the image processor's CLIP settings. `num_frames=` and
        `video_backend=` set the video processor's (they belong to it: `processor.num_frames` reads it)."""
        video_settings = {key: kwargs.pop(key) for key in ("num_frames", "video_backend") if key in kwargs}
        if kwargs:
            raise TypeError(f"unexpected arguments for PiTeProcessor: {sorted(kwargs)}")
        if tokenizer is None:
            raise ValueError("PiTeProcessor needs a tokenizer")
        if video_processor is None:
            if image_processor is None:
                raise ValueError("PiTeProcessor needs an image processor or a video processor")
            video_processor = PiTeVideoProcessor.from_image_processor(image_processor)
        PiTeVideoProcessor._check_options(video_settings.get("num_frames"), video_settings.get("video_backend"), None)
        for key, value in video_settings.items():
            setattr(video_processor, key, value)
        # One placeholder for both: an image is a one-frame video and fills a `<video>` like a video does.
        self.video_token = self.image_token = video_token
        token_id = tokenizer.convert_tokens_to_ids(video_token)
        if token_id is None or token_id == tokenizer.unk_token_id or tokenizer.tokenize(video_token) != [video_token]:
            raise ValueError(
                f"the tokenizer has no special token {video_token!r}: add it with add_special_tokens first"
            )
        self.video_token_id = self.image_token_id = int(token_id)
        super().__init__(image_processor, video_processor, tokenizer, chat_template=chat_template or V1_CHAT_TEMPLATE)

    @property
    def num_frames(self) -> int:
        """N, the frames sampled per video (the video processor's)."""
        return self.video_processor.num_frames

    @num_frames.setter
    def num_frames(self, value: int) -> None:
        PiTeVideoProcessor._check_options(value, None, None)
        self.video_processor.num_frames = int(value)

    @property
    def video_backend(self) -> str:
        """Reader of encoded videos (the video processor's): "auto", "pyav" or "decord"."""
        return self.video_processor.video_backend

    @video_backend.setter
    def video_backend(self, value: str) -> None:
        PiTeVideoProcessor._check_options(None, value, None)
        self.video_processor.video_backend = value

    @property
    def model_input_names(self) -> list[str]:
        """The tokenizer's, image and video processors' inputs, and `video_metadata` (the model accepts it)."""
        return [*super().model_input_names, "video_metadata"]

    def check_argument_for_proper_class(self, argument_name: str, argument: Any) -> Any:
        """transformers looks `VideoProcessorMixin` up by name in its top-level namespace, which holds it only
        where torchvision is installed; the class itself imports without torchvision, so check against it."""
        if argument_name == "video_processor":
            if not isinstance(argument, VideoProcessorMixin):
                raise TypeError(f"video_processor must be a VideoProcessorMixin, got {type(argument).__name__}")
            return VideoProcessorMixin
        return super().check_argument_for_proper_class(argument_name, argument)

    @classmethod
    def _get_arguments_from_pretrained(
        cls, pretrained_model_name_or_path: Any, processor_dict: dict | None = None, **kwargs: Any
    ) -> list[Any]:
        """[image_processor, video_processor, tokenizer] of a saved folder.

        The video processor is loaded with `PiTeVideoProcessor.from_pretrained` rather than `AutoVideoProcessor`,
        which transformers makes unusable without torchvision. Folders saved before PiTe had a video processor
        hold none: it is built from their image processor with their saved `num_frames` / `video_backend`
        (`from_pretrained(..., num_frames=...)` still overrides them)."""
        from transformers import AutoImageProcessor

        processor_dict = processor_dict or {}
        subfolder = kwargs.pop("subfolder", "")
        if "image_processor" not in processor_dict and "video_processor" not in processor_dict:
            raise ValueError(
                f"{pretrained_model_name_or_path} holds no PiTe image or video processor config in its "
                "processor_config.json; re-export it: build PiTeProcessor(image_processor=..., tokenizer=..., "
                "num_frames=...) from its parts and call save_pretrained"
            )
        video_settings = {key: kwargs.pop(key) for key in ("num_frames", "video_backend") if key in kwargs}
        try:
            image_processor = AutoImageProcessor.from_pretrained(
                pretrained_model_name_or_path, subfolder=subfolder, **kwargs
            )
        except ImportError:
            # transformers 5.17 without torchvision refuses AutoImageProcessor; the PIL class of the saved type
            # (CLIP's) loads the same settings.
            import transformers

            saved_type = processor_dict.get("image_processor", {}).get("image_processor_type", "")
            pil_class = getattr(transformers, saved_type.removesuffix("Fast") + "Pil", None)
            if pil_class is None:
                raise
            image_processor = pil_class.from_pretrained(pretrained_model_name_or_path, subfolder=subfolder, **kwargs)
        if "video_processor" in processor_dict:
            video_processor = PiTeVideoProcessor.from_pretrained(
                pretrained_model_name_or_path, subfolder=subfolder, **kwargs, **video_settings
            )
        else:
            saved = {key: processor_dict[key] for key in ("num_frames", "video_backend") if key in processor_dict}
            video_processor = PiTeVideoProcessor.from_image_processor(image_processor, **{**saved, **video_settings})
        tokenizer = cls._load_tokenizer_from_pretrained(
            "tokenizer", pretrained_model_name_or_path, subfolder=subfolder, **kwargs
        )
        return [image_processor, video_processor, tokenizer]

    def save_pretrained(self, save_directory: Any, push_to_hub: bool = False, **kwargs: Any) -> list[str]:
        """As transformers', without leaving the `auto_map` that saving remote code sets on the instance: a
        processor then serialises (`to_dict`) the same before saving, after saving and after loading."""
        had_auto_map = "auto_map" in self.__dict__
        try:
            return super().save_pretrained(save_directory, push_to_hub=push_to_hub, **kwargs)
        finally:
            if not had_auto_map:
                self.__dict__.pop("auto_map", None)

    # ------------------------------------------------------------------ inputs
    def _check_kwargs(self, kwargs: dict[str, Any]) -> None:
        """Refuse kwargs no part of the processor knows (transformers would only log and ignore them)."""
        valid = set(PiTeProcessorKwargs.__annotations__) | {"common_kwargs"}
        for modality, typed_dict in PiTeProcessorKwargs.__annotations__.items():
            valid |= set(getattr(typed_dict, "__annotations__", {}))
        for component in (self.image_processor, self.video_processor):
            valid |= set(getattr(getattr(component, "valid_kwargs", None), "__annotations__", {}))
        unknown = set(kwargs) - valid
        if unknown:
            raise TypeError(f"unexpected arguments for PiTeProcessor: {sorted(unknown)}")

    def read_videos(
        self, videos: Any, num_frames: int | None = None, video_fps: Any = None, video_backend: str | None = None
    ) -> list[SampledVideo]:
        """Sample N frames from each video (flattened in order) without preprocessing them; see `read_video`.

        Defaults are the video processor's `num_frames` and `video_backend`."""
        return self.video_processor.read_videos(videos, num_frames, video_fps, video_backend)

    def __call__(
        self,
        images: Any = None,
        text: str | Sequence[str] | None = None,
        videos: Any = None,
        audio: Any = None,
        **kwargs: Unpack[PiTeProcessorKwargs],
    ) -> BatchFeature:
        """Prepare model inputs.

        Args:
            images: one image (PIL, array, tensor, path or URL) or a (nested) list of them; each is a one-frame
                video with one `<video>` token.
            text: one prompt or a batch; each video/image needs one `<video>` placeholder, filled in order.
            videos: one video or a (nested, per-sample) list of videos: paths, bytes, binary file objects,
                uint8 arrays (T, H, W, 3) or (T, 3, H, W), or lists of frames.
            audio: must be None.
            **kwargs: `PiTeProcessorKwargs`, e.g. `num_frames`, `video_fps` (frame rate of decoded frames),
                `video_backend`, `max_length`, `truncation`, `padding`, `padding_side`, `return_tensors`,
                `return_metadata`, or `text_kwargs` / `images_kwargs` / `videos_kwargs` dicts.

        Returns:
            BatchFeature with `input_ids`, `attention_mask` (B, L) if text was given, `pixel_values_videos`
            (V, N, 3, H, W) or `pixel_values` (I, 3, H, W) if visual input was given, and `video_metadata`.
        """
        if audio is not None:
            raise ValueError("PiTe takes no audio input")
        if images is not None and videos is not None:
            raise ValueError("pass either videos or images, not both: their <video> placeholders would be ambiguous")
        if text is None and images is None and videos is None:
            raise ValueError("nothing to process: pass text, videos or images")
        self._check_kwargs(kwargs)
        merged = self._merge_kwargs(PiTeProcessorKwargs, tokenizer_init_kwargs=self.tokenizer.init_kwargs, **kwargs)
        text_kwargs, videos_kwargs = merged["text_kwargs"], merged["videos_kwargs"]
        return_tensors = text_kwargs.get("return_tensors")
        return_metadata = videos_kwargs.get("return_metadata", True)
        data: dict[str, Any] = {}
        metadata: list[PiTeVideoMetadata] = []
        frames_per_item: list[int] = []
        if videos is not None:
            processed = self.video_processor(videos, **{**videos_kwargs, "return_metadata": True})
            data["pixel_values_videos"] = processed["pixel_values_videos"]
            metadata = processed["video_metadata"]
            frames_per_item = [len(video.frames_indices) for video in metadata]
        elif images is not None:
            flat = self._flat_images(images)
            data["pixel_values"] = self.image_processor(flat, **merged["images_kwargs"])["pixel_values"]
            metadata = [self._image_metadata(image) for image in flat]
            frames_per_item = [1] * len(flat)
        if text is not None:
            data.update(self._tokenize(text, frames_per_item, dict(text_kwargs)))
            if text_kwargs.get("return_mm_token_type_ids") or merged.get("return_mm_token_type_ids"):
                # transformers' convention: 1 image, 2 video; PiTe's one placeholder id serves both.
                kind = 2 if videos is not None else 1
                data["mm_token_type_ids"] = [
                    [kind if token == self.video_token_id else 0 for token in ids] for ids in data["input_ids"]
                ]
        if metadata and return_metadata:
            data["video_metadata"] = metadata
        return BatchFeature(data=data, tensor_type=return_tensors, skip_tensor_conversion=["video_metadata"])

    def _get_num_multimodal_tokens(
        self, image_sizes: Any = None, video_sizes: Any = None, **kwargs: Any
    ) -> MultiModalData:
        """Tokens per image (1) and per video (`num_frames`; with `do_sample_frames=False` set on the video
        processor, the video's own frame count T of its (T, H, W) size) under the processor's defaults."""
        data = {}
        if image_sizes is not None:
            data["num_image_tokens"] = [1] * len(image_sizes)
            data["num_image_patches"] = [1] * len(image_sizes)
        if video_sizes is not None:
            sample = self.video_processor.do_sample_frames
            data["num_video_tokens"] = [self.num_frames if sample else int(size[0]) for size in video_sizes]
        return MultiModalData(**data)

    def _flat_images(self, images: Any) -> list[Any]:
        """Images as one flat list, paths and URLs loaded (`apply_chat_template` passes per-sample lists)."""
        if isinstance(images, (list, tuple)):
            flat = [
                image
                for item in images
                for image in (self._flat_images(item) if isinstance(item, (list, tuple)) else [item])
            ]
        else:
            flat = [images]
        loaded = self.image_processor.fetch_images(flat)
        return list(loaded) if isinstance(loaded, (list, tuple)) else [loaded]

    @staticmethod
    def _image_metadata(image: Any) -> PiTeVideoMetadata:
        """An image seen as a one-frame video without timing."""
        if hasattr(image, "size") and not isinstance(image, (np.ndarray, torch.Tensor)):
            width, height = image.size
        elif isinstance(image, (np.ndarray, torch.Tensor)) and image.ndim == 3:
            array = np.asarray(image)
            height, width = get_image_size(array, infer_channel_dimension_format(array, num_channels=(1, 3, 4)))
        else:
            raise VideoInputError(
                f"unsupported image input {describe_input(image)}: expected a PIL image, an array "
                "(H, W, C) or (C, H, W), a path or a URL"
            )
        return PiTeVideoMetadata(total_num_frames=1, width=int(width), height=int(height), frames_indices=[0])

    def _tokenize(
        self, text: str | Sequence[str], frames_per_item: list[int], text_kwargs: dict[str, Any]
    ) -> dict[str, Any]:
        """Chunked ids (`tokenize_around_video`), `<video>` expanded per frame, truncated and padded as asked."""
        texts = [text] if isinstance(text, str) else list(text)
        if not all(isinstance(sample, str) for sample in texts):
            raise ValueError("text must be a string or a list of strings")
        unsupported = {
            key
            for key, value in text_kwargs.items()
            if key not in SUPPORTED_TEXT_KWARGS and value not in (None, False)
        }
        if unsupported:
            raise ValueError(
                f"PiTeProcessor does not support the text kwargs {sorted(unsupported)} (its prompt ids "
                "are tokenized in chunks around <video>)"
            )
        add_special_tokens = text_kwargs.get("add_special_tokens") is not False
        with_offsets = bool(text_kwargs.get("return_offsets_mapping"))
        encoded = [
            tokenize_around_video(self.tokenizer, sample, self.video_token, add_special_tokens, with_offsets)
            for sample in texts
        ]
        placeholders = [ids.count(self.video_token_id) for ids, _ in encoded]
        if sum(placeholders) != len(frames_per_item):
            raise ValueError(
                f"the text holds {sum(placeholders)} {self.video_token} placeholder(s) (per sample: {placeholders}) "
                f"but {len(frames_per_item)} video(s)/image(s) were given; put one {self.video_token} per video"
            )
        sequences, offsets, used = [], [], 0
        for index, ((ids, spans), count) in enumerate(zip(encoded, placeholders)):
            expand = expand_video_tokens(
                ids, self.video_token_id, frames_per_item[used : used + count], source=f"text {index}"
            )
            sequences.append(np.asarray(ids, dtype=np.int64)[expand].tolist())
            offsets.append(spans[expand].tolist() if with_offsets else None)
            used += count
        sequences, offsets = self._truncate(
            sequences, offsets, text_kwargs.get("truncation"), text_kwargs.get("max_length")
        )
        padding = text_kwargs.get("padding", False)
        if (
            padding in (False, None, "do_not_pad")
            and len({len(ids) for ids in sequences}) > 1
            and text_kwargs.get("return_tensors") is not None
        ):
            raise ValueError(f"prompts differ in length {[len(ids) for ids in sequences]}; pass padding=True")
        if (
            padding not in (False, None, "do_not_pad")
            and self.tokenizer.pad_token_id is None
            and len({len(ids) for ids in sequences}) > 1
        ):
            raise ValueError("the tokenizer has no pad token; set tokenizer.pad_token to pad a batch")
        padding_side = text_kwargs.get("padding_side") or self.tokenizer.padding_side
        padded = dict(
            self.tokenizer.pad(
                {"input_ids": sequences},
                padding=padding if padding is not None else False,
                # Truncation is done above; the tokenizer only needs max_length to pad up to it.
                max_length=text_kwargs.get("max_length") if padding == "max_length" else None,
                pad_to_multiple_of=text_kwargs.get("pad_to_multiple_of"),
                padding_side=padding_side,
                return_attention_mask=text_kwargs.get("return_attention_mask"),
            )
        )
        if with_offsets:  # padding covers no characters: (0, 0), on the side the ids were padded
            padded["offset_mapping"] = [
                [[0, 0]] * (len(ids) - len(spans)) + spans
                if padding_side == "left"
                else spans + [[0, 0]] * (len(ids) - len(spans))
                for ids, spans in zip(padded["input_ids"], offsets)
            ]
        if text_kwargs.get("return_text_replacement_offsets"):
            # `<video>` is expanded at the id level: the offsets above already refer to the text as given.
            padded["text_replacement_offsets"] = [[] for _ in texts]
        return padded

    def _truncate(
        self, sequences: list[list[int]], offsets: list[Any], truncation: Any, max_length: int | None
    ) -> tuple[list[list[int]], list[Any]]:
        """Cut each sequence (and its offsets) to `max_length` on the tokenizer's truncation side; never through a
        video's tokens."""
        if truncation in (None, False, "do_not_truncate") or max_length is None:
            return sequences, offsets
        if truncation not in (True, "longest_first", "only_first"):
            raise ValueError(f"truncation must be True, 'longest_first', 'only_first' or False, got {truncation!r}")
        keep = (
            slice(-max_length, None)
            if getattr(self.tokenizer, "truncation_side", "right") == "left"
            else slice(0, max_length)
        )
        cut = [ids[keep] for ids in sequences]
        before = [ids.count(self.video_token_id) for ids in sequences]
        after = [ids.count(self.video_token_id) for ids in cut]
        if before != after:
            # As transformers' multimodal processors: cutting into a video's tokens would misalign its features.
            raise ValueError(
                f"Mismatch in `video` token count between text and `input_ids`: truncating to max_length={max_length} "
                f"keeps {after} of {before} <video> tokens; increase max_length or disable truncation"
            )
        return cut, [spans[keep] if spans is not None else None for spans in offsets]

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

__all__ = ["PiTeProcessor", "PiTeProcessorKwargs", "VideoInputError"]

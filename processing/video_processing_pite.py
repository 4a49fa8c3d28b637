"""`PiTeVideoProcessor`: videos -> the N CLIP-normalised frames PiTe sees (`pixel_values_videos`) and their metadata.

A transformers video processor (`VideoProcessorMixin`, loadable with `AutoVideoProcessor`) whose frame sampling and
decoder are the release's: `sample_frames` is `sample_frame_indices` (T from a full decode, int32 linspace), and
encoded videos are read by `read_video` (seeking PyAV reader, decord an option). Pixels are CLIP's preprocessing:
resize the shortest edge (bicubic), center crop, rescale, normalize, batched in torch on `device`.

Why not `BaseVideoProcessor`: in transformers 5.x it is `VideoProcessorMixin` plus the torchvision backend and
refuses to instantiate without torchvision, which has no CPU build here. `VideoProcessorMixin` is its torch-free
base (what `ProcessorMixin` checks a `video_processor` against); this class implements the same hooks
(`sample_frames`, `preprocess`, `_preprocess`) with torch and PIL only.

Resizing (`resize_backend`): "pil" (default) resizes each frame with PIL's bicubic filter, as the CLIP image processor
the release used does, so the pixels equal that processor's exactly (tested against the authors' pipeline); it runs
inside the reader, on each frame as soon as it is decoded (`read_video(frame_transform=...)`), so the N frames are
never all held at full resolution (100 frames of a 4K video: 2.5 GB of RGB otherwise);
"torch" resizes the whole clip at once with `torch.nn.functional.interpolate(mode="bicubic", antialias=True)` on
`device` (e.g. a GPU), in PIL's two passes with PIL's rounding and clipping between them: within 1 grey level of
PIL per pixel before normalisation, on under 0.1% of the pixels of random-noise frames
(`tests/processing/test_video_processor.py` checks the bound), not bit-equal (PIL computes in fixed point).

This file is Hub remote code: it imports only numpy, PIL, torch, transformers and its sibling `video_reading_pite`.
"""

from dataclasses import dataclass
from math import ceil
from typing import Any

import numpy as np
import torch
from PIL import Image
from transformers import BatchFeature
from transformers.image_processing_utils import get_size_dict
from transformers.image_transforms import get_resize_output_image_size
from transformers.image_utils import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD, ChannelDimension, PILImageResampling, SizeDict
from transformers.processing_utils import VideosKwargs

try:  # transformers >= 5.2x: the torch-free base of `BaseVideoProcessor`
    from transformers.video_processing_utils import VideoProcessorMixin
except ImportError:  # transformers 5.17: `BaseVideoProcessor` is the base (it instantiates without torchvision there)
    from transformers.video_processing_utils import BaseVideoProcessor as VideoProcessorMixin
from transformers.video_utils import VideoMetadata

from .video_reading_pite import (
    VIDEO_BACKENDS,
    SampledVideo,
    VideoInputError,
    describe_input,
    flatten_visual_inputs,
    is_single_video,
    read_video,
    sample_frame_indices,
)

RESIZE_BACKENDS = ("pil", "torch")


class PiTeVideoProcessorKwargs(VideosKwargs, total=False):
    """PiTe's video kwargs beyond transformers' `VideosKwargs`.

    video_backend: reader of encoded videos, one of "auto", "pyav", "decord" (see `read_video`).
    video_fps: frame rate(s) of decoded-frame inputs (arrays, frame lists), for their timestamps; one value or one
        per video. `video_metadata` with `fps` does the same.
    resize_backend: "pil" (the CLIP image processor's exact pixels) or "torch" (batched on `device`).
    """

    video_backend: str | None
    video_fps: int | float | list[int | float] | tuple[int | float, ...] | None
    resize_backend: str | None


@dataclass
class PiTeVideoMetadata(VideoMetadata):
    """transformers' `VideoMetadata` of one sampled video, with the frames' presentation times.

    `timestamps` are the sampled frames' times in seconds from the first frame, as the container gives them
    (exact for variable-frame-rate files); `VideoMetadata`'s own property computes `index / fps` instead.
    `num_source_frames` / `frame_indices` name `total_num_frames` / `frames_indices` as PiTe's post-processing
    reads them. `dict(metadata)` is a plain, JSON-serialisable copy (lists and numbers only).
    """

    timestamps: list[float] | None = None

    @property
    def num_source_frames(self) -> int:
        return self.total_num_frames

    @property
    def frame_indices(self) -> list[int] | None:
        return self.frames_indices

    def __iter__(self) -> Any:
        """Field names and the two aliases, so `dict(metadata)` holds every key post-processing reads."""
        yield from super().__iter__()
        yield from ("num_source_frames", "frame_indices")

    def __len__(self) -> int:
        return super().__len__() + 2

    def __getitem__(self, item: str) -> Any:
        if not isinstance(item, str) or not hasattr(self, item):
            raise KeyError(item)
        return getattr(self, item)

    @classmethod
    def from_sampled(cls, sampled: SampledVideo) -> "PiTeVideoMetadata":
        meta = sampled.metadata
        return cls(
            total_num_frames=meta["num_source_frames"],
            fps=meta["fps"],
            width=meta["width"],
            height=meta["height"],
            duration=meta["duration"],
            video_backend=meta.get("video_backend"),
            frames_indices=list(meta["frame_indices"]),
            timestamps=meta["timestamps"],
        )


def _to_numpy(videos: Any) -> Any:
    """Torch tensors -> numpy, recursively through lists (the reader takes numpy and PIL)."""
    if isinstance(videos, torch.Tensor):
        return videos.detach().cpu().numpy()
    if isinstance(videos, (list, tuple)):
        return [_to_numpy(item) for item in videos]
    return videos


def _channels_last(video: Any) -> Any:
    """A (T, C, H, W) array (C = 1 or 3) -> (T, H, W, 3); other inputs unchanged."""
    channels_first = isinstance(video, np.ndarray) and video.ndim == 4 and video.shape[1] in (1, 3)
    if channels_first and video.shape[-1] not in (1, 3):
        video = np.moveaxis(video, 1, -1)
    if isinstance(video, np.ndarray) and video.ndim == 4 and video.shape[-1] == 1:
        video = np.repeat(video, 3, axis=-1)
    return np.ascontiguousarray(video) if isinstance(video, np.ndarray) else video


class PiTeVideoProcessor(VideoProcessorMixin):
    """Samples `num_frames` frames per video as the release does and applies CLIP's preprocessing to them.

    `video_processor(videos)` returns `pixel_values_videos` (V, N, 3, H, W) and, with `return_metadata=True`,
    `video_metadata` (a `PiTeVideoMetadata` per video). Accepted videos: paths, encoded bytes, binary file objects,
    uint8 arrays or tensors (T, H, W, 3) or (T, 3, H, W), lists of frames, and nested per-sample lists of those.
    """

    resample = PILImageResampling.BICUBIC
    image_mean = OPENAI_CLIP_MEAN
    image_std = OPENAI_CLIP_STD
    size = {"shortest_edge": 224}
    crop_size = {"height": 224, "width": 224}
    default_to_square = False
    do_resize = True
    do_center_crop = True
    do_rescale = True
    rescale_factor = 1 / 255
    do_normalize = True
    do_convert_rgb = True
    do_sample_frames = True
    num_frames = 100
    video_backend = "auto"
    resize_backend = "pil"
    return_metadata = False
    valid_kwargs = PiTeVideoProcessorKwargs
    model_input_names = ["pixel_values_videos"]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        attributes = {}
        for key in self.valid_kwargs.__annotations__:
            value = kwargs.pop(key, None)
            attributes[key] = value if value is not None else getattr(self, key, None)
        for key, value in self._standardize_kwargs(**attributes).items():
            setattr(self, key, value)
        self._valid_kwargs_names = list(self.valid_kwargs.__annotations__)
        self._check_options(self.num_frames, self.video_backend, self.resize_backend)

    @staticmethod
    def _check_options(num_frames: Any, video_backend: Any, resize_backend: Any) -> None:
        if num_frames is not None and (not isinstance(num_frames, int) or num_frames < 1):
            raise ValueError(f"num_frames must be an integer >= 1, got {num_frames!r}")
        if video_backend is not None and video_backend not in VIDEO_BACKENDS:
            raise ValueError(f"video_backend must be one of {VIDEO_BACKENDS}, got {video_backend!r}")
        if resize_backend is not None and resize_backend not in RESIZE_BACKENDS:
            raise ValueError(f"resize_backend must be one of {RESIZE_BACKENDS}, got {resize_backend!r}")

    # ------------------------------------------------------------------ sampling and decoding
    def sample_frames(
        self, metadata: VideoMetadata, num_frames: int | None = None, fps: float | None = None, **kwargs: Any
    ) -> np.ndarray:
        """The release's indices: `np.linspace(0, T - 1, N, dtype=np.int32)` with T = `metadata.total_num_frames`.

        Sampling at a target `fps` is not the release's rule and is refused. Returns int64 (N,).
        """
        if fps is not None:
            raise ValueError(
                "PiTe samples num_frames frames spread over the whole video (the release's rule); "
                "sampling at a target fps is not supported"
            )
        return sample_frame_indices(int(metadata.total_num_frames), int(num_frames or self.num_frames))

    def fetch_videos(self, video_url_or_urls: Any, sample_indices_fn: Any = None) -> tuple[list, list]:
        """Read videos with PiTe's reader (`read_video`, the processor's `num_frames` and `video_backend`) instead of
        transformers' torchcodec/torchvision loaders; `sample_indices_fn` is not used: the frames are the release's."""
        flat = flatten_visual_inputs(video_url_or_urls, is_single_video, "video")
        sampled = [read_video(video, self.num_frames, backend=self.video_backend) for video in flat]
        return [video.frames for video in sampled], [PiTeVideoMetadata.from_sampled(v) for v in sampled]

    def read_videos(
        self,
        videos: Any,
        num_frames: int | None = None,
        video_fps: Any = None,
        video_backend: str | None = None,
        video_metadata: Any = None,
        do_sample_frames: bool = True,
        frame_transform: Any = None,
    ) -> list[SampledVideo]:
        """Sample (decode) each video of `videos` (flattened in order): uint8 frames (N, H, W, 3) and metadata.

        `num_frames` / `video_backend` default to the processor's; `video_fps` or `video_metadata` give the frame
        rate of decoded-frame inputs. `do_sample_frames=False` keeps every frame of decoded inputs.
        `frame_transform` (uint8 (H, W, 3) -> uint8 (h, w, 3)) is applied to each frame as it is decoded."""
        num_frames = num_frames or self.num_frames
        video_backend = video_backend or self.video_backend
        self._check_options(num_frames, video_backend, None)
        flat = [_channels_last(video) for video in flatten_visual_inputs(_to_numpy(videos), is_single_video, "video")]
        fps_list = self._frame_rates(video_fps, video_metadata, len(flat))
        sampled = []
        for video, fps in zip(flat, fps_list):
            decoded = isinstance(video, (np.ndarray, list, tuple))
            if not do_sample_frames and not decoded:
                raise ValueError(
                    f"do_sample_frames=False keeps every frame of decoded frames; video "
                    f"{describe_input(video)} is encoded: let the processor sample its frames"
                )
            count = num_frames if do_sample_frames else len(video)
            sampled.append(read_video(video, count, fps, backend=video_backend, frame_transform=frame_transform))
            sampled[-1].metadata["video_backend"] = None if decoded else video_backend
        return sampled

    @staticmethod
    def _frame_rates(video_fps: Any, video_metadata: Any, count: int) -> list[float | None]:
        if video_fps is not None and video_metadata is not None:
            raise ValueError("pass the frame rate of decoded frames as video_fps or in video_metadata, not both")
        if video_metadata is not None:
            entries = video_metadata if isinstance(video_metadata, (list, tuple)) else [video_metadata]
            entries = [item for entry in entries for item in (entry if isinstance(entry, (list, tuple)) else [entry])]
            fps_list = [entry.get("fps") if isinstance(entry, dict) else entry.fps for entry in entries]
        elif isinstance(video_fps, (list, tuple)):
            fps_list = list(video_fps)
        else:
            fps_list = [video_fps] * count
        if len(fps_list) != count:
            raise ValueError(f"got {len(fps_list)} video_fps values for {count} videos")
        return fps_list

    # ------------------------------------------------------------------ preprocessing
    def preprocess(self, videos: Any, **kwargs: Any) -> BatchFeature:
        """Sample, decode and preprocess `videos`; kwargs are `PiTeVideoProcessorKwargs` overriding the processor's."""
        unknown = set(kwargs) - set(self.valid_kwargs.__annotations__) - {"return_tensors"}
        if unknown:
            raise TypeError(f"unexpected arguments for {type(self).__name__}: {sorted(unknown)}")
        for name in self.valid_kwargs.__annotations__:
            if kwargs.get(name) is None:
                kwargs[name] = getattr(self, name, None)
        if kwargs.get("fps") is not None:
            self.sample_frames(VideoMetadata(total_num_frames=1), fps=kwargs["fps"])  # raises with the reason
        self._check_options(kwargs["num_frames"], kwargs["video_backend"], kwargs["resize_backend"])
        kwargs = self._standardize_kwargs(**kwargs)
        self._validate_preprocess_kwargs(**kwargs)
        # PIL's resize runs in the reader, frame by frame as decoded; the frames arrive at their resized size.
        resize_in_reader = bool(kwargs["do_resize"]) and kwargs["resize_backend"] == "pil"
        transform = self.pil_resize_transform(kwargs["size"], kwargs["resample"]) if resize_in_reader else None
        sampled = self.read_videos(
            videos,
            kwargs["num_frames"],
            kwargs["video_fps"],
            kwargs["video_backend"],
            kwargs["video_metadata"],
            bool(kwargs["do_sample_frames"]),
            transform,
        )
        frames = [video.frames for video in sampled]
        metadata = [PiTeVideoMetadata.from_sampled(video) for video in sampled]
        if resize_in_reader:
            kwargs["do_resize"] = False
        pixels = [self._preprocess_one(video, **kwargs) for video in frames]
        data: dict[str, Any] = {"pixel_values_videos": pixels}
        return_tensors = kwargs.get("return_tensors")
        if return_tensors is not None and len({tuple(p.shape) for p in pixels}) == 1:
            data["pixel_values_videos"] = torch.stack(pixels)
        if kwargs.get("return_metadata"):
            data["video_metadata"] = metadata
        return BatchFeature(data=data, tensor_type=return_tensors, skip_tensor_conversion=["video_metadata"])

    def _preprocess_one(
        self,
        frames: np.ndarray,
        do_resize: bool,
        size: SizeDict,
        resample: Any,
        do_center_crop: bool,
        crop_size: SizeDict,
        do_rescale: bool,
        rescale_factor: float,
        do_normalize: bool,
        image_mean: Any,
        image_std: Any,
        device: Any = None,
        resize_backend: str = "pil",
        **kwargs: Any,
    ) -> torch.Tensor:
        """uint8 frames (N, H, W, 3) -> float32 (N, 3, h, w), in the CLIP image processor's order of operations."""
        if do_resize:
            height, width = self._resize_target(frames, size)
            if resize_backend == "pil":
                frames = np.stack(
                    [np.asarray(Image.fromarray(frame).resize((width, height), resample=resample)) for frame in frames]
                )
                video = torch.from_numpy(frames).to(device).permute(0, 3, 1, 2)
            else:
                video = torch.from_numpy(frames).to(device).permute(0, 3, 1, 2).to(torch.float32)
                video = self._resize_like_pil(video, height, width)
        else:
            video = torch.from_numpy(frames).to(device).permute(0, 3, 1, 2)
        if do_center_crop:
            video = self._center_crop(video, crop_size.height, crop_size.width)
        if do_rescale:  # as numpy's rescale: in float64, then float32
            video = (video.to(torch.float64) * rescale_factor).to(torch.float32)
        if do_normalize:
            video = video.to(torch.float32)
            shape = (1, -1, 1, 1)
            mean = torch.tensor(image_mean, dtype=torch.float32, device=video.device).reshape(shape)
            std = torch.tensor(image_std, dtype=torch.float32, device=video.device).reshape(shape)
            video = (video - mean) / std
        return video.to(torch.float32).contiguous()

    @classmethod
    def pil_resize_transform(cls, size: SizeDict, resample: Any) -> Any:
        """One uint8 frame (H, W, 3) -> the frame resized as the CLIP image processor resizes it (PIL, `resample`,
        to `size`): what `read_video(frame_transform=...)` applies to each frame as soon as it is decoded."""

        def resize(frame: np.ndarray) -> np.ndarray:
            height, width = cls._resize_target(frame[None], size)
            return np.asarray(Image.fromarray(frame).resize((width, height), resample=resample))

        return resize

    @staticmethod
    def _resize_like_pil(video: torch.Tensor, height: int, width: int) -> torch.Tensor:
        """Bicubic resize of float frames (N, 3, H, W) holding uint8 levels, as PIL resizes 8-bit images: the
        horizontal pass, then the vertical one, each rounded and clipped to [0, 255]. Without the clipping between
        passes, overshoot on sharp edges differs from PIL by up to 23 levels (measured on noise)."""
        video = (
            torch.nn.functional.interpolate(
                video, size=(video.shape[-2], width), mode="bicubic", antialias=True, align_corners=False
            )
            .round()
            .clamp(0, 255)
        )
        return (
            torch.nn.functional.interpolate(
                video, size=(height, width), mode="bicubic", antialias=True, align_corners=False
            )
            .round()
            .clamp(0, 255)
        )

    @staticmethod
    def _resize_target(frames: np.ndarray, size: SizeDict) -> tuple[int, int]:
        if size.shortest_edge:
            return get_resize_output_image_size(
                frames[0], size=size.shortest_edge, default_to_square=False, input_data_format=ChannelDimension.LAST
            )
        if size.height and size.width:
            return size.height, size.width
        raise ValueError(f"size must hold 'shortest_edge' or 'height' and 'width', got {dict(size)}")

    @staticmethod
    def _center_crop(video: torch.Tensor, crop_height: int, crop_width: int) -> torch.Tensor:
        """transformers' `center_crop`: top-left at (H - h) // 2, zero padding where the frame is smaller."""
        height, width = video.shape[-2:]
        new_height, new_width = max(crop_height, height), max(crop_width, width)
        if (new_height, new_width) != (height, width):
            top_pad, left_pad = ceil((new_height - height) / 2), ceil((new_width - width) / 2)
            padded = video.new_zeros((*video.shape[:-2], new_height, new_width))
            padded[..., top_pad : top_pad + height, left_pad : left_pad + width] = video
            video = padded
        top, left = (new_height - crop_height) // 2, (new_width - crop_width) // 2
        return video[..., top : top + crop_height, left : left + crop_width]

    @classmethod
    def from_image_processor(cls, image_processor: Any, **kwargs: Any) -> "PiTeVideoProcessor":
        """A video processor with `image_processor`'s resize/crop/rescale/normalize settings (CLIP's)."""
        settings = {}
        for name in (
            "size",
            "crop_size",
            "resample",
            "do_resize",
            "do_center_crop",
            "do_rescale",
            "rescale_factor",
            "do_normalize",
            "image_mean",
            "image_std",
            "do_convert_rgb",
        ):
            value = getattr(image_processor, name, None)
            if value is not None:
                settings[name] = dict(value) if isinstance(value, (dict, SizeDict)) else value
        if "size" in settings:
            settings["size"] = {k: v for k, v in settings["size"].items() if v is not None}
            settings["size"] = get_size_dict(settings["size"], default_to_square=False)
        if "crop_size" in settings:
            settings["crop_size"] = {k: v for k, v in settings["crop_size"].items() if v is not None}
        return cls(**{**settings, **kwargs})


PiTeVideoProcessor.register_for_auto_class("AutoVideoProcessor")

__all__ = ["PiTeVideoMetadata", "PiTeVideoProcessor", "PiTeVideoProcessorKwargs", "VideoInputError"]

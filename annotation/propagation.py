"""Mask propagation through an event's frames with SAM2 video (`Sam2VideoModel`), streaming.

The grounding frame's masks (one per object) are the conditioning inputs of one inference session holding every
object of the event; later frames are streamed one at a time (`model(session, frame=..., frame_idx=...)`), so
frames are decoded lazily and a frame's pixels are dropped once the next frame has been processed (the session keeps
only SAM2's memory features). An object SAM2 judges absent (object score < 0) gets an empty mask.

`Sam2VideoProcessor` needs torchvision, which this package does not depend on, so the processor's steps are
mirrored here: frames are resized to the model's `image_size` (bilinear, antialiased), scaled to [0, 1] and
normalised with ImageNet mean/std (SAM2's constants); input masks are resized the same way and thresholded at 0.5;
output mask logits are upscaled to the model's input size and then to the frame's size (bilinear), thresholded at
`mask_threshold`. EdgeTAM video checkpoints (`EdgeTamVideoModel`, same session API) are accepted by the same code
but are not exercised by this package's tests.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator

import numpy as np

from .components import load_checkpoint
from .pretrained import PretrainedComponent

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _model_classes(model_type: str) -> tuple[type, type]:
    """(model class, inference-session class) of a video-segmentation config type."""
    if model_type == "sam2_video":
        from transformers import Sam2VideoModel
        from transformers.models.sam2_video.modeling_sam2_video import Sam2VideoInferenceSession

        return Sam2VideoModel, Sam2VideoInferenceSession
    if model_type == "edgetam_video":
        from transformers import EdgeTamVideoModel
        from transformers.models.edgetam_video.modeling_edgetam_video import EdgeTamVideoInferenceSession

        return EdgeTamVideoModel, EdgeTamVideoInferenceSession
    raise ValueError(
        f"the propagator needs a 'sam2_video' or 'edgetam_video' checkpoint, got model_type {model_type!r}"
    )


class Sam2VideoPropagator(PretrainedComponent):
    """SAM2 video (or EdgeTAM video) as a `Propagator`.

    Args:
        checkpoint: local folder or cached hub id (e.g. "facebook/sam2.1-hiera-tiny").
        mask_threshold: logit threshold of the upscaled masks.
        device, dtype: where and how to run (default: CUDA if available, float32).
    """

    def __init__(
        self,
        checkpoint: str | os.PathLike,
        mask_threshold: float = 0.0,
        device: str | None = None,
        dtype: str | None = None,
    ) -> None:
        from transformers import AutoConfig

        self.mask_threshold = mask_threshold
        super().__init__(device, dtype)
        config = load_checkpoint(AutoConfig.from_pretrained, checkpoint, "SAM2 video propagator config")
        model_class, self.session_class = _model_classes(config.model_type)
        self.model = self.load_model(model_class, checkpoint, "SAM2 video propagator")
        size = config.image_size
        self.size = (int(size), int(size)) if isinstance(size, int) else (int(size[0]), int(size[1]))

    def _pixel_values(self, frame: np.ndarray) -> "torch.Tensor":  # noqa: F821
        """(3, S, S) normalised model input for one (H, W, 3) uint8 frame."""
        import torch
        import torch.nn.functional as F

        pixels = torch.from_numpy(np.ascontiguousarray(frame)).permute(2, 0, 1)[None].float()
        pixels = F.interpolate(pixels, size=self.size, mode="bilinear", align_corners=False, antialias=True) / 255.0
        mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
        return ((pixels - mean) / std)[0]

    def _mask_input(self, mask: np.ndarray) -> "torch.Tensor":  # noqa: F821
        """(1, 1, S, S) float {0, 1} conditioning mask for one (H, W) bool mask."""
        import torch
        import torch.nn.functional as F

        resized = F.interpolate(
            torch.from_numpy(mask)[None, None].float(),
            size=self.size,
            mode="bilinear",
            align_corners=False,
            antialias=True,
        )
        return (resized >= 0.5).float()

    def _output_masks(self, pred_masks: "torch.Tensor", height: int, width: int) -> np.ndarray:  # noqa: F821
        """(K, H, W) bool frame-size masks from (K, 1, h, w) low-resolution logits."""
        import torch.nn.functional as F

        logits = F.interpolate(pred_masks.float(), size=self.size, mode="bilinear", align_corners=False)
        logits = F.interpolate(logits, size=(height, width), mode="bilinear", align_corners=False)
        return (logits[:, 0] > self.mask_threshold).cpu().numpy()

    def propagate(self, frames: Iterable[np.ndarray], first_masks: np.ndarray) -> Iterator[np.ndarray]:
        """Yields (K, H, W) bool masks for each frame of `frames` (the grounding frame first), see `Propagator`."""
        first_masks = np.asarray(first_masks)
        if first_masks.ndim != 3 or first_masks.dtype != bool:
            raise ValueError(
                f"first_masks must be a (K, H, W) bool array, got {first_masks.shape} {first_masks.dtype}"
            )
        frame_iterator = iter(frames)
        try:
            first = next(frame_iterator)
        except StopIteration:
            return
        height, width = first.shape[:2]
        if first_masks.shape[1:] != (height, width):
            raise ValueError(f"first_masks are {first_masks.shape[1:]} but frames are {(height, width)}")
        if len(first_masks) == 0:
            yield first_masks
            for _ in frame_iterator:
                yield first_masks
            return
        session = self.session_class(
            video_height=height,
            video_width=width,
            inference_device=self.device,
            inference_state_device=self.device,
            video_storage_device=self.device,
            dtype=self.dtype,
        )
        session.add_new_frame(self._pixel_values(first), frame_idx=0)
        object_ids = list(range(len(first_masks)))
        for object_id, mask in zip(object_ids, first_masks):
            session.add_mask_inputs(session.obj_id_to_idx(object_id), 0, self._mask_input(mask))
        session.obj_with_new_inputs = list(object_ids)
        output = self.model(inference_session=session, frame_idx=0)
        yield self._output_masks(output.pred_masks, height, width)
        for frame_index, frame in enumerate(frame_iterator, start=1):
            output = self.model(inference_session=session, frame=self._pixel_values(frame), frame_idx=frame_index)
            # Only memory features of past frames are used from here on: drop their pixels to bound memory.
            session.processed_frames.pop(frame_index - 1, None)
            yield self._output_masks(output.pred_masks, height, width)

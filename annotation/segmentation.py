"""Box-prompted segmentation of the grounding frame with SAM (`SamModel` + `SamProcessor`).

All boxes of an event go through one forward pass (one image embedding). With a box prompt SAM is asked for a
single mask (`multimask_output=False`), which is what it was trained to give for unambiguous box prompts.
`SamProcessor` works with its PIL image processor, so this needs neither torchvision nor scipy.
"""

from __future__ import annotations

import os

import numpy as np

from .components import load_checkpoint
from .pretrained import PretrainedComponent


class SamSegmenter(PretrainedComponent):
    """SAM as a `Segmenter`.

    Args:
        checkpoint: local folder or cached hub id (e.g. "facebook/sam-vit-base").
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
        from transformers import SamModel, SamProcessor

        self.mask_threshold = mask_threshold
        super().__init__(device, dtype)
        self.model = self.load_model(SamModel, checkpoint, "SAM segmenter")
        self.processor = load_checkpoint(SamProcessor.from_pretrained, checkpoint, "SAM processor")

    def segment(self, image: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """Masks (K, H, W) bool of `image` (H, W, 3) uint8 for boxes (K, 4) `(x0, y0, x1, y1)` pixels."""
        import torch

        boxes = np.asarray(boxes, dtype=np.float64)
        if boxes.ndim != 2 or boxes.shape[1] != 4:
            raise ValueError(f"boxes must have shape (K, 4), got {boxes.shape}")
        height, width = image.shape[:2]
        if len(boxes) == 0:
            return np.zeros((0, height, width), dtype=bool)
        inputs = self.processor(images=[image], input_boxes=[boxes.tolist()], return_tensors="pt")
        with torch.inference_mode():
            outputs = self.model(
                pixel_values=inputs["pixel_values"].to(self.device, self.dtype),
                input_boxes=inputs["input_boxes"].to(self.device, self.dtype),
                multimask_output=False,
            )
        masks = self.processor.post_process_masks(
            outputs.pred_masks.float().cpu(),
            inputs["original_sizes"],
            inputs["reshaped_input_sizes"],
            mask_threshold=self.mask_threshold,
        )[0]  # (K, 1, H, W) bool
        return masks[:, 0].numpy().astype(bool)

"""Grounding a caption's phrases on an event's first frame with OWLv2 (`Owlv2ForObjectDetection`).

All phrases of an event are the text queries of one forward pass; each phrase keeps its single best-scoring box
if that score reaches `threshold`.

Image preprocessing is done here in torch, mirroring transformers' fast `Owlv2ImageProcessor` step for step
(rescale to [0, 1], zero-pad bottom/right to a square, Gaussian anti-aliasing with sigma = (factor - 1) / 2 and a
2 ceil(3 sigma) + 1 kernel, bilinear resize, normalise with the checkpoint's mean/std): that processor needs
torchvision and the PIL one needs scipy, neither of which this package depends on. Mean, std and input size are
read from the checkpoint's image-processor config; the tokenizer is the checkpoint's own.
OWLv2 predicts boxes relative to the padded square, so they are scaled by its side, then clipped to the image.
"""

from __future__ import annotations

import math
import os

import numpy as np

from .components import Detection, load_checkpoint
from .pretrained import PretrainedComponent


def _gaussian_kernel(sigma: float) -> "torch.Tensor":  # noqa: F821
    import torch

    size = 2 * math.ceil(3 * sigma) + 1
    x = torch.linspace(-(size - 1) / 2, (size - 1) / 2, size, dtype=torch.float32)
    kernel = torch.exp(-0.5 * (x / sigma) ** 2)
    return kernel / kernel.sum()


def owlv2_pixel_values(
    image: np.ndarray, size: tuple[int, int], mean: list[float], std: list[float]
) -> "torch.Tensor":  # noqa: F821
    """(1, 3, size_h, size_w) float32 OWLv2 input for an (H, W, 3) uint8 image (see the module docstring)."""
    import torch
    import torch.nn.functional as F

    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 image, got {image.shape} {image.dtype}")
    height, width = image.shape[:2]
    side = max(height, width)
    pixels = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float() / 255.0
    pixels = F.pad(pixels, (0, side - width, 0, side - height), value=0.0)[None]
    for axis, target in ((2, size[0]), (3, size[1])):  # separable blur, per axis like torchvision's gaussian_blur
        sigma = max(0.0, (side / target - 1) / 2)
        if sigma > 0:
            kernel = _gaussian_kernel(sigma)
            half = len(kernel) // 2
            shape = (1, 1, len(kernel), 1) if axis == 2 else (1, 1, 1, len(kernel))
            padding = (0, 0, half, half) if axis == 2 else (half, half, 0, 0)
            padded = F.pad(pixels.reshape(-1, 1, *pixels.shape[2:]), padding, mode="reflect")
            pixels = F.conv2d(padded, kernel.reshape(shape)).reshape(pixels.shape)
    pixels = F.interpolate(pixels, size=size, mode="bilinear", align_corners=False, antialias=False)
    mean_t = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
    return (pixels - mean_t) / std_t


class Owlv2Grounder(PretrainedComponent):
    """OWLv2 open-vocabulary detection as a `Grounder`.

    Args:
        checkpoint: local folder or cached hub id (e.g. "google/owlv2-base-patch16-ensemble").
        threshold: minimum score (sigmoid of the query logit) for a phrase to count as grounded.
        device, dtype: where and how to run (default: CUDA if available, float32).
    """

    def __init__(
        self,
        checkpoint: str | os.PathLike,
        threshold: float = 0.1,
        device: str | None = None,
        dtype: str | None = None,
    ) -> None:
        from transformers import AutoImageProcessor, AutoTokenizer, Owlv2ForObjectDetection

        if not 0 <= threshold <= 1:
            raise ValueError(f"detection threshold must be in [0, 1], got {threshold}")
        self.threshold = threshold
        super().__init__(device, dtype)
        self.model = self.load_model(Owlv2ForObjectDetection, checkpoint, "OWLv2 detector")
        self.tokenizer = load_checkpoint(AutoTokenizer.from_pretrained, checkpoint, "OWLv2 tokenizer")
        image_processor = load_checkpoint(
            AutoImageProcessor.from_pretrained, checkpoint, "OWLv2 image-processor config"
        )
        size = image_processor.size
        self.size = (int(size["height"]), int(size["width"]))
        self.mean = list(image_processor.image_mean)
        self.std = list(image_processor.image_std)
        self.max_text_length = int(self.model.config.text_config.max_position_embeddings)

    def ground(self, image: np.ndarray, phrases: list[str]) -> list[Detection | None]:
        """The best box of each phrase in `image` (H, W, 3) uint8, None where its best score < threshold."""
        import torch

        if not phrases:
            return []
        height, width = image.shape[:2]
        text = self.tokenizer(
            phrases, padding="max_length", truncation=True, max_length=self.max_text_length, return_tensors="pt"
        )
        pixel_values = owlv2_pixel_values(image, self.size, self.mean, self.std)
        with torch.inference_mode():
            outputs = self.model(
                input_ids=text["input_ids"].to(self.device),
                attention_mask=text["attention_mask"].to(self.device),
                pixel_values=pixel_values.to(self.device, self.dtype),
            )
        scores = outputs.logits[0].float().sigmoid()  # (num_boxes, num_phrases)
        boxes = outputs.pred_boxes[0].float()  # (num_boxes, 4) centre x, centre y, w, h of the padded square
        side = float(max(height, width))
        detections: list[Detection | None] = []
        for query in range(len(phrases)):
            best = int(scores[:, query].argmax())
            score = float(scores[best, query])
            cx, cy, w, h = (boxes[best] * side).tolist()
            x0, x1 = max(0.0, cx - w / 2), min(float(width), cx + w / 2)
            y0, y1 = max(0.0, cy - h / 2), min(float(height), cy + h / 2)
            if score < self.threshold or x1 <= x0 or y1 <= y0:
                detections.append(None)
            else:
                detections.append(Detection(box=(x0, y0, x1, y1), score=score))
        return detections

"""Single images with per-word point annotations in Localized Narratives format (stage 1 data).

An image shows 1-3 shapes, each in its own cell of a 3x3 grid, named by where it is: "a red circle on the left
with a blue square at the bottom". The narration is timed word by word; while the words of an object's phrase are
spoken the mouse hovers on that object, in between it glides to the next one (as a real annotator's would).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .scene import ShapeObject, WorldConfig, make_background, paint, render_labels

# Grid cell (column, row) of the 3x3 thirds -> the location words for an object there.
LOCATIONS: dict[tuple[int, int], str] = {
    (0, 0): "at the top left",
    (1, 0): "at the top",
    (2, 0): "at the top right",
    (0, 1): "on the left",
    (1, 1): "in the centre",
    (2, 1): "on the right",
    (0, 2): "at the bottom left",
    (1, 2): "at the bottom",
    (2, 2): "at the bottom right",
}
DATASET_ID = "pite_demo_shapes"
TRACE_STEP_SECONDS = 0.05
# The mouse circles an object's centre at this fraction of its size: well inside every shape (the triangle's
# inradius is 0.65 size), so each hovering point lies on the object's pixels.
HOVER_RADIUS = 0.3


@dataclass
class ImageScene:
    """One still image: objects with normalised centres (K, 2) and the grid cell each one occupies."""

    image_id: str
    config: WorldConfig
    objects: list[ShapeObject]
    centres: np.ndarray
    cells: list[tuple[int, int]]
    background: np.ndarray = field(repr=False)

    def phrase(self, index: int) -> str:
        obj = self.objects[index]
        return f"a {obj.colour} {obj.shape} {LOCATIONS[self.cells[index]]}"


def sample_image_scene(rng: np.random.Generator, cfg: WorldConfig, image_id: str) -> ImageScene:
    """Draw 1-3 objects (distinct colours and shapes) in distinct grid cells, fully inside the image."""
    count = int(rng.integers(cfg.num_objects[0], cfg.num_objects[1] + 1))
    colours = rng.choice(len(cfg.colours), size=count, replace=False)
    shapes = rng.choice(len(cfg.shapes), size=count, replace=False)
    cell_ids = rng.choice(9, size=count, replace=False)
    unit = min(cfg.width, cfg.height)
    objects, centres, cells = [], [], []
    for k, (c, s, cell) in enumerate(zip(colours, shapes, cell_ids)):
        size = float(rng.uniform(*cfg.object_size) * unit)
        column, row = int(cell % 3), int(cell // 3)
        # Jitter inside the cell, keeping the shape (extent <= 1.3 size) off the cell's borders and the image edge.
        jitter_x = max(0.0, 1 / 6 - 1.4 * size / cfg.width)
        jitter_y = max(0.0, 1 / 6 - 1.4 * size / cfg.height)
        centre = (
            (column + 0.5) / 3 + rng.uniform(-jitter_x, jitter_x),
            (row + 0.5) / 3 + rng.uniform(-jitter_y, jitter_y),
        )
        objects.append(ShapeObject(k, cfg.colours[int(c)], cfg.shapes[int(s)], size))
        centres.append(centre)
        cells.append((column, row))
    background = make_background(rng, cfg.height, cfg.width, cfg.background_texture)
    return ImageScene(image_id, cfg, objects, np.array(centres, dtype=np.float64), cells, background)


def render_image(scene: ImageScene) -> tuple[np.ndarray, np.ndarray]:
    """(image (H, W, 3) uint8, labels (H, W) int8 object index or -1)."""
    labels = render_labels(scene.objects, scene.centres[:, None, :], scene.config.height, scene.config.width)[0]
    return paint(labels, scene.objects, scene.background), labels


def image_caption_words(scene: ImageScene) -> list[tuple[str, int | None]]:
    """The caption's words, each with the object index its phrase refers to (None for joining words)."""
    words: list[tuple[str, int | None]] = []
    for k in range(len(scene.objects)):
        if k:
            words.append(("and" if k == len(scene.objects) - 1 else "with", None))
        words += [(word, k) for word in scene.phrase(k).split(" ")]
    return words


def localized_narrative(scene: ImageScene, rng: np.random.Generator) -> dict:
    """A Localized Narratives record: caption, per-word `timed_caption`, one mouse trace segment on the same clock.

    Every trace point whose time lies inside an utterance of an object's phrase (or a pause between two of its
    words) is on that object's pixels; the others lie on the straight glide between objects.
    """
    words = image_caption_words(scene)
    # Times are rounded to milliseconds as they are written, and compared in that form, so that a trace point on
    # an utterance boundary is classified the same way by the writer and by any reader.
    timed, clock = [], round(float(rng.uniform(0.3, 0.8)), 2)
    phrase_spans: dict[int, list[float]] = {}
    for word, owner in words:
        start, end = clock, round(clock + float(rng.uniform(0.25, 0.5)), 2)
        timed.append({"utterance": word, "start_time": start, "end_time": end})
        if owner is not None:
            span = phrase_spans.setdefault(owner, [start, end])
            span[1] = end
        clock = round(end + float(rng.uniform(0.0, 0.1)), 2)
    width, height = scene.config.width, scene.config.height
    scale = np.array([width, height], dtype=np.float64)
    times = np.round(np.arange(0.0, clock + 0.3, TRACE_STEP_SECONDS), 3)
    phase = rng.uniform(0, 2 * np.pi)
    spans = [(k, *phrase_spans[k]) for k in range(len(scene.objects))]
    trace = []
    for t in times:
        point = _mouse_at(t, spans, scene, phase)
        trace.append(
            {"x": round(float(point[0] / scale[0]), 5), "y": round(float(point[1] / scale[1]), 5), "t": float(t)}
        )
    return {
        "dataset_id": DATASET_ID,
        "image_id": scene.image_id,
        "annotator_id": int(rng.integers(0, 32)),
        "caption": " ".join(word for word, _ in words),
        "timed_caption": timed,
        "traces": [trace],
        "voice_recording": f"{DATASET_ID}/{scene.image_id}.ogg",
    }


def _mouse_at(t: float, spans: list[tuple[int, float, float]], scene: ImageScene, phase: float) -> np.ndarray:
    """Pixel (x, y) of the mouse at time `t`: hovering on the object being named, else gliding between objects."""
    scale = np.array([scene.config.width, scene.config.height], dtype=np.float64)

    def hover(k: int, time: float) -> np.ndarray:
        angle = phase + 2 * np.pi * time  # one slow circle per second
        radius = HOVER_RADIUS * scene.objects[k].size
        return scene.centres[k] * scale + radius * np.array([np.cos(angle), np.sin(angle)])

    for k, start, end in spans:
        if start <= t <= end:
            return hover(k, t)
    before = [(k, end) for k, _, end in spans if end < t]
    after = [(k, start) for k, start, _ in spans if start > t]
    if not before:
        return hover(after[0][0], after[0][1])
    if not after:
        return hover(before[-1][0], before[-1][1])
    (k0, t0), (k1, t1) = before[-1], after[0]
    fraction = (t - t0) / (t1 - t0)
    return (1 - fraction) * hover(k0, t0) + fraction * hover(k1, t1)

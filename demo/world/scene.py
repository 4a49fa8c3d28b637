"""Synthetic moving-shapes videos: configuration, motion scripts, events, rendering.

A video holds 1-3 coloured shapes (distinct colours, distinct shapes, so "the red circle" names one object).
Each object follows a script of contiguous segments in integer source frames: it stays still or moves at
constant velocity along one axis. Segments that a viewer can name become events ("the red circle moves to
the left", "... stops", "... appears", "... disappears") whose start/end fall exactly on frame times
(`frame / fps` seconds). Objects may appear after the start or vanish before the end, and may travel partly
outside the frame. Rendering is a pure function of the scene: same scene, same pixels.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# Saturated colours far from the light-grey backgrounds and from each other, so that they survive
# yuv420p chroma subsampling at 64x64.
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 170, 60),
    "blue": (40, 80, 220),
    "yellow": (235, 200, 30),
    "purple": (150, 60, 190),
}
SHAPES: tuple[str, ...] = ("circle", "square", "triangle")
DIRECTIONS: dict[str, tuple[float, float]] = {
    "left": (-1.0, 0.0),
    "right": (1.0, 0.0),
    "up": (0.0, -1.0),
    "down": (0.0, 1.0),
}
# Event kinds a still segment can carry; a move segment's event kind is its direction.
STILL_EVENTS = ("appears", "stops", "disappears")


@dataclass(frozen=True)
class WorldConfig:
    """Every knob of the synthetic world. Sizes in pixels, times in seconds, positions normalised to [0, 1]."""

    width: int = 64
    height: int = 64
    fps: int = 10
    duration_seconds: tuple[float, float] = (5.0, 8.0)
    num_objects: tuple[int, int] = (1, 3)
    colours: tuple[str, ...] = tuple(COLOURS)
    shapes: tuple[str, ...] = SHAPES
    # Half extent of a shape (circle radius) as a fraction of min(width, height).
    object_size: tuple[float, float] = (0.08, 0.11)
    num_key_points: int = 3
    num_frames: int = 100
    appear_probability: float = 0.3
    disappear_probability: float = 0.3
    move_seconds: tuple[float, float] = (1.5, 3.0)
    still_seconds: tuple[float, float] = (1.0, 2.0)
    # An object is absent at least this long before it appears / after it disappears, so the change is visible.
    absent_seconds: float = 0.5
    min_move_distance: float = 0.2
    max_speed: float = 0.35
    # Object centres stay in [margin, 1 - margin]: a shape near the edge is partly outside the frame.
    centre_margin: float = 0.04
    background_texture: float = 8.0
    # "event": key points are tracked from an event's first frame to its last (the annotator grounds and
    # propagates within the event); "video": from the event's first frame to the end of the video.
    trajectory_window: str = "event"

    @classmethod
    def from_dict(cls, data: dict) -> WorldConfig:
        """Rebuild a config from `dataclasses.asdict` output that went through JSON (lists back to tuples)."""
        return cls(**{key: tuple(value) if isinstance(value, list) else value for key, value in data.items()})

    def __post_init__(self) -> None:
        def fail(name: str, why: str) -> None:
            raise ValueError(f"WorldConfig.{name}: {why} (got {getattr(self, name)!r})")

        for name in ("width", "height"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 32 or value % 2:
                fail(name, "must be an even int >= 32 (yuv420p needs even sizes)")
        if not isinstance(self.fps, int) or not 1 <= self.fps <= 60:
            fail("fps", "must be an int in [1, 60]")
        for name in ("duration_seconds", "num_objects", "object_size", "move_seconds", "still_seconds"):
            low, high = getattr(self, name)
            if not 0 < low <= high:
                fail(name, "must be a (low, high) pair with 0 < low <= high")
        unknown = [c for c in self.colours if c not in COLOURS]
        if unknown or len(set(self.colours)) != len(self.colours):
            fail("colours", f"must be distinct names from {sorted(COLOURS)}")
        if any(s not in SHAPES for s in self.shapes) or len(set(self.shapes)) != len(self.shapes):
            fail("shapes", f"must be distinct names from {SHAPES}")
        if self.num_objects[1] > min(len(self.colours), len(self.shapes)):
            fail("num_objects", "max exceeds the distinct colours/shapes available (objects must be nameable)")
        if self.object_size[1] >= 1 / 6:
            fail("object_size", "must stay below 1/6 so three shapes fit in separate thirds of an image")
        if self.num_key_points < 1 or self.num_frames < 2:
            fail("num_key_points" if self.num_key_points < 1 else "num_frames", "too small")
        if self.trajectory_window not in ("event", "video"):
            fail("trajectory_window", "must be 'event' or 'video'")
        for name in ("appear_probability", "disappear_probability"):
            if not 0 <= getattr(self, name) <= 1:
                fail(name, "must be a probability in [0, 1]")
        if self.duration_seconds[0] < self.move_seconds[0] + self.still_seconds[0]:
            fail("duration_seconds", "shortest video cannot hold one move and one still segment")
        if not 0 < self.min_move_distance <= 1 - 2 * self.centre_margin or self.max_speed <= 0:
            fail("min_move_distance", "must fit between the margins, with max_speed > 0")


@dataclass(frozen=True)
class ShapeObject:
    """One object: its name parts and its half extent in pixels. `index` is also its drawing order."""

    index: int
    colour: str
    shape: str
    size: float

    @property
    def phrase(self) -> str:
        return f"the {self.colour} {self.shape}"


@dataclass(frozen=True)
class Segment:
    """Frames [start_frame, end_frame] of one object's script; the centre moves linearly from `start` to `end`.

    `event` is the event kind it carries ("left"/"right"/"up"/"down" for moves, "appears"/"stops"/"disappears"
    for stills) or None for an unnamed pause.
    """

    kind: str
    start_frame: int
    end_frame: int
    start: tuple[float, float]
    end: tuple[float, float]
    event: str | None


@dataclass(frozen=True)
class Event:
    """A captioned event; its caption starts with the object's phrase ("the red circle"), at `span`."""

    caption: str
    phrase: str
    object_index: int
    kind: str
    start_frame: int
    end_frame: int
    fps: int

    @property
    def start(self) -> float:
        return self.start_frame / self.fps

    @property
    def end(self) -> float:
        return self.end_frame / self.fps

    @property
    def span(self) -> tuple[int, int]:
        return (0, len(self.phrase))


@dataclass
class VideoScene:
    """Everything needed to render a video and know its ground truth.

    `centres` is (K, T, 2) normalised (x, y) per object and source frame, NaN where the object is absent
    (frames outside [first_frame, last_frame)).
    """

    video_id: str
    config: WorldConfig
    num_source_frames: int
    objects: list[ShapeObject]
    scripts: list[list[Segment]]
    first_frames: list[int]
    last_frames: list[int]
    centres: np.ndarray
    events: list[Event]
    background: np.ndarray = field(repr=False)

    @property
    def duration(self) -> float:
        return self.num_source_frames / self.config.fps


def shape_contains(shape: str, size: float, dx: np.ndarray, dy: np.ndarray) -> np.ndarray:
    """Whether offsets (dx, dy) in pixels from a shape's centre lie inside it; broadcasts like numpy.

    circle: radius `size`; square: half side 0.85 `size`; triangle: pointing up, circumradius 1.3 `size`,
    centred on its centroid (roughly equal areas, so no shape is easier to see).
    """
    if shape == "circle":
        return dx * dx + dy * dy <= size * size
    if shape == "square":
        half = 0.85 * size
        return (np.abs(dx) <= half) & (np.abs(dy) <= half)
    if shape == "triangle":
        inradius = 0.65 * size  # half the circumradius 1.3 * size
        return (dy <= inradius) & (0.866 * dx - 0.5 * dy <= inradius) & (-0.866 * dx - 0.5 * dy <= inradius)
    raise ValueError(f"unknown shape {shape!r}; expected one of {SHAPES}")


def make_background(rng: np.random.Generator, height: int, width: int, texture: float) -> np.ndarray:
    """(H, W, 3) uint8 light background: a plain tinted grey, or with a faint low-frequency wave texture."""
    base = rng.uniform(185, 225) + rng.uniform(-10, 10, size=3)
    image = np.broadcast_to(base, (height, width, 3)).astype(np.float64)
    if rng.random() < 0.5 and texture > 0:
        ys, xs = np.mgrid[0:height, 0:width] / max(height, width)
        for _ in range(2):
            fx, fy = rng.uniform(0.5, 3.0, size=2) * rng.choice([-1, 1], size=2)
            wave = np.sin(2 * np.pi * (fx * xs + fy * ys) + rng.uniform(0, 2 * np.pi))
            image = image + (texture / 2) * wave[..., None]
    return np.clip(np.round(image), 0, 255).astype(np.uint8)


def _seconds_to_frames(seconds: float, fps: int) -> int:
    return int(round(seconds * fps))


def _plan_segments(
    rng: np.random.Generator, cfg: WorldConfig, num_frames: int
) -> tuple[int, int, list[tuple[str, str | None, int, int]]]:
    """Choose when one object is visible and the kinds and frame ranges of its segments.

    Returns (first_frame, last_frame exclusive, [(kind, event, start_frame, end_frame)]). The grammar keeps every
    event caption unique within the object: a move is never repeated in the same direction (directions are
    chosen later), "stops" occurs at most once, and two stills are never adjacent.
    """
    fps = cfg.fps
    move_lo, move_hi = (_seconds_to_frames(s, fps) for s in cfg.move_seconds)
    still_lo, still_hi = (_seconds_to_frames(s, fps) for s in cfg.still_seconds)
    absent = max(1, _seconds_to_frames(cfg.absent_seconds, fps))
    last = num_frames - 1
    appear = rng.random() < cfg.appear_probability
    disappear = rng.random() < cfg.disappear_probability
    first_frame, last_frame = 0, num_frames
    if appear:
        latest = last - still_lo - move_lo - (still_lo + absent if disappear else 0)
        if latest < absent:
            appear = False
        else:
            first_frame = int(rng.integers(absent, max(absent, min(latest, last // 2)) + 1))
    if disappear:
        earliest = first_frame + (still_lo if appear else 0) + move_lo + still_lo + 1
        latest = num_frames - absent
        if earliest > latest:
            disappear = False
        else:
            last_frame = int(rng.integers(max(earliest, num_frames // 2), latest + 1))
    domain_end = last_frame if disappear else last  # the disappear event ends at the vanishing frame

    kinds: list[tuple[str, str | None, int, int]] = []  # (kind, event, min frames, max frames)
    tail = [("still", "disappears", still_lo, still_hi)] if disappear else []
    length = domain_end - first_frame
    if appear:
        kinds.append(("still", "appears", still_lo, still_hi))
    elif rng.random() < 0.5 and max(1, still_lo // 2) + move_lo + sum(k[2] for k in tail) <= length:
        kinds.append(("still", None, max(1, still_lo // 2), still_lo))  # an unnamed pause before the first move
    kinds.append(("move", "move", move_lo, move_hi))
    stops_used, moves = False, 1
    while sum(k[3] for k in kinds + tail) < length and moves < 3:
        if kinds[-1][0] == "move" and not stops_used and rng.random() < 0.6:
            candidate = ("still", "stops", still_lo, still_hi)
        else:
            candidate = ("move", "move", move_lo, move_hi)
        # A tail "disappears" must follow a move: reserve one when the candidate is a still.
        reserve = move_lo if (disappear and candidate[0] == "still") else 0
        if sum(k[2] for k in kinds + tail) + candidate[2] + reserve > length:
            break
        kinds.append(candidate)
        stops_used |= candidate[1] == "stops"
        moves += candidate[0] == "move"
    if disappear and kinds[-1][0] == "still":
        kinds.append(("move", "move", move_lo, move_hi))
    kinds += tail

    mins = np.array([k[2] for k in kinds], dtype=np.float64)
    room = np.array([k[3] - k[2] for k in kinds], dtype=np.float64) * rng.uniform(0.5, 1.0, size=len(kinds))
    slack = length - mins.sum()
    if slack < 0:
        raise RuntimeError(f"segment plan does not fit ({kinds} in {length} frames): WorldConfig limits inconsistent")
    if room.sum() >= slack:
        durations = mins + room * (slack / max(room.sum(), 1e-9))
    else:  # longer than all maxima: stretch every segment proportionally
        durations = (mins + room) * (length / (mins + room).sum())
    bounds = first_frame + np.round(np.concatenate([[0.0], np.cumsum(durations)])).astype(int)
    bounds[-1] = domain_end
    plan = [(k[0], k[1], int(bounds[i]), int(bounds[i + 1])) for i, k in enumerate(kinds)]
    return first_frame, last_frame, plan


def _pick_move(
    rng: np.random.Generator, cfg: WorldConfig, position: np.ndarray, used: set[str], frames: int
) -> tuple[str, np.ndarray]:
    """A direction not used yet by this object with room for at least `min_move_distance`, and the end point."""
    low, high = cfg.centre_margin, 1 - cfg.centre_margin
    options = []
    for name, (ux, uy) in DIRECTIONS.items():
        if name in used:
            continue
        coordinate, sign = (position[0], ux) if ux else (position[1], uy)
        room = (high - coordinate) if sign > 0 else (coordinate - low)
        if room >= cfg.min_move_distance:
            options.append((name, room))
    if not options:
        raise RuntimeError(f"no free direction from {position.tolist()} after {sorted(used)}")
    name, room = options[int(rng.integers(len(options)))]
    longest = min(room, max(cfg.min_move_distance, cfg.max_speed * frames / cfg.fps))
    distance = rng.uniform(cfg.min_move_distance, longest)
    return name, position + distance * np.array(DIRECTIONS[name])


def sample_video_scene(rng: np.random.Generator, cfg: WorldConfig, video_id: str) -> VideoScene:
    """Draw one video's objects, scripts and events from `rng` (consumed in a fixed order: deterministic)."""
    fps = cfg.fps
    num_source_frames = _seconds_to_frames(rng.uniform(*cfg.duration_seconds), fps)
    count = int(rng.integers(cfg.num_objects[0], cfg.num_objects[1] + 1))
    colours = rng.choice(len(cfg.colours), size=count, replace=False)
    shapes = rng.choice(len(cfg.shapes), size=count, replace=False)
    unit = min(cfg.width, cfg.height)
    objects = [
        ShapeObject(k, cfg.colours[int(c)], cfg.shapes[int(s)], float(rng.uniform(*cfg.object_size) * unit))
        for k, (c, s) in enumerate(zip(colours, shapes))
    ]
    starts: list[np.ndarray] = []
    for _ in range(count):  # spread the start positions out: fewer occlusions
        for _attempt in range(50):
            candidate = rng.uniform(0.15, 0.85, size=2)
            if all(np.linalg.norm(candidate - other) >= 0.3 for other in starts):
                break
        starts.append(candidate)

    centres = np.full((count, num_source_frames, 2), np.nan)
    scripts, firsts, lasts, events = [], [], [], []
    for obj, position in zip(objects, starts):
        first_frame, last_frame, plan = _plan_segments(rng, cfg, num_source_frames)
        used: set[str] = set()
        script = []
        for kind, event, start_frame, end_frame in plan:
            if kind == "move":
                event, end = _pick_move(rng, cfg, position, used, end_frame - start_frame)
                used.add(event)
            else:
                end = position
            script.append(Segment(kind, start_frame, end_frame, tuple(position.tolist()), tuple(end.tolist()), event))
            frames = np.arange(start_frame, min(end_frame, last_frame - 1) + 1)
            fraction = ((frames - start_frame) / max(end_frame - start_frame, 1))[:, None]
            centres[obj.index, frames] = position + fraction * (end - position)
            position = end
            if event is not None:
                caption = f"{obj.phrase} {event_verb(event)}"
                events.append(Event(caption, obj.phrase, obj.index, event, start_frame, end_frame, fps))
        scripts.append(script)
        firsts.append(first_frame)
        lasts.append(last_frame)
    events.sort(key=lambda e: (e.start_frame, e.end_frame, e.caption))
    background = make_background(rng, cfg.height, cfg.width, cfg.background_texture)
    return VideoScene(video_id, cfg, num_source_frames, objects, scripts, firsts, lasts, centres, events, background)


def event_verb(kind: str) -> str:
    """The words after the object's phrase in an event caption: "moves to the left", "moves up", "stops"..."""
    if kind in DIRECTIONS:
        return "moves to the " + kind if kind in ("left", "right") else "moves " + kind
    return kind


def render_labels(objects: list[ShapeObject], centres: np.ndarray, height: int, width: int) -> np.ndarray:
    """(T, H, W) int8 object index per pixel, -1 for background; later objects drawn on top.

    `centres` is (K, T, 2) normalised (x, y), NaN where absent. A pixel belongs to a shape when its centre
    (i + 0.5, j + 0.5) is inside it.
    """
    num_frames = centres.shape[1]
    labels = np.full((num_frames, height, width), -1, dtype=np.int8)
    xs = np.arange(width, dtype=np.float64)[None, None, :] + 0.5
    ys = np.arange(height, dtype=np.float64)[None, :, None] + 0.5
    for obj in objects:
        present = ~np.isnan(centres[obj.index, :, 0])
        cx = centres[obj.index, present, 0][:, None, None] * width
        cy = centres[obj.index, present, 1][:, None, None] * height
        inside = shape_contains(obj.shape, obj.size, xs - cx, ys - cy)
        frames = labels[present]
        frames[inside] = obj.index
        labels[present] = frames
    return labels


def paint(labels: np.ndarray, objects: list[ShapeObject], background: np.ndarray) -> np.ndarray:
    """(..., H, W, 3) uint8 pixels: each object's colour where `labels` names it, `background` elsewhere."""
    palette = np.array([COLOURS[o.colour] for o in objects] or [(0, 0, 0)], dtype=np.uint8)
    coloured = palette[np.clip(labels, 0, None).astype(np.int64)]
    return np.where(labels[..., None] >= 0, coloured, background)


def render_video(scene: VideoScene) -> tuple[np.ndarray, np.ndarray]:
    """(frames (T, H, W, 3) uint8, labels (T, H, W) int8) of `scene`."""
    labels = render_labels(scene.objects, scene.centres, scene.config.height, scene.config.width)
    return paint(labels, scene.objects, scene.background), labels

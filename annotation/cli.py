"""`pite annotate`: PiTe-143k-style trajectory annotations (stage-2 JSONL) from captioned videos.

Exit status: 0 when every video was annotated, 1 when the run finished but some videos failed (listed in
`OUT.failures.jsonl`), 2 for bad arguments, an unreadable captions file or a model that cannot be loaded.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from pite.core.arguments import positive_int
from pite.core.loading import DTYPE_NAMES

DEFAULT_DETECTOR = "google/owlv2-base-patch16-ensemble"
DEFAULT_SEGMENTER = "facebook/sam-vit-base"
DEFAULT_PROPAGATOR = "facebook/sam2.1-hiera-tiny"


def _shard(text: str) -> tuple[int, int]:
    index, _, count = text.partition("/")
    try:
        shard = (int(index), int(count))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected INDEX/COUNT such as 0/4, got {text!r}") from None
    if not 0 <= shard[0] < shard[1]:
        raise argparse.ArgumentTypeError(f"need 0 <= INDEX < COUNT, got {text!r}")
    return shard


def build_parser(command: str) -> argparse.ArgumentParser:
    """The argument parser of `pite annotate`."""
    if command != "annotate":
        raise ValueError(f"pite.annotation.cli has no command {command!r}; it provides 'annotate'")
    parser = argparse.ArgumentParser(
        description="Annotate captioned videos with object trajectories (PiTe-143k style): noun phrases -> OWLv2 "
        "boxes -> SAM masks on each event's first frame -> SAM2 video propagation -> k-means++ key points "
        "-> P trajectories over the N frames sampled from the whole video. Resumable: rerun to continue.",
    )
    parser.add_argument("--videos", required=True, help="folder the videos (and the captions' video paths) live in")
    parser.add_argument(
        "--captions",
        required=True,
        help="ActivityNet Captions JSON, or JSONL/JSON list of {video_id, video, duration, events: "
        "[{caption, start, end}]}",
    )
    parser.add_argument(
        "--out",
        required=True,
        help="stage-2 JSONL to write (OUT.partial, OUT.failures.jsonl and OUT.summary.json are written next to it)",
    )
    models = parser.add_argument_group("components (local folders, or hub ids already in the local cache)")
    models.add_argument(
        "--phrases", default="rules", help="noun phrases: 'rules' (offline chunker, default) or 'spacy[:MODEL]'"
    )
    models.add_argument("--detector", default=DEFAULT_DETECTOR, help=f"OWLv2 checkpoint (default {DEFAULT_DETECTOR})")
    models.add_argument(
        "--detector-threshold", type=float, default=0.1, help="minimum OWLv2 score to ground a phrase (default 0.1)"
    )
    models.add_argument("--segmenter", default=DEFAULT_SEGMENTER, help=f"SAM checkpoint (default {DEFAULT_SEGMENTER})")
    models.add_argument(
        "--propagator",
        default=DEFAULT_PROPAGATOR,
        help=f"SAM2-video or EdgeTAM-video checkpoint (default {DEFAULT_PROPAGATOR})",
    )
    models.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    models.add_argument("--dtype", choices=DTYPE_NAMES, default=None, help="model dtype (default float32)")
    geometry = parser.add_argument_group("trajectories")
    geometry.add_argument(
        "--num-frames", type=positive_int, default=100, help="N, frames sampled per video (default 100)"
    )
    geometry.add_argument(
        "--num-trajectory-points", type=positive_int, default=3, help="P, key points per object (default 3)"
    )
    geometry.add_argument(
        "--min-object-area",
        type=float,
        default=0.0005,
        help="drop masks smaller than this fraction of the frame (default 0.0005)",
    )
    geometry.add_argument(
        "--track-fps",
        type=float,
        default=6.0,
        help="frames a second propagated between sampled frames; 0 = every source frame (default 6)",
    )
    geometry.add_argument(
        "--track-until",
        choices=("event_end", "video_end"),
        default="event_end",
        help="track each object to its event's end (default) or to the video's end",
    )
    geometry.add_argument(
        "--visibility-margin",
        type=int,
        default=1,
        help="pixels around a key point that must be in the mask for it to count as visible (default 1)",
    )
    geometry.add_argument("--no-scale", action="store_true", help="key points follow the mask's translation only")
    geometry.add_argument("--seed", type=int, default=0, help="k-means++ seed (default 0)")
    run_group = parser.add_argument_group("run")
    run_group.add_argument(
        "--shard",
        type=_shard,
        default=(0, 1),
        help="INDEX/COUNT: annotate every COUNT-th video from INDEX into OUT (separate runs). Under "
        "torchrun / accelerate launch the processes split the videos themselves and merge into OUT",
    )
    run_group.add_argument("--limit", type=positive_int, default=None, help="annotate at most this many new videos")
    run_group.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def build_pipeline(args: argparse.Namespace) -> "AnnotationPipeline":  # noqa: F821
    """The pipeline the arguments describe (loads the three models)."""
    from .components import GroundAndSegment
    from .grounding import Owlv2Grounder
    from .phrases import build_phrase_extractor
    from .pipeline import AnnotationPipeline, AnnotatorConfig
    from .propagation import Sam2VideoPropagator
    from .segmentation import SamSegmenter

    config = AnnotatorConfig(
        num_frames=args.num_frames,
        num_key_points=args.num_trajectory_points,
        min_object_area=args.min_object_area,
        track_fps=args.track_fps if args.track_fps > 0 else None,
        track_until=args.track_until,
        visibility_margin=args.visibility_margin,
        estimate_scale=not args.no_scale,
        seed=args.seed,
    )
    masker = GroundAndSegment(
        Owlv2Grounder(args.detector, threshold=args.detector_threshold, device=args.device, dtype=args.dtype),
        SamSegmenter(args.segmenter, device=args.device, dtype=args.dtype),
    )
    propagator = Sam2VideoPropagator(args.propagator, device=args.device, dtype=args.dtype)
    return AnnotationPipeline(build_phrase_extractor(args.phrases), masker, propagator, config)


def _check_paths(args: argparse.Namespace) -> None:
    """Before any model loads: --videos is a folder, --out is not an input, and an existing --out is a stage-2 file
    to resume."""
    from pite.core.errors import MissingInputError
    from pite.core.inputs import refuse_own_input

    from .stage2_format import Stage2FormatError, read_stage2_jsonl

    if not os.path.isdir(args.videos):
        raise MissingInputError(f"--videos {args.videos} is not a folder", path=args.videos, field="--videos")
    out = refuse_own_input(args.out, {"--captions": args.captions, "--videos": args.videos})
    if out.exists():
        for number, record in enumerate(read_stage2_jsonl(out, tolerate_truncated_tail=False), start=1):
            if not isinstance(record, dict) or not isinstance(record.get("video_id"), str):
                raise Stage2FormatError(
                    f"{out}: record {number} has no string video_id: --out exists and is not a "
                    "stage-2 file this command can resume"
                )


def run(command: str, args: argparse.Namespace) -> int:
    """Run `pite annotate`; see the module docstring for the exit status."""
    from pite.core.processes import launched_state, launched_world_size

    from .captions import load_captions
    from .runner import annotate_videos, annotate_videos_in_processes, failures_path, summary_path

    if command != "annotate":
        raise ValueError(f"pite.annotation.cli has no command {command!r}; it provides 'annotate'")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        if args.track_fps < 0:
            raise ValueError(f"--track-fps must be >= 0, got {args.track_fps}")
        processes = launched_world_size()
        if processes > 1 and args.shard != (0, 1):
            raise ValueError(
                f"--shard {args.shard[0]}/{args.shard[1]} cannot be combined with a launch of "
                f"{processes} processes, which split the videos themselves"
            )
        state = launched_state()
        if state is not None and args.device is None:
            args.device = str(state.device)  # one accelerator per process
        videos = load_captions(args.captions)
        _check_paths(args)
        pipeline = build_pipeline(args)
    except (OSError, ValueError, ImportError) as error:
        print(f"pite annotate: {error}", file=sys.stderr)
        return 2
    progress = not args.no_progress
    if state is None:
        summary = annotate_videos(
            videos, args.videos, args.out, pipeline, shard=args.shard, progress=progress, limit=args.limit
        )
    else:
        part, summary = annotate_videos_in_processes(
            videos,
            args.videos,
            args.out,
            pipeline,
            state,
            progress=progress and state.is_main_process,
            limit=args.limit,
        )
        print(
            f"process {state.process_index} of {state.num_processes}: annotated {part.videos_annotated} videos "
            f"({part.videos_already_done} already done, {part.videos_failed} failed)"
        )
        if summary is None:
            return 1 if part.videos_failed else 0
    print(
        f"annotated {summary.videos_annotated} videos ({summary.videos_already_done} already done, "
        f"{summary.videos_failed} failed) -> {summary.output}; {summary.counts['objects']} objects; "
        f"summary {summary_path(args.out)}"
    )
    if summary.videos_failed:
        print(f"pite annotate: {summary.videos_failed} videos failed; see {failures_path(args.out)}", file=sys.stderr)
        return 1
    return 0

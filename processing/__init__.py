"""PiTe processing: video reading, the v1 chat template, time-in-text, grounding targets, post-processing, drawing.

The modules here are also Hub remote code copied flat next to a checkpoint (they import only each other, with
same-folder relative imports); this `__init__` is the package's public API and is not copied.
"""

from .chat_template_pite import (
    IGNORE_INDEX,
    V1_CHAT_TEMPLATE,
    V1_SYSTEM,
    VIDEO_TOKEN,
    TokenizedConversation,
    expand_video_tokens,
    render_conversation,
    tokenize_around_video,
    tokenize_conversation,
)
from .grounding_pite import (
    SpanTarget,
    build_point_labels,
    build_span_labels,
    build_trajectory_labels,
    localized_narrative_targets,
)
from .postprocessing_pite import post_process_generation, token_character_spans
from .processing_pite import PiTeProcessor, PiTeProcessorKwargs
from .time_pite import (
    TIME_SPAN_PATTERN,
    format_frame_index,
    format_time_span,
    frame_index_span_to_seconds,
    parse_frame_index_spans,
    parse_time_spans,
    seconds_to_frame_index,
)
from .video_processing_pite import PiTeVideoMetadata, PiTeVideoProcessor, PiTeVideoProcessorKwargs
from .video_reading_pite import SampledVideo, VideoInputError, read_image, read_video, sample_frame_indices
from .visualization_pite import render_frames, save_contact_sheet, save_trajectory_gif

__all__ = [
    "IGNORE_INDEX",
    "PiTeProcessor",
    "PiTeProcessorKwargs",
    "PiTeVideoMetadata",
    "PiTeVideoProcessor",
    "PiTeVideoProcessorKwargs",
    "SampledVideo",
    "SpanTarget",
    "TIME_SPAN_PATTERN",
    "TokenizedConversation",
    "V1_CHAT_TEMPLATE",
    "V1_SYSTEM",
    "VIDEO_TOKEN",
    "VideoInputError",
    "build_point_labels",
    "build_span_labels",
    "build_trajectory_labels",
    "expand_video_tokens",
    "format_frame_index",
    "format_time_span",
    "frame_index_span_to_seconds",
    "localized_narrative_targets",
    "parse_frame_index_spans",
    "parse_time_spans",
    "post_process_generation",
    "read_image",
    "read_video",
    "render_conversation",
    "render_frames",
    "sample_frame_indices",
    "save_contact_sheet",
    "save_trajectory_gif",
    "seconds_to_frame_index",
    "token_character_spans",
    "tokenize_around_video",
    "tokenize_conversation",
]

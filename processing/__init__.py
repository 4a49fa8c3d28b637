"""PiTe processing: video reading, the v1 chat template, time-in-text, post-processing, drawing (what inference needs).

The modules here are also Hub remote code copied flat next to a checkpoint (they import only each other, with
same-folder relative imports); this `__init__` is the package's public API and is not copied.
"""

from .chat_template_pite import (
    V1_CHAT_TEMPLATE,
    V1_SYSTEM,
    VIDEO_TOKEN,
    expand_video_tokens,
    tokenize_around_video,
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
    "PiTeProcessor",
    "PiTeProcessorKwargs",
    "PiTeVideoMetadata",
    "PiTeVideoProcessor",
    "PiTeVideoProcessorKwargs",
    "SampledVideo",
    "TIME_SPAN_PATTERN",
    "V1_CHAT_TEMPLATE",
    "V1_SYSTEM",
    "VIDEO_TOKEN",
    "VideoInputError",
    "expand_video_tokens",
    "format_frame_index",
    "format_time_span",
    "frame_index_span_to_seconds",
    "parse_frame_index_spans",
    "parse_time_spans",
    "post_process_generation",
    "read_image",
    "read_video",
    "render_frames",
    "sample_frame_indices",
    "save_contact_sheet",
    "save_trajectory_gif",
    "seconds_to_frame_index",
    "token_character_spans",
    "tokenize_around_video",
]

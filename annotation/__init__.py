"""PiTe annotation pipeline: PiTe-143k-style trajectory data from captioned videos (`pite annotate`).

noun phrases (`phrases`) -> first-frame masks (`components.GroundAndSegment`: OWLv2 `grounding` + SAM
`segmentation`) -> propagation (`propagation`: SAM2 video) -> key points and trajectories (`keypoints`) -> stage-2
JSONL (`stage2_format`), driven per video by `pipeline.AnnotationPipeline` and over many videos by
`runner.annotate_videos`. The model-backed components import torch/transformers only when built.
"""

from .captions import CaptionedEvent, CaptionedVideo, CaptionsError, load_captions
from .components import Detection, FirstFrameMasker, GroundAndSegment, Grounder, Propagator, Segmenter
from .keypoints import KeyPointFollower, register_mask, sampled_trajectory, select_key_points
from .phrases import (
    NonObjectPhraseFilter,
    NounPhrase,
    NounPhraseExtractor,
    RuleBasedNounPhraseExtractor,
    SpacyNounPhraseExtractor,
)
from .pipeline import AnnotationPipeline, AnnotatorConfig, EventAnnotation, ObjectAnnotation, VideoAnnotation
from .runner import RunSummary, annotate_videos
from .stage2_format import Stage2FormatError, check_stage2_record, read_stage2_jsonl

__all__ = [
    "AnnotationPipeline",
    "AnnotatorConfig",
    "CaptionedEvent",
    "CaptionedVideo",
    "CaptionsError",
    "Detection",
    "EventAnnotation",
    "FirstFrameMasker",
    "GroundAndSegment",
    "Grounder",
    "KeyPointFollower",
    "NonObjectPhraseFilter",
    "NounPhrase",
    "NounPhraseExtractor",
    "ObjectAnnotation",
    "Propagator",
    "RuleBasedNounPhraseExtractor",
    "RunSummary",
    "Segmenter",
    "SpacyNounPhraseExtractor",
    "Stage2FormatError",
    "VideoAnnotation",
    "annotate_videos",
    "check_stage2_record",
    "load_captions",
    "read_stage2_jsonl",
    "register_mask",
    "sampled_trajectory",
    "select_key_points",
]

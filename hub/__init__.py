"""PiTe on the Hub: build from base checkpoints, convert the original release, export, push."""

from .build import build_from_base
from .convert_original import convert_original, merge_original_stages
from .export import check_export_folder, export_for_hub
from .model_card import render_model_card
from .portability import machine_specific_strings
from .push import push_to_hub

__all__ = [
    "build_from_base",
    "check_export_folder",
    "convert_original",
    "export_for_hub",
    "machine_specific_strings",
    "merge_original_stages",
    "push_to_hub",
    "render_model_card",
]

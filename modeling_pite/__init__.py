"""PiTe model: configuration, model classes and loss terms.

Importing this package also registers PiTe with transformers' Auto classes, so an installed `pite` loads saved
PiTe folders without `trust_remote_code`. The files themselves are Hub remote code (see DESIGN.md).
"""

from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, AutoModelForImageTextToText

from .configuration_pite import PiTeConfig
from .losses_pite import shifted_cross_entropy_sum, shifted_masked_l1_sum, valid_point_mask
from .modeling_pite import (
    PiTeCausalLMOutputWithPast,
    PiTeForConditionalGeneration,
    PiTeGenerateBeamOutput,
    PiTeGenerateOutput,
    PiTeModel,
    PiTeModelOutputWithPast,
    PiTePreTrainedModel,
)

AutoConfig.register(PiTeConfig.model_type, PiTeConfig, exist_ok=True)
for _auto_class in (AutoModel, AutoModelForCausalLM, AutoModelForImageTextToText):
    _auto_class.register(PiTeConfig, PiTeForConditionalGeneration, exist_ok=True)

__all__ = [
    "PiTeCausalLMOutputWithPast",
    "PiTeConfig",
    "PiTeForConditionalGeneration",
    "PiTeGenerateBeamOutput",
    "PiTeGenerateOutput",
    "PiTeModel",
    "PiTeModelOutputWithPast",
    "PiTePreTrainedModel",
    "shifted_cross_entropy_sum",
    "shifted_masked_l1_sum",
    "valid_point_mask",
]

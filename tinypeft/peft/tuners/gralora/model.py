"""GraloraModel: puts GraLoRA layers on the target Linear / Conv1D modules."""

from ...utils.other import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING
from ..tuners_utils import BaseTuner
from .layer import GraloraLayer, Linear


class GraloraModel(BaseTuner):
    prefix = "gralora_"
    layer_class, linear_layer_class = GraloraLayer, Linear
    default_targets = TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING  # PEFT copies LoRA's table


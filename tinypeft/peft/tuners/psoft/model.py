"""PsoftModel: puts PSOFT layers on the target Linear modules."""
from ...utils.other import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING
from ..tuners_utils import BaseTuner
from .layer import PsoftLayer, PsoftLinear


class PsoftModel(BaseTuner):
    prefix = "psoft_"
    layer_class, new_layer_class = PsoftLayer, PsoftLinear
    default_targets = TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING  # PEFT copies LoRA's table

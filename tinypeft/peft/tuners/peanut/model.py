"""PeanutModel: puts PEANuT layers on the target Linear modules."""
from ...utils.other import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING
from ..tuners_utils import BaseTuner
from .layer import PeanutLayer, PeanutLinear


class PeanutModel(BaseTuner):
    prefix = "peanut_"
    layer_class, new_layer_class = PeanutLayer, PeanutLinear
    default_targets = TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING  # PEFT copies LoRA's table

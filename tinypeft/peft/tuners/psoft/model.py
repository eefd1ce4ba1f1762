"""PsoftModel: puts PSOFT layers on the target Linear modules."""
from .... import nn
from ...utils.other import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING
from ..tuners_utils import BaseTuner
from .layer import PsoftLayer, PsoftLinear


class PsoftModel(BaseTuner):
    prefix = "psoft_"
    layer_class, layers_mapping = PsoftLayer, {nn.Linear: PsoftLinear}
    unsupported_layer_error = ValueError  # PEFT's kind of error for a layer that is not nn.Linear
    default_targets = TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING  # PEFT copies LoRA's table

"""PeanutModel: puts PEANuT layers on the target Linear modules."""
from .... import nn
from ...utils.other import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING
from ..tuners_utils import BaseTuner
from .layer import PeanutLayer, PeanutLinear


class PeanutModel(BaseTuner):
    prefix = "peanut_"
    layer_class, layers_mapping = PeanutLayer, {nn.Linear: PeanutLinear}
    unsupported_layer_error = NotImplementedError  # PEFT's kind of error for a layer that is not nn.Linear
    default_targets = TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING  # PEFT copies LoRA's table

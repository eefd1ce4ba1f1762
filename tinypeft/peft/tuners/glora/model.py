"""GloraModel: puts GLoRA layers on the target Linear modules (exactly nn.Linear, as PEFT)."""
from .... import nn
from ...utils.other import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING
from ..tuners_utils import BaseTuner
from .layer import GloraLayer, GloraLinear


class GloraModel(BaseTuner):
    prefix = "glora_"
    layer_class, layers_mapping = GloraLayer, {nn.Linear: GloraLinear}
    unsupported_layer_error = ValueError  # PEFT's kind of error for a layer that is not nn.Linear
    default_targets = TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING  # PEFT copies LoRA's table

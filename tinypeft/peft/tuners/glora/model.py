"""GloraModel: puts GLoRA layers on the target Linear modules (exactly nn.Linear, as PEFT)."""
from ...utils.other import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING
from ..tuners_utils import BaseTuner
from .layer import GloraLayer, GloraLinear


class GloraModel(BaseTuner):
    prefix = "glora_"
    layer_class, new_layer_class = GloraLayer, GloraLinear
    default_targets = TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING  # PEFT copies LoRA's table

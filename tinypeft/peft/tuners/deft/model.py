"""DeftModel: puts DEFT layers on the target Linear / Conv1D modules."""
from ...utils.other import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING
from ..tuners_utils import BaseTuner
from .layer import DeftLayer, DeftLinear


class DeftModel(BaseTuner):
    prefix = "deft_"
    layer_class, linear_layer_class = DeftLayer, DeftLinear
    default_targets = TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING  # PEFT copies LoRA's table

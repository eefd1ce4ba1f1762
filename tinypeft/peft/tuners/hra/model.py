"""HRAModel: puts HRA layers on the target Linear / Conv2d modules."""
from .... import nn
from ...utils.other import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING
from ..tuners_utils import BaseTuner
from .layer import HRAConv2d, HRALayer, HRALinear


class HRAModel(BaseTuner):
    prefix = "hra_"
    layer_class = HRALayer
    default_targets = TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING  # PEFT copies LoRA's table
    layers_mapping = {nn.Linear: HRALinear, nn.Conv2d: HRAConv2d}

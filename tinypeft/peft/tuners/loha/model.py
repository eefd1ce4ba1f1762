"""LoHaModel: puts LoHa layers on the target Linear / Conv1d / Conv2d modules."""
from .... import nn
from ...utils.other import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING
from ..lycoris_utils import LycorisTuner
from .layer import Conv1d, Conv2d, LoHaLayer, Linear


class LoHaModel(LycorisTuner):
    prefix = "hada_"
    layer_class = LoHaLayer
    default_targets = TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING  # PEFT copies LoRA's table
    layers_mapping = {nn.Conv2d: Conv2d, nn.Conv1d: Conv1d, nn.Linear: Linear}

"""MissModel: puts MiSS layers on the target Linear modules."""
from .... import nn
from ...utils.other import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING
from ..tuners_utils import BaseTuner
from .layer import MissLayer, MissLinear


class MissModel(BaseTuner):
    prefix = "miss_"
    layer_class = MissLayer
    default_targets = TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING  # PEFT copies LoRA's table
    layers_mapping = {nn.Linear: MissLinear}

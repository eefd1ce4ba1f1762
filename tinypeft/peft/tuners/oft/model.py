"""OFTModel: puts OFT layers on the target Linear / Conv2d / Embedding modules."""
from .... import nn
from ...utils.other import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING
from ..tuners_utils import BaseTuner
from .layer import Conv2d, Embedding, Linear, OFTLayer


class OFTModel(BaseTuner):
    prefix = "oft_"
    layer_class = OFTLayer
    default_targets = TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING  # PEFT copies LoRA's table
    layers_mapping = {nn.Linear: Linear, nn.Conv2d: Conv2d, nn.Embedding: Embedding}

"""HRAModel: puts HRA layers on the target Linear / Conv2d modules."""
from .... import nn
from ...utils.other import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING
from ..tuners_utils import BaseTuner
from .layer import HRAConv2d, HRALayer, HRALinear


class HRAModel(BaseTuner):
    prefix = "hra_"
    layer_class = HRALayer
    default_targets = TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING  # PEFT copies LoRA's table

    def _create_and_replace(self, config, adapter_name, target, target_name, parent, current_key):
        self._add_to_layer(target, target_name, parent,
                           lambda t: HRAConv2d(t) if isinstance(t, nn.Conv2d) else HRALinear(t),
                           lambda layer: layer.update_layer(adapter_name, config.r, config))

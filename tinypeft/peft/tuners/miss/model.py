"""MissModel: puts MiSS layers on the target Linear modules."""
from ...utils.other import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING
from ..tuners_utils import BaseTuner
from .layer import MissLayer, MissLinear


class MissModel(BaseTuner):
    prefix = "miss_"
    layer_class = MissLayer
    default_targets = TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING  # PEFT copies LoRA's table

    def _create_and_replace(self, config, adapter_name, target, target_name, parent, current_key):
        self._add_to_layer(target, target_name, parent, MissLinear,
                           lambda layer: layer.update_layer(adapter_name, config.r, config))

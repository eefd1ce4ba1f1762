"""C3AModel: puts C3A layers on the target Linear modules."""
import re

from ...utils.other import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING
from ..tuners_utils import BaseTuner
from .layer import C3ALayer, C3ALinear


class C3AModel(BaseTuner):
    prefix = "c3a_"
    layer_class = C3ALayer
    default_targets = TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING  # PEFT copies LoRA's table

    def _create_and_replace(self, config, adapter_name, target, target_name, parent, current_key):
        key = next((k for k in config.block_size_pattern if re.match(rf".*\.{k}$", current_key)), current_key)
        block_size = config.block_size_pattern.get(key, config.block_size)
        self._add_to_layer(target, target_name, parent, C3ALinear,
                           lambda layer: layer.update_layer(adapter_name, block_size, config))

"""GraloraModel: puts GraLoRA layers on the target Linear / Conv1D modules."""

from ...utils.other import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING
from ..tuners_utils import BaseTuner, new_linear_layer
from .layer import GraloraLayer, Linear


class GraloraModel(BaseTuner):
    prefix = "gralora_"
    layer_class = GraloraLayer
    default_targets = TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING  # PEFT copies LoRA's table

    def _create_and_replace(self, config, adapter_name, target, target_name, parent, current_key):
        self._add_to_layer(target, target_name, parent, lambda t: new_linear_layer(Linear, t, config),
                           lambda layer: layer.update_layer(adapter_name, config.r, config))


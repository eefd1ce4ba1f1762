"""MissModel: puts MiSS layers on the target Linear modules."""
from ...utils.other import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING
from ..tuners_utils import BaseTuner
from .layer import MissLayer, MissLinear


class MissModel(BaseTuner):
    prefix = "miss_"
    layer_class = MissLayer
    default_targets = TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING  # PEFT copies LoRA's table

    def _create_and_replace(self, config, adapter_name, target, target_name, parent, current_key):
        if isinstance(target, MissLayer):
            target.update_layer(adapter_name, config.r, config)
            target.set_adapter(self.active_adapters)
            return
        new = MissLinear(target)
        new.update_layer(adapter_name, config.r, config)
        new.set_adapter(self.active_adapters)
        setattr(parent, target_name, new)

"""BOFTModel: puts BOFT layers on the target Linear / Conv2d modules."""
from .... import nn
from ...utils.other import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING
from ..tuners_utils import BaseTuner
from .layer import BOFTLayer, Conv2d, Linear


class BOFTModel(BaseTuner):
    prefix = "boft_"
    layer_class = BOFTLayer
    default_targets = TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING  # PEFT copies LoRA's table

    def _create_and_replace(self, config, adapter_name, target, target_name, parent, current_key):
        self._add_to_layer(target, target_name, parent, _new_layer, lambda layer: layer.update_layer(adapter_name, config))


def _new_layer(target):
    if isinstance(target, nn.Conv2d):
        return Conv2d(target)
    if isinstance(target, nn.Linear):
        return Linear(target)
    raise TypeError(f"Target module {target} is not supported. Currently, only `torch.nn.Linear` and "
                    "`torch.nn.Conv2d` (optionally quantized) are supported.")
